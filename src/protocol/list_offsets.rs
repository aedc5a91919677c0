//! ListOffsets (2), v1–v6: earliest (-2), latest (-1; the last stable
//! offset for a read_committed client), or the first offset whose record
//! timestamp is at or after the given time, answered by each partition's
//! owner shard. A negative partition index is UNKNOWN_TOPIC_OR_PARTITION,
//! answered here.

use super::error_code::ErrorCode;
use super::wire;
use crate::log::LeaderEpoch;
use crate::shard::owner_calls::{OffsetAt, OffsetQuery};
use crate::shard::Shard;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use std::rc::Rc;

/// Kafka's special timestamps.
fn query(timestamp: i64, committed: bool) -> OffsetQuery {
    match timestamp {
        -2 => OffsetQuery::Earliest,
        -1 if committed => OffsetQuery::LastStable,
        -1 => OffsetQuery::Latest,
        ts => OffsetQuery::AtTime(ts),
    }
}

pub async fn handle(
    shard: &Rc<Shard>,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut shape = Vec::new();
    let mut items = Vec::new();
    let mut routed = Vec::new();
    let committed = req.isolation_level == super::fetch::READ_COMMITTED;
    for topic in req.topics {
        let name = topic.name.0.as_str().to_string();
        let mut indexes = Vec::new();
        for p in topic.partitions {
            indexes.push(p.partition_index);
            let tp = wire::topic_partition(&name, p.partition_index);
            routed.push(tp.is_some());
            if let Some(tp) = tp {
                items.push((tp, query(p.timestamp, committed)));
            }
        }
        shape.push((topic.name, indexes));
    }
    let mut results = shard.list_offsets(items).await.into_iter();
    let mut routed = routed.into_iter();
    let mut r = ListOffsetsResponse::default();
    for (name, indexes) in shape {
        let mut t = ListOffsetsTopicResponse::default();
        t.name = name;
        for index in indexes {
            let found = match routed.next() {
                Some(true) => results
                    .next()
                    .expect("a result per routed partition")
                    .map_err(|e| ErrorCode::from(&e)),
                _ => Err(ErrorCode::UnknownTopicOrPartition),
            };
            t.partitions.push(partition_response(index, found, version));
        }
        r.topics.push(t);
    }
    r
}

fn partition_response(
    index: i32,
    found: Result<Option<OffsetAt>, ErrorCode>,
    version: i16,
) -> ListOffsetsPartitionResponse {
    let mut p = ListOffsetsPartitionResponse::default();
    p.partition_index = index;
    p.timestamp = -1;
    p.offset = -1;
    if version >= 4 {
        p.leader_epoch = LeaderEpoch::FIRST.0;
    }
    match found {
        Ok(Some(at)) => {
            p.offset = wire::offset_to_wire(at.offset);
            p.timestamp = at.timestamp;
        }
        Ok(None) => {}
        Err(code) => p.error_code = code.code(),
    }
    p
}
