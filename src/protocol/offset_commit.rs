//! OffsetCommit (8), v2–v8: a group's consumed positions, durable
//! (fdatasync'ed in `__consumer_offsets`) before the answer. Partitions
//! of unknown topics (and negative indexes) get UNKNOWN_TOPIC_OR_PARTITION
//! and are not stored.

use super::error_code::group_result_code;
use super::wire;
use crate::group::calls::{CommitOffsets, MemberRef, PartitionResults};
use crate::group::coordinator::GroupCoordinator;
use crate::group::{Committed, GroupError};
use crate::log::partition::now_ms;
use crate::log::{LeaderEpoch, TopicPartition};
use crate::shard::router::Call;
use crate::shard::Shard;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

/// A committed offset as a request carries it; the leader epoch only
/// from `epoch_since` on.
pub(crate) fn committed(
    offset: i64,
    leader_epoch: i32,
    metadata: Option<&StrBytes>,
    (version, epoch_since): (i16, i16),
    now: i64,
) -> Committed {
    Committed {
        offset,
        leader_epoch: if version >= epoch_since {
            LeaderEpoch(leader_epoch)
        } else {
            LeaderEpoch::NONE
        },
        metadata: metadata.map(|m| m.to_string()).unwrap_or_default(),
        commit_timestamp_ms: now,
    }
}

/// Runs a commit (`call`, of the partitions `keys`) on the group's
/// coordinator shard; nothing to commit is no call. Every partition is
/// COORDINATOR_NOT_AVAILABLE if that shard is gone.
pub(crate) async fn commit_on_coordinator<C>(
    groups: &Rc<GroupCoordinator>,
    group: &str,
    keys: Vec<TopicPartition>,
    call: C,
) -> PartitionResults
where
    C: Call<GroupCoordinator, Reply = PartitionResults>,
{
    if keys.is_empty() {
        return Vec::new();
    }
    groups.call(group, call).await.unwrap_or_else(|_| {
        let unavailable = |tp| (tp, Err(GroupError::CoordinatorNotAvailable));
        keys.into_iter().map(unavailable).collect()
    })
}

/// The result of `topic`'s partition `index` in a commit's results: one
/// not committed (an unknown topic, a negative index) is
/// UNKNOWN_TOPIC_OR_PARTITION.
pub(crate) fn result_of(
    results: &PartitionResults,
    topic: &str,
    index: i32,
) -> Result<(), GroupError> {
    let wanted = wire::topic_partition(topic, index);
    results
        .iter()
        .find(|(tp, _)| Some(tp) == wanted.as_ref())
        .map_or(Err(GroupError::UnknownTopicOrPartition), |(_, r)| *r)
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
                let (offset, epoch) = (p.committed_offset, p.committed_leader_epoch);
                let metadata = p.committed_metadata.as_ref();
                known.push((tp, committed(offset, epoch, metadata, (version, 6), now)));
            }
        }
    }
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
    let results = commit_on_coordinator(groups, &group, keys, call).await;
    let mut out = OffsetCommitResponse::default();
    for t in &req.topics {
        let mut topic = OffsetCommitResponseTopic::default();
        topic.name = t.name.clone();
        for p in &t.partitions {
            let result = result_of(&results, t.name.0.as_str(), p.partition_index);
            let mut rp = OffsetCommitResponsePartition::default();
            rp.partition_index = p.partition_index;
            rp.error_code = group_result_code(&result);
            topic.partitions.push(rp);
        }
        out.topics.push(topic);
    }
    out
}
