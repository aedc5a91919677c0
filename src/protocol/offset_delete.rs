//! OffsetDelete (47), v0: drops a group's committed offsets for some
//! partitions; refused per partition (GROUP_SUBSCRIBED_TO_TOPIC) while the
//! group has members. A negative partition index has no offset to drop.

use super::error_code::{group_code, group_result_code};
use super::wire;
use crate::group::calls::DeleteOffsets;
use crate::group::coordinator::GroupCoordinator;
use crate::group::GroupError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use std::rc::Rc;

pub async fn handle(
    groups: &Rc<GroupCoordinator>,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group = req.group_id.0.to_string();
    let partitions = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter_map(|p| wire::topic_partition(t.name.0.as_str(), p.partition_index))
        })
        .collect();
    let call = DeleteOffsets {
        group: group.clone(),
        partitions,
    };
    let mut out = OffsetDeleteResponse::default();
    let results = groups
        .call(&group, call)
        .await
        .unwrap_or(Err(GroupError::CoordinatorNotAvailable));
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
            let wanted = wire::topic_partition(t.name.0.as_str(), p.partition_index);
            rp.error_code = results
                .iter()
                .find(|(tp, _)| Some(tp) == wanted.as_ref())
                .map_or(0, |(_, r)| group_result_code(r));
            topic.partitions.push(rp);
        }
        out.topics.push(topic);
    }
    out
}
