//! OffsetDelete (47), v0: drops a group's committed offsets for some
//! partitions; refused per partition (GROUP_SUBSCRIBED_TO_TOPIC) while the
//! group has members.

use super::error_code::{group_code, group_result_code};
use crate::group::GroupError;
use crate::shard::message::{GroupAnswer, GroupCall};
use crate::shard::Shard;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use std::rc::Rc;

pub async fn handle(shard: &Rc<Shard>, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group = req.group_id.0.to_string();
    let partitions: Vec<(String, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let call = GroupCall::DeleteOffsets {
        group: group.clone(),
        partitions,
    };
    let mut out = OffsetDeleteResponse::default();
    let results = match shard.group_call(&group, call).await {
        Ok(GroupAnswer::Offsets(r)) => r,
        _ => Err(GroupError::CoordinatorNotAvailable),
    };
    let results = match results {
        Ok(r) => r,
        Err(e) => {
            out.error_code = group_code(Some(e));
            return out;
        }
    };
    for t in &req.topics {
        let mut topic = OffsetDeleteResponseTopic::default();
        topic.name = t.name.clone();
        for p in &t.partitions {
            let mut rp = OffsetDeleteResponsePartition::default();
            rp.partition_index = p.partition_index;
            rp.error_code = results
                .iter()
                .find(|(n, i, _)| n.as_str() == t.name.0.as_str() && *i == p.partition_index)
                .map_or(0, |(_, _, r)| group_result_code(r));
            topic.partitions.push(rp);
        }
        out.topics.push(topic);
    }
    out
}
