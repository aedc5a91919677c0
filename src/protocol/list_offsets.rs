//! ListOffsets (2), v1–v6: earliest (-2), latest (-1), or the first offset
//! whose record timestamp is at or after the given time, answered by each
//! partition's owner shard.

use super::error_code::ErrorCode;
use crate::shard::Shard;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use std::rc::Rc;

pub async fn handle(
    shard: &Rc<Shard>,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut shape = Vec::new();
    let mut items = Vec::new();
    for topic in req.topics {
        let name = topic.name.0.as_str().to_string();
        let mut indexes = Vec::new();
        for p in topic.partitions {
            indexes.push(p.partition_index);
            items.push(((name.clone(), p.partition_index), p.timestamp));
        }
        shape.push((topic.name, indexes));
    }
    let mut results = shard.list_offsets(items).await.into_iter();
    let mut r = ListOffsetsResponse::default();
    for (name, indexes) in shape {
        let mut t = ListOffsetsTopicResponse::default();
        t.name = name;
        for index in indexes {
            let mut p = ListOffsetsPartitionResponse::default();
            p.partition_index = index;
            p.timestamp = -1;
            p.offset = -1;
            if version >= 4 {
                p.leader_epoch = 0;
            }
            match results.next().expect("a result per partition") {
                Ok(Some((offset, timestamp))) => {
                    p.offset = offset as i64;
                    p.timestamp = timestamp;
                }
                Ok(None) => {}
                Err(e) => p.error_code = ErrorCode::from(&e).code(),
            }
            t.partitions.push(p);
        }
        r.topics.push(t);
    }
    r
}
