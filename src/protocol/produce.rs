//! Produce (0), v3–v9: each partition's record set goes to the partition's
//! owner shard (one message per owner), which validates, appends and — for
//! acks=-1 — waits for fdatasync, group-committed with every other flusher.
//! acks=0 gets no response at all.

use super::error_code::ErrorCode;
use super::str_bytes;
use crate::shard::Shard;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use std::rc::Rc;

pub async fn handle(
    shard: &Rc<Shard>,
    req: ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    let mut shape = Vec::new();
    let mut items = Vec::new();
    for topic in req.topic_data {
        let name = topic.name.0.as_str().to_string();
        let indexes: Vec<i32> = topic.partition_data.iter().map(|p| p.index).collect();
        for data in topic.partition_data {
            items.push(((name.clone(), data.index), data.records.unwrap_or_default()));
        }
        shape.push((topic.name, indexes));
    }
    let mut results = shard.produce(acks, items).await.into_iter();
    let mut r = ProduceResponse::default();
    for (name, indexes) in shape {
        let mut t = TopicProduceResponse::default();
        t.name = name;
        for index in indexes {
            let mut p = PartitionProduceResponse::default();
            p.index = index;
            p.log_append_time_ms = -1;
            p.log_start_offset = -1;
            match results.next().expect("a result per partition") {
                Ok((base, log_start)) => {
                    p.base_offset = base as i64;
                    if version >= 5 {
                        p.log_start_offset = log_start as i64;
                    }
                }
                Err(e) => {
                    p.error_code = ErrorCode::from(&e).code();
                    p.base_offset = -1;
                    tracing::debug!(partition = index, "produce refused: {e}");
                    if version >= 8 {
                        p.error_message = Some(str_bytes(&e.to_string()));
                    }
                }
            }
            t.partition_responses.push(p);
        }
        r.responses.push(t);
    }
    (acks != 0).then_some(r)
}
