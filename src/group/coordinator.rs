//! `GroupCoordinator`: the groups one shard coordinates, the
//! `__consumer_offsets` partitions it owns, and their timers.
//!
//! Startup replays each owned partition from its start (the latest record
//! per key wins), so a restarted broker knows its groups and offsets.
//! Offset commits are appended and fdatasync'ed before they are answered;
//! group membership is appended when it settles (Stable or Empty) and made
//! durable by the log's flush policy. A tick every 100 ms expires member
//! sessions and rebalance deadlines.
//!
//! The log is a `StateLog`, compacted past twice
//! `offsets.topic.segment.bytes`. In-memory state is updated before its
//! record is appended, so the live state (taken from memory after the
//! roll) is never older than a record that lands before it.

use super::calls::ListedGroup;
use super::member::Member;
use super::membership::{Group, State};
use super::store::{self, Key, StoredGroup, StoredMember};
use super::{offsets_partition, GroupConfig, GroupError, OFFSETS_TOPIC};
use crate::log::batch::build;
use crate::log::control::{marker_of, Marker, TxnEnd};
use crate::log::partition::now_ms;
use crate::log::producer_state::ProducerError;
use crate::log::state_log::{self, KeyedRecord, StateLog};
use crate::log::{
    Durability, LogError, PartitionId, ProducerEpoch, ProducerId, RecordBatch, TopicPartition,
};
use crate::shard::ownership::{self, ShardId};
use crate::shard::router::{Call, Router, ShardGone, Sharded};
use crate::shard::Shard;
use ahash::AHashMap;
use glommio::channels::local_channel;
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(100);

pub struct GroupCoordinator {
    pub config: GroupConfig,
    router: Router<GroupCoordinator>,
    groups: RefCell<AHashMap<String, Group>>,
    log: StateLog,
}

impl Sharded for GroupCoordinator {
    fn router(&self) -> &Router<GroupCoordinator> {
        &self.router
    }
}

impl GroupCoordinator {
    /// Opens and replays the `__consumer_offsets` partitions this shard
    /// owns, through the shard's `LogDir`.
    pub async fn open(
        shard: &Shard,
        router: Router<GroupCoordinator>,
    ) -> Result<Rc<GroupCoordinator>, LogError> {
        let config = shard.config.group.clone();
        let (partitions, segment_bytes) = (config.offsets_partitions, config.offsets_segment_bytes);
        let log = shard
            .open_state_log(OFFSETS_TOPIC, partitions, segment_bytes)
            .await?;
        let coordinator = Rc::new(GroupCoordinator {
            config,
            router,
            groups: RefCell::new(AHashMap::new()),
            log,
        });
        let now = Instant::now();
        let c = &coordinator;
        c.log
            .replay(|p, batch| c.apply_batch(p, batch, now))
            .await?;
        let weak = Rc::downgrade(&coordinator);
        glommio::spawn_local(tick_loop(weak)).detach();
        Ok(coordinator)
    }

    /// Which shard coordinates a group: the owner of its
    /// `__consumer_offsets` partition.
    pub fn owner_of(&self, group: &str) -> ShardId {
        let p = offsets_partition(group, self.config.offsets_partitions);
        ownership::owner(OFFSETS_TOPIC, p, self.router.count())
    }

    /// Runs a group request on the group's coordinator shard.
    pub async fn call<C: Call<Self>>(
        self: &Rc<Self>,
        group: &str,
        call: C,
    ) -> Result<C::Reply, ShardGone> {
        self.router.call(self, self.owner_of(group), call).await
    }

    /// Runs `make()` on every shard's coordinator; the replies in shard
    /// order.
    pub async fn call_every_shard<C: Call<Self>>(
        self: &Rc<Self>,
        make: impl Fn() -> C,
    ) -> Vec<Result<C::Reply, ShardGone>> {
        self.router.call_every_shard(self, make).await
    }

    pub fn group_count(&self) -> usize {
        self.groups.borrow().len()
    }

    /// Applies a batch of partition `p` read back on replay: a
    /// transaction's offsets stay pending until its marker.
    fn apply_batch(&self, p: PartitionId, batch: &RecordBatch, now: Instant) {
        if batch.is_control() {
            if let Some(end) = marker_of(batch) {
                let commit = end.marker == Marker::Commit;
                self.end_txn_in_memory(p, batch.producer_id(), commit);
            }
            return;
        }
        let txn = batch.is_transactional().then(|| batch.producer_id());
        for r in batch.records() {
            let (Some(k), v) = (r.key, r.value.unwrap_or_default()) else {
                continue;
            };
            if let Err(e) = self.apply(k, v, txn, now) {
                tracing::warn!(partition = %p, "skipping a {OFFSETS_TOPIC} record: {e}");
            }
        }
    }

    fn apply(
        &self,
        key: &[u8],
        value: &[u8],
        txn: Option<ProducerId>,
        now: Instant,
    ) -> Result<(), store::Malformed> {
        let key = Key::decode(key)?;
        let mut groups = self.groups.borrow_mut();
        match key {
            Key::Offset { group, partition } if txn.is_some() && !value.is_empty() => {
                let producer = txn.expect("matched as some");
                let committed = store::decode_offset(value)?;
                groups
                    .entry(group.clone())
                    .or_insert_with(|| Group::new(&group))
                    .txn_offsets
                    .entry(producer)
                    .or_default()
                    .insert(partition, committed);
            }
            Key::Offset { group, partition } => {
                if value.is_empty() {
                    if let Some(g) = groups.get_mut(&group) {
                        g.offsets.remove(&partition);
                    }
                } else {
                    let committed = store::decode_offset(value)?;
                    groups
                        .entry(group.clone())
                        .or_insert_with(|| Group::new(&group))
                        .offsets
                        .insert(partition, committed);
                }
            }
            Key::Group(group) => {
                if value.is_empty() {
                    groups.remove(&group);
                    return Ok(());
                }
                let stored = store::decode_group(value)?;
                let protocol = stored.protocol.clone().unwrap_or_default();
                let members = stored
                    .members
                    .into_iter()
                    .map(|m| {
                        let generation = stored.generation;
                        Member::restored(m, &stored.protocol_type, &protocol, generation, now)
                    })
                    .collect();
                groups
                    .entry(group.clone())
                    .or_insert_with(|| Group::new(&group))
                    .restore(
                        stored.generation,
                        Some(stored.protocol_type),
                        stored.protocol,
                        stored.leader,
                        members,
                    );
            }
        }
        Ok(())
    }

    /// Appends records to the group's log, as durable as `durability`.
    pub(super) async fn append(
        self: &Rc<Self>,
        group: &str,
        records: Vec<KeyedRecord>,
        durability: Durability,
    ) -> Result<(), GroupError> {
        if records.is_empty() {
            return Ok(());
        }
        let p = offsets_partition(group, self.config.offsets_partitions);
        let appended = self.log.append(p, &records, durability).await;
        let appended = appended.ok_or(GroupError::CoordinatorNotAvailable)?;
        appended.map_err(|e| {
            tracing::error!(group, "storing group state: {e}");
            GroupError::Storage
        })?;
        // The scan of every group runs only for a partition big enough.
        if self.log.compaction_due(p, || self.has_txn_offsets(p)) {
            let me = self.clone();
            glommio::spawn_local(async move { me.log.compact(p, || me.live_records(p)).await })
                .detach();
        }
        Ok(())
    }

    /// Whether a group kept in partition `p` has offsets of an open
    /// transaction: their records must stay in the log until its marker,
    /// so the partition is not compacted meanwhile.
    fn has_txn_offsets(&self, p: PartitionId) -> bool {
        let n = self.config.offsets_partitions;
        self.groups
            .borrow()
            .values()
            .any(|g| !g.txn_offsets.is_empty() && offsets_partition(&g.id, n) == p)
    }

    /// Ends `producer`'s transaction in the groups of partition `p`.
    fn end_txn_in_memory(&self, p: PartitionId, producer: ProducerId, commit: bool) {
        let n = self.config.offsets_partitions;
        for g in self.groups.borrow_mut().values_mut() {
            if offsets_partition(&g.id, n) == p {
                g.end_txn_offsets(producer, commit);
            }
        }
    }

    /// The shard owning partition `p` of the offsets log.
    pub fn owner_of_partition(&self, p: PartitionId) -> ShardId {
        ownership::owner(OFFSETS_TOPIC, p, self.router.count())
    }

    /// Runs a call on the owner of partition `p` of the offsets log.
    pub async fn call_partition_owner<C: Call<Self>>(
        self: &Rc<Self>,
        p: PartitionId,
        call: C,
    ) -> Result<C::Reply, ShardGone> {
        self.router
            .call(self, self.owner_of_partition(p), call)
            .await
    }

    /// The transaction coordinator put partition `p` in a producer's
    /// transaction (AddOffsetsToTxn).
    pub(super) fn expect_txn(
        &self,
        p: PartitionId,
        producer: ProducerId,
        epoch: ProducerEpoch,
    ) -> Result<(), GroupError> {
        let log = self.log.get(p).ok_or(GroupError::CoordinatorNotAvailable)?;
        log.expect_transaction(producer, epoch);
        Ok(())
    }

    /// Appends a group's offsets inside a producer's transaction, durably
    /// (TxnOffsetCommit); they stay pending until the marker.
    pub(super) async fn append_txn_offsets(
        &self,
        group: &str,
        producer: ProducerId,
        epoch: ProducerEpoch,
        records: &[KeyedRecord],
    ) -> Result<(), GroupError> {
        let p = offsets_partition(group, self.config.offsets_partitions);
        let log = self.log.get(p).ok_or(GroupError::CoordinatorNotAvailable)?;
        let stored = async {
            let mut appended = Vec::new();
            for plain in state_log::batches(records)? {
                let mut raw = build::transactional(plain.as_bytes(), producer, epoch, 0);
                let batch = RecordBatch::split_first(&mut raw)?;
                appended.push(
                    log.append_from_coordinator(batch, Durability::Synced)
                        .await?,
                );
            }
            Ok::<_, LogError>(appended)
        };
        stored.await.map(|_| ()).map_err(|e| match e {
            LogError::Producer(ProducerError::InvalidProducerEpoch { .. }) => {
                GroupError::ProducerFenced
            }
            LogError::Producer(ProducerError::InvalidTxnState { .. }) => {
                GroupError::InvalidTxnState
            }
            e => {
                tracing::error!(group, "storing transactional offsets: {e}");
                GroupError::Storage
            }
        })
    }

    /// Writes a transaction's marker to partition `p`, durably, then
    /// commits or drops the offsets it holds for the groups there.
    pub(super) async fn end_txn_offsets(
        &self,
        p: PartitionId,
        end: TxnEnd,
    ) -> Result<(), GroupError> {
        let log = self.log.get(p).ok_or(GroupError::CoordinatorNotAvailable)?;
        let written = log
            .append_marker(end.producer, end.epoch, end.marker, end.coordinator_epoch)
            .await;
        written.map_err(|e| {
            tracing::error!(partition = %p, "writing a transaction marker to {OFFSETS_TOPIC}: {e}");
            GroupError::Storage
        })?;
        self.end_txn_in_memory(p, end.producer, end.marker == Marker::Commit);
        Ok(())
    }

    /// Every live record of the groups kept in partition `p`.
    fn live_records(&self, p: PartitionId) -> Vec<KeyedRecord> {
        let groups = self.groups.borrow();
        let mut out = Vec::new();
        for g in groups.values() {
            if offsets_partition(&g.id, self.config.offsets_partitions) != p
                || g.state == State::Dead
            {
                continue;
            }
            for (tp, c) in &g.offsets {
                out.push((Key::offset(&g.id, tp), store::encode_offset(c)));
            }
            out.push((
                Key::Group(g.id.clone()).encode(),
                store::encode_group(&stored_group(g)),
            ));
        }
        out
    }

    /// The group's membership record, if it settled since last stored.
    fn take_dirty(&self, group: &str) -> Option<KeyedRecord> {
        let mut groups = self.groups.borrow_mut();
        let g = groups.get_mut(group)?;
        if !g.dirty {
            return None;
        }
        g.dirty = false;
        Some((
            Key::Group(group.to_string()).encode(),
            store::encode_group(&stored_group(g)),
        ))
    }

    /// Stores a settled membership in the background.
    pub(super) fn persist_if_dirty(self: &Rc<Self>, group: &str) {
        if let Some(record) = self.take_dirty(group) {
            let (me, group) = (self.clone(), group.to_string());
            glommio::spawn_local(async move {
                let _ = me.append(&group, vec![record], Durability::Policy).await;
            })
            .detach();
        }
    }

    /// Runs `f` on a group, if this shard has it.
    pub(super) fn with_group<R>(&self, id: &str, f: impl FnOnce(Option<&mut Group>) -> R) -> R {
        f(self.groups.borrow_mut().get_mut(id))
    }

    /// Runs `f` on a group, created empty if this shard has none yet.
    pub(super) fn with_group_or_new<R>(&self, id: &str, f: impl FnOnce(&mut Group) -> R) -> R {
        let mut groups = self.groups.borrow_mut();
        f(groups
            .entry(id.to_string())
            .or_insert_with(|| Group::new(id)))
    }

    /// Checks a commit with `check`; a group this shard does not have is
    /// created for a standalone commit (generation < 0), as Kafka does, and
    /// refused (ILLEGAL_GENERATION) otherwise.
    pub(super) fn with_group_or_standalone(
        &self,
        id: &str,
        generation: i32,
        check: impl FnOnce(&mut Group) -> Result<(), GroupError>,
    ) -> Result<(), GroupError> {
        let mut groups = self.groups.borrow_mut();
        match groups.get_mut(id) {
            Some(g) => check(g),
            None if generation < 0 => {
                groups.insert(id.to_string(), Group::new(id));
                Ok(())
            }
            None => Err(GroupError::IllegalGeneration),
        }
    }

    pub(super) fn remove_group(&self, id: &str) {
        self.groups.borrow_mut().remove(id);
    }

    /// Every group here that ListGroups shows.
    pub(super) fn listed(&self) -> Vec<ListedGroup> {
        self.groups
            .borrow()
            .values()
            .filter(|g| g.state != State::Dead)
            .map(|g| ListedGroup {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name(),
            })
            .collect()
    }

    /// Drops every group's offsets of `topic`, in memory; returns what was
    /// dropped, by group, for the tombstones.
    pub(super) fn drop_offsets_of(&self, topic: &str) -> Vec<(String, Vec<TopicPartition>)> {
        self.groups
            .borrow_mut()
            .values_mut()
            .filter_map(|g| {
                let doomed: Vec<TopicPartition> = g
                    .offsets
                    .keys()
                    .filter(|tp| tp.topic == topic)
                    .cloned()
                    .collect();
                for tp in &doomed {
                    g.offsets.remove(tp);
                }
                (!doomed.is_empty()).then(|| (g.id.clone(), doomed))
            })
            .collect()
    }

    /// Expires sessions and deadlines; stores what settled.
    fn tick(self: &Rc<Self>, now: Instant) {
        let changed: Vec<String> = self
            .groups
            .borrow_mut()
            .values_mut()
            .filter_map(|g| g.tick(now).then(|| g.id.clone()))
            .collect();
        for group in changed {
            self.persist_if_dirty(&group);
        }
        // Groups that only ever saw refused joins, or whose members all
        // left and whose offsets are gone, are forgotten (as in Kafka).
        self.groups.borrow_mut().retain(|_, g| !g.is_idle());
    }

    /// offsets.retention.minutes: an empty group's offsets older than the
    /// retention go, as in Kafka (checked every
    /// offsets.retention.check.interval.ms).
    async fn expire_offsets(self: &Rc<Self>) {
        let cutoff = now_ms() - self.config.offsets_retention.as_millis() as i64;
        let expired: Vec<(String, Vec<TopicPartition>)> = self
            .groups
            .borrow_mut()
            .values_mut()
            .filter(|g| g.state == State::Empty)
            .filter_map(|g| {
                let old: Vec<TopicPartition> = g
                    .offsets
                    .iter()
                    .filter(|(_, c)| c.commit_timestamp_ms < cutoff)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in &old {
                    g.offsets.remove(k);
                }
                (!old.is_empty()).then(|| (g.id.clone(), old))
            })
            .collect();
        for (group, old) in expired {
            tracing::info!(group, partitions = old.len(), "offsets expired");
            let tombstones = old
                .into_iter()
                .map(|tp| (Key::offset(&group, &tp), Vec::new()))
                .collect();
            let _ = self.append(&group, tombstones, Durability::Policy).await;
        }
    }

    /// Flushes the offsets logs (shutdown).
    pub async fn flush_all(&self) -> Result<(), LogError> {
        self.log.flush_all().await
    }
}

/// A group's membership as its record keeps it.
fn stored_group(g: &Group) -> StoredGroup {
    let protocol = g.protocol.clone().unwrap_or_default();
    StoredGroup {
        protocol_type: g.protocol_type.clone().unwrap_or_default(),
        generation: g.generation,
        protocol: g.protocol.clone(),
        leader: g.leader.clone(),
        state_timestamp_ms: now_ms(),
        members: g
            .members
            .iter()
            .map(|m| StoredMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout: m.rebalance_timeout,
                session_timeout: m.session_timeout,
                subscription: m.metadata_for(&protocol),
                assignment: m.assignment.clone(),
            })
            .collect(),
    }
}

async fn tick_loop(coordinator: Weak<GroupCoordinator>) {
    let mut last_retention = Instant::now();
    loop {
        glommio::timer::sleep(TICK).await;
        let Some(c) = coordinator.upgrade() else {
            return;
        };
        let now = Instant::now();
        c.tick(now);
        if now.duration_since(last_retention) >= c.config.offsets_retention_check_interval {
            last_retention = now;
            c.expire_offsets().await;
        }
    }
}

/// The answer to a join or sync: now, or once the rebalance completes (the
/// group sends it on `later`); `closed` if the group went away meanwhile.
pub(super) async fn answer_now_or_later<T>(
    now: Option<T>,
    later: local_channel::LocalReceiver<T>,
    closed: impl FnOnce() -> T,
) -> T {
    match now {
        Some(answer) => answer,
        None => later.recv().await.unwrap_or_else(closed),
    }
}
