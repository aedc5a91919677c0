//! OffsetCommit (8), v2–v8: a group's consumed positions, durable
//! (fdatasync'ed in `__consumer_offsets`) before the answer. Partitions
//! of unknown topics (and negative indexes) get UNKNOWN_TOPIC_OR_PARTITION
//! and are not stored.

use super::error_code::{group_result_code, ErrorCode};
use super::wire;
use crate::group::calls::{CommitOffsets, MemberRef, PartitionResults};
use crate::group::coordinator::GroupCoordinator;
use crate::group::{Committed, GroupError};
use crate::log::partition::now_ms;
use crate::log::{LeaderEpoch, TopicPartition};
use crate::shard::Shard;
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use std::rc::Rc;

fn committed(p: &OffsetCommitRequestPartition, version: i16, now: i64) -> Committed {
    Committed {
        offset: p.committed_offset,
        leader_epoch: if version >= 6 {
            LeaderEpoch(p.committed_leader_epoch)
        } else {
            LeaderEpoch::NONE
        },
        metadata: p
            .committed_metadata
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
        commit_timestamp_ms: now,
    }
}

pub async fn handle(
    shard: &Rc<Shard>,
    groups: &Rc<GroupCoordinator>,
    req: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let group = req.group_id.0.to_string();
    let now = now_ms();
    let mut known = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let tp = wire::topic_partition(t.name.0.as_str(), p.partition_index);
            if let Some(tp) = tp.filter(|tp| shard.owner_of(tp).is_some()) {
                known.push((tp, committed(p, version, now)));
            }
        }
    }
    let mut results: PartitionResults = Vec::new();
    if !known.is_empty() {
        let keys: Vec<TopicPartition> = known.iter().map(|(tp, _)| tp.clone()).collect();
        let call = CommitOffsets {
            group: group.clone(),
            member: MemberRef {
                member_id: req.member_id.to_string(),
                instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
            },
            generation: req.generation_id_or_member_epoch,
            offsets: known,
        };
        results = groups.call(&group, call).await.unwrap_or_else(|_| {
            let unavailable = |tp| (tp, Err(GroupError::CoordinatorNotAvailable));
            keys.into_iter().map(unavailable).collect()
        });
    }
    let mut out = OffsetCommitResponse::default();
    for t in &req.topics {
        let mut topic = OffsetCommitResponseTopic::default();
        topic.name = t.name.clone();
        for p in &t.partitions {
            let wanted = wire::topic_partition(t.name.0.as_str(), p.partition_index);
            let code = results
                .iter()
                .find(|(tp, _)| Some(tp) == wanted.as_ref())
                .map_or(ErrorCode::UnknownTopicOrPartition.code(), |(_, r)| {
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
