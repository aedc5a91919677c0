//! Produce (0), v3–v9: each partition's record set goes to the partition's
//! owner shard (one call per owner), which validates, appends and — for
//! acks=-1 — waits for fdatasync, group-committed with every other flusher.
//! acks=0 gets no response at all. Acks other than -1, 0 and 1 refuse the
//! whole request here (INVALID_REQUIRED_ACKS), before anything is routed.

use super::error_code::ErrorCode;
use super::{str_bytes, wire};
use crate::log::Durability;
use crate::shard::owner_calls::Produced;
use crate::shard::{Shard, ShardError};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use std::rc::Rc;

/// Kafka's acks, as the log's durability.
fn durability(acks: i16) -> Option<Durability> {
    match acks {
        -1 => Some(Durability::Synced),
        0 | 1 => Some(Durability::Policy),
        _ => None,
    }
}

/// Why a partition of a request was not produced to.
enum Refused {
    Shard(ShardError),
    Code(ErrorCode, String),
}

pub async fn handle(
    shard: &Rc<Shard>,
    req: ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    let mut shape = Vec::new();
    let mut items = Vec::new();
    // Per partition, in request order: whether it was routed (a negative
    // index is no partition, and is answered here).
    let mut routed = Vec::new();
    for topic in req.topic_data {
        let name = topic.name.0.as_str().to_string();
        let indexes: Vec<i32> = topic.partition_data.iter().map(|p| p.index).collect();
        for data in topic.partition_data {
            let tp = wire::topic_partition(&name, data.index);
            routed.push(tp.is_some());
            if let Some(tp) = tp {
                items.push((tp, data.records.unwrap_or_default()));
            }
        }
        shape.push((topic.name, indexes));
    }
    let results: Vec<Result<Produced, Refused>> = match durability(acks) {
        Some(durability) => shard
            .produce(durability, items)
            .await
            .into_iter()
            .map(|r| r.map_err(Refused::Shard))
            .collect(),
        None => {
            let why = format!("invalid required acks {acks}");
            let refused = |_| Err(Refused::Code(ErrorCode::InvalidRequiredAcks, why.clone()));
            items.iter().map(refused).collect()
        }
    };
    let mut results = results.into_iter();
    let mut routed = routed.into_iter();
    let mut r = ProduceResponse::default();
    for (name, indexes) in shape {
        let mut t = TopicProduceResponse::default();
        for index in indexes {
            let result = if routed.next() == Some(true) {
                results.next().expect("a result per routed partition")
            } else {
                let why = format!("unknown topic or partition {}-{index}", name.0.as_str());
                Err(Refused::Code(ErrorCode::UnknownTopicOrPartition, why))
            };
            t.partition_responses
                .push(partition_response(index, result, version));
        }
        t.name = name;
        r.responses.push(t);
    }
    (acks != 0).then_some(r)
}

fn partition_response(
    index: i32,
    result: Result<Produced, Refused>,
    version: i16,
) -> PartitionProduceResponse {
    let mut p = PartitionProduceResponse::default();
    p.index = index;
    p.log_append_time_ms = -1;
    p.log_start_offset = -1;
    match result {
        Ok(produced) => {
            p.base_offset = wire::offset_to_wire(produced.base_offset);
            p.log_append_time_ms = produced.log_append_time.unwrap_or(-1);
            if version >= 5 {
                p.log_start_offset = wire::offset_to_wire(produced.log_start);
            }
        }
        Err(refused) => {
            let (code, message) = match refused {
                Refused::Shard(e) => (ErrorCode::from(&e), e.to_string()),
                Refused::Code(code, message) => (code, message),
            };
            p.error_code = code.code();
            p.base_offset = -1;
            tracing::debug!(partition = index, "produce refused: {message}");
            if version >= 8 {
                p.error_message = Some(str_bytes(&message));
            }
        }
    }
    p
}
