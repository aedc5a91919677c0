//! Produce (0), v3+: validate and append each partition's batches, then for
//! acks=-1 wait for fdatasync (group-committed with every other flusher).
//! acks=0 gets no response at all.

use super::error_code::ErrorCode;
use super::str_bytes;
use crate::log::{LogError, RecordBatch};
use crate::shard::Shard;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use std::rc::Rc;

pub async fn handle(shard: &Shard, req: ProduceRequest, version: i16) -> Option<ProduceResponse> {
    let acks = req.acks;
    let mut r = ProduceResponse::default();
    let mut to_flush = Vec::new();
    for topic in req.topic_data {
        let name = topic.name.0.as_str().to_string();
        let mut t = TopicProduceResponse::default();
        t.name = topic.name.clone();
        for data in topic.partition_data {
            let index = data.index;
            let mut p = PartitionProduceResponse::default();
            p.index = index;
            p.log_append_time_ms = -1;
            p.log_start_offset = -1;
            if !(-1..=1).contains(&acks) {
                p.error_code = ErrorCode::InvalidRequiredAcks.code();
            } else {
                match append(shard, &name, data).await {
                    Ok((partition, base)) => {
                        p.base_offset = base as i64;
                        if version >= 5 {
                            p.log_start_offset = partition.log_start() as i64;
                        }
                        if acks == -1 {
                            to_flush.push((t.partition_responses.len(), partition));
                        }
                    }
                    Err((code, message)) => {
                        p.error_code = code.code();
                        if version >= 8 {
                            p.error_message = message.map(|m| str_bytes(&m));
                        }
                    }
                }
            }
            t.partition_responses.push(p);
        }
        // acks=all: durable before we answer. Partitions of one topic flush
        // one after another; each flush shares its fdatasync with every
        // other producer waiting on that partition.
        for (i, partition) in to_flush.drain(..) {
            if let Err(e) = partition.flush().await {
                let p = &mut t.partition_responses[i];
                p.error_code = ErrorCode::from(&e).code();
                if version >= 8 {
                    p.error_message = Some(str_bytes(&e.to_string()));
                }
            }
        }
        r.responses.push(t);
    }
    shard.appended.notify();
    (acks != 0).then_some(r)
}

type Failure = (ErrorCode, Option<String>);

async fn append(
    shard: &Shard,
    topic: &str,
    data: PartitionProduceData,
) -> Result<(Rc<crate::log::Partition>, u64), Failure> {
    let partition = shard
        .partition(topic, data.index)
        .ok_or((ErrorCode::UnknownTopicOrPartition, None))?;
    let records = data
        .records
        .filter(|r| !r.is_empty())
        .ok_or((ErrorCode::CorruptMessage, Some("no records".to_string())))?;
    let batches = RecordBatch::split_all(records).map_err(|e| {
        let e = LogError::from(e);
        (ErrorCode::from(&e), Some(e.to_string()))
    })?;
    match partition.append(batches).await {
        Ok(info) => Ok((partition, info.base_offset)),
        Err(e) => {
            tracing::debug!(topic, partition = data.index, "produce refused: {e}");
            Err((ErrorCode::from(&e), Some(e.to_string())))
        }
    }
}
