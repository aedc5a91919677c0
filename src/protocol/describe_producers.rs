//! DescribeProducers (61), v0: each partition's idempotent producers, as
//! its producer state knows them — id, epoch, last sequence and the
//! timestamp of its last batch (no transactions yet: coordinator epoch and
//! transaction start are -1). A negative partition index is
//! UNKNOWN_TOPIC_OR_PARTITION.

use super::error_code::ErrorCode;
use super::{str_bytes, wire};
use crate::log::producer_snapshot::SnapshotEntry;
use crate::shard::Shard;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use std::rc::Rc;

pub async fn handle(shard: &Rc<Shard>, req: DescribeProducersRequest) -> DescribeProducersResponse {
    let mut items = Vec::new();
    let mut routed = Vec::new();
    for t in &req.topics {
        for &index in &t.partition_indexes {
            let tp = wire::topic_partition(t.name.0.as_str(), index);
            routed.push(tp.is_some());
            items.extend(tp);
        }
    }
    let mut results = shard.describe_producers(items).await.into_iter();
    let mut routed = routed.into_iter();
    let mut out = DescribeProducersResponse::default();
    for t in &req.topics {
        let mut topic = TopicResponse::default();
        topic.name = t.name.clone();
        for &index in &t.partition_indexes {
            let mut p = PartitionResponse::default();
            p.partition_index = index;
            let described = match routed.next() {
                Some(true) => results.next().expect("a result per partition routed"),
                _ => {
                    p.error_code = ErrorCode::UnknownTopicOrPartition.code();
                    topic.partitions.push(p);
                    continue;
                }
            };
            match described {
                Ok(producers) => p.active_producers = producers.iter().map(active).collect(),
                Err(e) => {
                    p.error_code = ErrorCode::from(&e).code();
                    p.error_message = Some(str_bytes(&e.to_string()));
                }
            }
            topic.partitions.push(p);
        }
        out.topics.push(topic);
    }
    out
}

fn active(e: &SnapshotEntry) -> ProducerState {
    let mut p = ProducerState::default();
    p.producer_id = ProducerId(e.producer.0);
    p.producer_epoch = i32::from(e.epoch.0);
    p.last_sequence = e.last.map_or(-1, |b| b.last_seq);
    p.last_timestamp = e.last.map_or(-1, |b| b.max_timestamp);
    p.coordinator_epoch = -1;
    p.current_txn_start_offset = -1;
    p
}
