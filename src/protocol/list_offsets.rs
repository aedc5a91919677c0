//! ListOffsets (2), v1–v6: earliest (-2), latest (-1), or the first offset
//! whose record timestamp is at or after the given time.

use super::error_code::ErrorCode;
use crate::shard::Shard;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub async fn handle(shard: &Shard, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let mut r = ListOffsetsResponse::default();
    for topic in req.topics {
        let mut t = ListOffsetsTopicResponse::default();
        t.name = topic.name.clone();
        for lp in topic.partitions {
            let mut p = ListOffsetsPartitionResponse::default();
            p.partition_index = lp.partition_index;
            p.timestamp = -1;
            p.offset = -1;
            if version >= 4 {
                p.leader_epoch = 0;
            }
            match shard.partition(topic.name.0.as_str(), lp.partition_index) {
                None => p.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                Some(partition) => match lp.timestamp {
                    LATEST => p.offset = partition.next_offset() as i64,
                    EARLIEST => p.offset = partition.log_start() as i64,
                    ts if ts < 0 => p.error_code = ErrorCode::InvalidRequest.code(),
                    ts => match partition.offset_for_timestamp(ts).await {
                        Ok(Some((offset, timestamp))) => {
                            p.offset = offset as i64;
                            p.timestamp = timestamp;
                        }
                        Ok(None) => {}
                        Err(e) => p.error_code = ErrorCode::from(&e).code(),
                    },
                },
            }
            t.partitions.push(p);
        }
        r.topics.push(t);
    }
    r
}
