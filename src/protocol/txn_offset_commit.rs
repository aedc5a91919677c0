//! TxnOffsetCommit (28), v0–v3: a transactional producer commits a
//! group's offsets inside its transaction (consume-transform-produce).
//! They are stored durably at once and become the group's committed
//! offsets only when the transaction commits. The group's offsets
//! partition must be in the transaction (AddOffsetsToTxn), else
//! INVALID_TXN_STATE; a fenced producer gets PRODUCER_FENCED
//! (INVALID_PRODUCER_EPOCH before v2). v3 names the member and
//! generation, checked as for OffsetCommit.

use super::error_code::ErrorCode;
use super::offset_commit::{commit_on_coordinator, committed, result_of};
use super::wire;
use crate::group::calls::{CommitTxnOffsets, MemberRef};
use crate::group::coordinator::GroupCoordinator;
use crate::group::GroupError;
use crate::log::partition::now_ms;
use crate::log::{ProducerEpoch, ProducerId, TopicPartition};
use crate::shard::Shard;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use std::rc::Rc;

const FENCED_SINCE: i16 = 2;

fn code(r: &Result<(), GroupError>, version: i16) -> i16 {
    match r {
        Ok(()) => ErrorCode::None.code(),
        Err(GroupError::ProducerFenced) if version < FENCED_SINCE => {
            ErrorCode::InvalidProducerEpoch.code()
        }
        Err(e) => ErrorCode::from(*e).code(),
    }
}

pub async fn handle(
    shard: &Rc<Shard>,
    groups: &Rc<GroupCoordinator>,
    req: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let group = req.group_id.0.to_string();
    let now = now_ms();
    let mut known = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let tp = wire::topic_partition(t.name.0.as_str(), p.partition_index);
            if let Some(tp) = tp.filter(|tp| shard.owner_of(tp).is_some()) {
                let (offset, epoch) = (p.committed_offset, p.committed_leader_epoch);
                let metadata = p.committed_metadata.as_ref();
                let committed = committed(offset, epoch, metadata, (version, 2), now);
                known.push((tp, committed));
            }
        }
    }
    let keys: Vec<TopicPartition> = known.iter().map(|(tp, _)| tp.clone()).collect();
    let call = CommitTxnOffsets {
        group: group.clone(),
        producer: ProducerId(req.producer_id.0),
        epoch: ProducerEpoch(req.producer_epoch),
        member: MemberRef {
            member_id: req.member_id.to_string(),
            instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        },
        generation: if version >= 3 { req.generation_id } else { -1 },
        offsets: known,
    };
    let results = commit_on_coordinator(groups, &group, keys, call).await;
    let mut out = TxnOffsetCommitResponse::default();
    for t in &req.topics {
        let mut topic = TxnOffsetCommitResponseTopic::default();
        topic.name = t.name.clone();
        for p in &t.partitions {
            let result = result_of(&results, t.name.0.as_str(), p.partition_index);
            let mut rp = TxnOffsetCommitResponsePartition::default();
            rp.partition_index = p.partition_index;
            rp.error_code = code(&result, version);
            topic.partitions.push(rp);
        }
        out.topics.push(topic);
    }
    out
}
