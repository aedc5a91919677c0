//! OffsetCommit (8), v2–v8: a group's consumed positions, durable
//! (fdatasync'ed in `__consumer_offsets`) before the answer. Partitions
//! of unknown topics get UNKNOWN_TOPIC_OR_PARTITION and are not stored.

use super::error_code::{group_result_code, ErrorCode};
use crate::group::{Committed, GroupError};
use crate::log::partition::now_ms;
use crate::shard::message::{GroupAnswer, GroupCall};
use crate::shard::Shard;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use std::rc::Rc;

pub async fn handle(
    shard: &Rc<Shard>,
    req: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let group = req.group_id.0.to_string();
    let now = now_ms();
    let mut known = Vec::new();
    let mut results: Vec<(String, i32, Result<(), GroupError>)> = Vec::new();
    for t in &req.topics {
        let name = t.name.0.to_string();
        let partitions = shard.topic(&name).map(|topic| topic.partitions);
        for p in &t.partitions {
            let exists = partitions.is_some_and(|n| (0..n as i32).contains(&p.partition_index));
            if !exists {
                results.push((
                    name.clone(),
                    p.partition_index,
                    Err(GroupError::UnknownTopicOrPartition),
                ));
                continue;
            }
            known.push((
                name.clone(),
                p.partition_index,
                Committed {
                    offset: p.committed_offset,
                    leader_epoch: if version >= 6 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                    commit_timestamp_ms: now,
                },
            ));
        }
    }
    if !known.is_empty() {
        let keys: Vec<(String, i32)> = known.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
        let call = GroupCall::Commit {
            group: group.clone(),
            member_id: req.member_id.to_string(),
            instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
            generation: req.generation_id_or_member_epoch,
            offsets: known,
        };
        match shard.group_call(&group, call).await {
            Ok(GroupAnswer::Offsets(Ok(r))) => results.extend(r),
            _ => results.extend(
                keys.into_iter()
                    .map(|(t, p)| (t, p, Err(GroupError::CoordinatorNotAvailable))),
            ),
        }
    }
    let mut out = OffsetCommitResponse::default();
    for t in &req.topics {
        let mut topic = OffsetCommitResponseTopic::default();
        topic.name = t.name.clone();
        for p in &t.partitions {
            let code = results
                .iter()
                .find(|(n, i, _)| n.as_str() == t.name.0.as_str() && *i == p.partition_index)
                .map_or(ErrorCode::UnknownServerError.code(), |(_, _, r)| {
                    group_result_code(r)
                });
            let mut rp = OffsetCommitResponsePartition::default();
            rp.partition_index = p.partition_index;
            rp.error_code = code;
            topic.partitions.push(rp);
        }
        out.topics.push(topic);
    }
    out
}
