//! DeleteRecords (21), v0–v2: a partition's log starts at the given offset
//! from now on (-1: at its high watermark); records below it are no longer
//! served (OFFSET_OUT_OF_RANGE) and whole segments below it are deleted.
//! The new log start is durable before the answer, which carries it as the
//! low watermark. An offset past the high watermark, or negative other than
//! -1, is OFFSET_OUT_OF_RANGE; a negative partition index
//! UNKNOWN_TOPIC_OR_PARTITION.

use super::error_code::ErrorCode;
use super::wire;
use crate::log::Offset;
use crate::shard::Shard;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use std::rc::Rc;

/// Kafka's "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(shard: &Rc<Shard>, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut items = Vec::new();
    // Per partition, in request order: routed, or answered here.
    let mut answered_here = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let before = match p.offset {
                HIGH_WATERMARK => Some(None),
                offset => wire::offset(offset).map(Some),
            };
            match (
                wire::topic_partition(t.name.0.as_str(), p.partition_index),
                before,
            ) {
                (Some(tp), Some(before)) => {
                    items.push((tp, before));
                    answered_here.push(None);
                }
                (None, _) => answered_here.push(Some(ErrorCode::UnknownTopicOrPartition)),
                (Some(_), None) => answered_here.push(Some(ErrorCode::OffsetOutOfRange)),
            }
        }
    }
    let mut results = shard.delete_records(items).await.into_iter();
    let mut answered_here = answered_here.into_iter();
    let mut out = DeleteRecordsResponse::default();
    for t in &req.topics {
        let mut topic = DeleteRecordsTopicResult::default();
        topic.name = t.name.clone();
        for p in &t.partitions {
            let result: Result<Offset, ErrorCode> = match answered_here.next().flatten() {
                Some(code) => Err(code),
                None => results
                    .next()
                    .expect("a result per partition routed")
                    .map_err(|e| ErrorCode::from(&e)),
            };
            let mut r = DeleteRecordsPartitionResult::default();
            r.partition_index = p.partition_index;
            match result {
                Ok(low) => r.low_watermark = wire::offset_to_wire(low),
                Err(code) => {
                    r.low_watermark = -1;
                    r.error_code = code.code();
                }
            }
            topic.partitions.push(r);
        }
        out.topics.push(topic);
    }
    out
}
