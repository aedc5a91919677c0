//! The group requests, each a `Call` on the coordinator shard of its group
//! with its own reply type: what JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, OffsetCommit, OffsetFetch, DescribeGroups, ListGroups,
//! DeleteGroups and OffsetDelete do to a group, and what topic deletion
//! does to every group's offsets.
//!
//! Each runs on the shard that owns the group's `__consumer_offsets`
//! partition (`GroupCoordinator::call` routes it there), against that
//! shard's `GroupCoordinator`; the state machine itself is `membership`.

use super::coordinator::{answer_now_or_later, GroupCoordinator};
use super::membership::{Group, State};
use super::store::{self, Key};
use super::{
    Committed, DescribedMember, GroupDescription, GroupError, JoinRequest, JoinResponse,
    SyncResponse,
};
use crate::log::control::TxnEnd;
use crate::log::state_log::KeyedRecord;
use crate::log::{Durability, PartitionId, ProducerEpoch, ProducerId, TopicPartition};
use crate::shard::router::Call;
use bytes::Bytes;
use glommio::channels::local_channel;
use std::rc::Rc;
use std::time::Instant;

/// The result of each partition of an offset commit or delete.
pub type PartitionResults = Vec<(TopicPartition, Result<(), GroupError>)>;

/// A member named by a request: its member id and, for static members,
/// its group.instance.id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub member_id: String,
    pub instance_id: Option<String>,
}

impl MemberRef {
    fn instance(&self) -> Option<&str> {
        self.instance_id.as_deref()
    }
}

/// JoinGroup: answered once the rebalance completes.
pub struct JoinGroup {
    pub group: String,
    pub request: JoinRequest,
}

impl Call<GroupCoordinator> for JoinGroup {
    type Reply = JoinResponse;

    async fn run(self, c: &Rc<GroupCoordinator>) -> JoinResponse {
        let JoinGroup { group, request } = self;
        if group.is_empty() {
            return JoinResponse::error(GroupError::InvalidGroupId, &request.member_id);
        }
        let (tx, rx) = local_channel::new_bounded(1);
        let now_answer =
            c.with_group_or_new(&group, |g| g.join(request, &c.config, Instant::now(), tx));
        c.persist_if_dirty(&group);
        answer_now_or_later(now_answer, rx, || {
            JoinResponse::error(GroupError::CoordinatorNotAvailable, "")
        })
        .await
    }
}

/// SyncGroup: the leader's assignment in; each member's out once it is.
pub struct SyncGroup {
    pub group: String,
    pub member: MemberRef,
    pub generation: i32,
    pub assignments: Vec<(String, Bytes)>,
}

impl Call<GroupCoordinator> for SyncGroup {
    type Reply = SyncResponse;

    async fn run(self, c: &Rc<GroupCoordinator>) -> SyncResponse {
        let (tx, rx) = local_channel::new_bounded(1);
        let now_answer = c.with_group(&self.group, |g| match g {
            None => Some(SyncResponse::error(GroupError::UnknownMemberId)),
            Some(g) => g.sync(
                &self.member.member_id,
                self.member.instance(),
                self.generation,
                self.assignments,
                Instant::now(),
                tx,
            ),
        });
        c.persist_if_dirty(&self.group);
        answer_now_or_later(now_answer, rx, || {
            SyncResponse::error(GroupError::CoordinatorNotAvailable)
        })
        .await
    }
}

pub struct Heartbeat {
    pub group: String,
    pub member: MemberRef,
    pub generation: i32,
}

impl Call<GroupCoordinator> for Heartbeat {
    type Reply = Result<(), GroupError>;

    async fn run(self, c: &Rc<GroupCoordinator>) -> Self::Reply {
        c.with_group(&self.group, |g| {
            let g = g.ok_or(GroupError::UnknownMemberId)?;
            let member = &self.member;
            g.heartbeat(
                &member.member_id,
                member.instance(),
                self.generation,
                Instant::now(),
            )
        })
    }
}

/// LeaveGroup, for each member named (v3+ leaves several at once).
pub struct LeaveGroup {
    pub group: String,
    pub members: Vec<MemberRef>,
}

impl Call<GroupCoordinator> for LeaveGroup {
    type Reply = Vec<Result<(), GroupError>>;

    async fn run(self, c: &Rc<GroupCoordinator>) -> Self::Reply {
        let now = Instant::now();
        let results = c.with_group(&self.group, |mut g| {
            self.members
                .iter()
                .map(|m| match g.as_deref_mut() {
                    None => Err(GroupError::UnknownMemberId),
                    Some(g) => g.leave(&m.member_id, m.instance(), now),
                })
                .collect()
        });
        c.persist_if_dirty(&self.group);
        results
    }
}

/// OffsetCommit: stores every offset durably (fdatasync'ed) before the
/// answer, or none.
pub struct CommitOffsets {
    pub group: String,
    pub member: MemberRef,
    pub generation: i32,
    pub offsets: Vec<(TopicPartition, Committed)>,
}

/// A commit past the checks every commit shares (the group id, the
/// member's right to commit, the metadata's size): what may be stored, as
/// records, and what is refused for its metadata.
struct Admitted {
    accepted: Vec<(TopicPartition, Committed)>,
    too_large: Vec<TopicPartition>,
    records: Vec<KeyedRecord>,
}

/// Runs those checks; `check` is the member's (a group this shard does
/// not have is created for a standalone commit, see
/// `with_group_or_standalone`). Every partition's refusal otherwise.
fn admit(
    c: &GroupCoordinator,
    group: &str,
    generation: i32,
    offsets: Vec<(TopicPartition, Committed)>,
    check: impl FnOnce(&mut Group) -> Result<(), GroupError>,
) -> Result<Admitted, PartitionResults> {
    let all = |e: GroupError, offsets: Vec<(TopicPartition, Committed)>| {
        offsets.into_iter().map(|(tp, _)| (tp, Err(e))).collect()
    };
    if group.is_empty() {
        return Err(all(GroupError::InvalidGroupId, offsets));
    }
    if let Err(e) = c.with_group_or_standalone(group, generation, check) {
        return Err(all(e, offsets));
    }
    let max_metadata = c.config.offset_metadata_max_bytes;
    let (accepted, too_large): (Vec<_>, Vec<_>) = offsets
        .into_iter()
        .partition(|(_, committed)| committed.metadata.len() <= max_metadata);
    let records = accepted
        .iter()
        .map(|(tp, committed)| (Key::offset(group, tp), store::encode_offset(committed)))
        .collect();
    Ok(Admitted {
        accepted,
        too_large: too_large.into_iter().map(|(tp, _)| tp).collect(),
        records,
    })
}

impl Admitted {
    /// Each partition's result, the stored ones' being `stored`.
    fn results(self, stored: Result<(), GroupError>) -> PartitionResults {
        let refused = self
            .too_large
            .into_iter()
            .map(|tp| (tp, Err(GroupError::OffsetMetadataTooLarge)));
        let accepted = self.accepted.into_iter().map(|(tp, _)| (tp, stored));
        refused.chain(accepted).collect()
    }
}

impl Call<GroupCoordinator> for CommitOffsets {
    type Reply = PartitionResults;

    async fn run(self, c: &Rc<GroupCoordinator>) -> PartitionResults {
        let CommitOffsets {
            group,
            member,
            generation,
            offsets,
        } = self;
        let admitted = admit(c, &group, generation, offsets, |g| {
            g.check_commit(&member.member_id, member.instance(), generation)
        });
        let mut admitted = match admitted {
            Ok(a) => a,
            Err(refused) => return refused,
        };
        // Memory first (see coordinator.rs), then the durable append.
        c.with_group(&group, |g| {
            if let Some(g) = g {
                for (tp, committed) in &admitted.accepted {
                    g.offsets.insert(tp.clone(), committed.clone());
                }
            }
        });
        let records = std::mem::take(&mut admitted.records);
        let stored = c.append(&group, records, Durability::Synced).await;
        admitted.results(stored)
    }
}

/// OffsetFetch: the committed offset of each partition asked for (all of
/// the group's when `partitions` is None).
/// With `require_stable`, a partition whose offset a transaction holds
/// pending is UNSTABLE_OFFSET_COMMIT.
pub struct FetchOffsets {
    pub group: String,
    pub partitions: Option<Vec<TopicPartition>>,
    pub require_stable: bool,
}

impl Call<GroupCoordinator> for FetchOffsets {
    type Reply = Vec<(TopicPartition, Result<Option<Committed>, GroupError>)>;

    async fn run(self, c: &Rc<GroupCoordinator>) -> Self::Reply {
        let require_stable = self.require_stable;
        c.with_group(&self.group, |g| {
            let g = g.as_deref();
            let answer = |tp: &TopicPartition| match g {
                Some(g) if require_stable && g.has_pending_offset(tp) => {
                    Err(GroupError::UnstableOffsetCommit)
                }
                g => Ok(g.and_then(|g| g.offsets.get(tp).cloned())),
            };
            match self.partitions {
                Some(partitions) => partitions
                    .into_iter()
                    .map(|tp| {
                        let committed = answer(&tp);
                        (tp, committed)
                    })
                    .collect(),
                None => g
                    .map(|g| {
                        g.offsets
                            .keys()
                            .map(|tp| (tp.clone(), answer(tp)))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
    }
}

pub struct DescribeGroup {
    pub group: String,
}

impl Call<GroupCoordinator> for DescribeGroup {
    type Reply = GroupDescription;

    async fn run(self, c: &Rc<GroupCoordinator>) -> GroupDescription {
        c.with_group(&self.group, |g| match g {
            Some(g) => describe(g),
            // Kafka describes an unknown group as Dead, without an error.
            None => GroupDescription {
                group_id: self.group.clone(),
                error: None,
                state: State::Dead.name(),
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            },
        })
    }
}

fn describe(g: &Group) -> GroupDescription {
    let protocol = g.protocol.clone().unwrap_or_default();
    GroupDescription {
        group_id: g.id.clone(),
        error: None,
        state: g.state.name(),
        protocol_type: g.protocol_type.clone().unwrap_or_default(),
        protocol: protocol.clone(),
        members: g
            .members
            .iter()
            .map(|m| DescribedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: m.metadata_for(&protocol),
                assignment: m.assignment.clone(),
            })
            .collect(),
    }
}

/// One group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
}

/// The groups one shard coordinates (ListGroups asks every shard).
pub struct ListGroups;

impl Call<GroupCoordinator> for ListGroups {
    type Reply = Vec<ListedGroup>;

    async fn run(self, c: &Rc<GroupCoordinator>) -> Vec<ListedGroup> {
        c.listed()
    }
}

/// DeleteGroups: an empty group and its offsets go (tombstones).
pub struct DeleteGroup {
    pub group: String,
}

impl Call<GroupCoordinator> for DeleteGroup {
    type Reply = Result<(), GroupError>;

    async fn run(self, c: &Rc<GroupCoordinator>) -> Self::Reply {
        let group = self.group;
        let keys = c.with_group(&group, |g| {
            let g = g.ok_or(GroupError::GroupIdNotFound)?;
            let mut keys: Vec<Vec<u8>> =
                g.offsets.keys().map(|tp| Key::offset(&group, tp)).collect();
            g.delete()?;
            keys.push(Key::Group(group.clone()).encode());
            Ok::<_, GroupError>(keys)
        })?;
        c.remove_group(&group);
        let tombstones = keys.into_iter().map(|k| (k, Vec::new())).collect();
        c.append(&group, tombstones, Durability::Synced).await
    }
}

/// OffsetDelete: drops committed offsets of a group no member is
/// consuming (a group with members answers GROUP_SUBSCRIBED_TO_TOPIC).
pub struct DeleteOffsets {
    pub group: String,
    pub partitions: Vec<TopicPartition>,
}

impl Call<GroupCoordinator> for DeleteOffsets {
    type Reply = Result<PartitionResults, GroupError>;

    async fn run(self, c: &Rc<GroupCoordinator>) -> Self::Reply {
        let DeleteOffsets { group, partitions } = self;
        let subscribed = c.with_group(&group, |g| {
            let g = g.ok_or(GroupError::GroupIdNotFound)?;
            if g.state == State::Dead {
                return Err(GroupError::GroupIdNotFound);
            }
            if !g.is_empty() {
                return Ok(true);
            }
            for tp in &partitions {
                g.offsets.remove(tp);
            }
            Ok(false)
        })?;
        if subscribed {
            let refused = partitions.into_iter();
            return Ok(refused
                .map(|tp| (tp, Err(GroupError::GroupSubscribedToTopic)))
                .collect());
        }
        let tombstones = partitions
            .iter()
            .map(|tp| (Key::offset(&group, tp), Vec::new()))
            .collect();
        let stored = c.append(&group, tombstones, Durability::Synced).await;
        Ok(partitions.into_iter().map(|tp| (tp, stored)).collect())
    }
}

/// A deleted topic's offsets go from every group this shard coordinates.
pub struct ForgetTopic {
    pub topic: String,
}

impl Call<GroupCoordinator> for ForgetTopic {
    type Reply = ();

    async fn run(self, c: &Rc<GroupCoordinator>) {
        for (group, partitions) in c.drop_offsets_of(&self.topic) {
            let tombstones = partitions
                .iter()
                .map(|tp| (Key::offset(&group, tp), Vec::new()))
                .collect();
            let _ = c.append(&group, tombstones, Durability::Policy).await;
        }
    }
}

/// TxnOffsetCommit: offsets committed inside a producer's transaction,
/// appended durably as the producer's transactional batch and pending
/// until the transaction ends (Kafka's `handleTxnCommitOffsets`). The
/// member and generation, when given (v3+), are checked as for a commit.
pub struct CommitTxnOffsets {
    pub group: String,
    pub producer: ProducerId,
    pub epoch: ProducerEpoch,
    pub member: MemberRef,
    pub generation: i32,
    pub offsets: Vec<(TopicPartition, Committed)>,
}

impl Call<GroupCoordinator> for CommitTxnOffsets {
    type Reply = PartitionResults;

    async fn run(self, c: &Rc<GroupCoordinator>) -> PartitionResults {
        let CommitTxnOffsets {
            group,
            producer,
            epoch,
            member,
            generation,
            offsets,
        } = self;
        let admitted = admit(c, &group, generation, offsets, |g| {
            if generation < 0 {
                return Ok(()); // v0-v2, or a standalone producer: nothing to check
            }
            g.check_commit(&member.member_id, member.instance(), generation)
        });
        let Admitted {
            accepted,
            too_large,
            records,
        } = match admitted {
            Ok(a) => a,
            Err(refused) => return refused,
        };
        // Memory first, so the partition is not compacted while the
        // records are on their way (see coordinator.rs); undone if they
        // are not stored.
        let pend = |add: bool| {
            c.with_group(&group, |g| {
                let Some(g) = g else { return };
                let pending = g.txn_offsets.entry(producer).or_default();
                for (tp, committed) in &accepted {
                    if add {
                        pending.insert(tp.clone(), committed.clone());
                    } else {
                        pending.remove(tp);
                    }
                }
                if pending.is_empty() {
                    g.txn_offsets.remove(&producer);
                }
            })
        };
        pend(true);
        let stored = if records.is_empty() {
            Ok(())
        } else {
            c.append_txn_offsets(&group, producer, epoch, &records)
                .await
        };
        if stored.is_err() {
            pend(false);
        }
        Admitted {
            accepted,
            too_large,
            records: Vec::new(),
        }
        .results(stored)
    }
}

/// AddOffsetsToTxn, on the owner of the group's offsets partition: the
/// partition joins the producer's transaction.
pub struct ExpectTxnOffsets {
    pub partition: PartitionId,
    pub producer: ProducerId,
    pub epoch: ProducerEpoch,
}

impl Call<GroupCoordinator> for ExpectTxnOffsets {
    type Reply = Result<(), GroupError>;

    async fn run(self, c: &Rc<GroupCoordinator>) -> Self::Reply {
        c.expect_txn(self.partition, self.producer, self.epoch)
    }
}

/// The end of a transaction that committed offsets: its marker on the
/// offsets partition, then its pending offsets committed or dropped.
pub struct EndTxnOffsets {
    pub partition: PartitionId,
    pub end: TxnEnd,
}

impl Call<GroupCoordinator> for EndTxnOffsets {
    type Reply = Result<(), GroupError>;

    async fn run(self, c: &Rc<GroupCoordinator>) -> Self::Reply {
        c.end_txn_offsets(self.partition, self.end).await
    }
}
