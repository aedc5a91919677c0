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
//! The log does not grow without bound: once a partition holds more than
//! twice `offsets.topic.segment.bytes`, it is rolled, the live state of
//! its groups is appended as a snapshot, and every older segment deleted.
//! In-memory state is updated before its record is appended, so a
//! snapshot (taken from memory after the roll) is never older than a
//! record that lands before it.

use super::membership::{Group, Member, State};
use super::store::{self, Key, StoredGroup, StoredMember};
use super::{
    offsets_partition, Committed, DescribedMember, GroupConfig, GroupDescription, GroupError,
    JoinRequest, JoinResponse, SyncResponse, OFFSETS_TOPIC,
};
use crate::log::batch::build;
use crate::log::io_probe::DmaReady;
use crate::log::log_dir::TopicPartition;
use crate::log::partition::now_ms;
use crate::log::{LogConfig, LogError, Partition, RecordBatch};
use crate::shard::message::{GroupAnswer, GroupCall};
use ahash::AHashMap;
use bytes::Bytes;
use glommio::channels::local_channel;
use std::cell::RefCell;
use std::path::Path;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(100);

pub struct GroupCoordinator {
    pub config: GroupConfig,
    groups: RefCell<AHashMap<String, Group>>,
    logs: RefCell<AHashMap<u32, Rc<Partition>>>,
    /// Partitions being snapshotted right now.
    compacting: RefCell<ahash::AHashSet<u32>>,
}

/// (topic, partition, result) of one offset in a commit or delete.
pub type PartitionResults = Vec<(String, i32, Result<(), GroupError>)>;

impl GroupCoordinator {
    /// Opens and replays the `__consumer_offsets` partitions `owned`.
    pub async fn open(
        data_dir: &Path,
        config: GroupConfig,
        owned: Vec<u32>,
        dma: &DmaReady,
    ) -> Result<Rc<GroupCoordinator>, LogError> {
        let coordinator = Rc::new(GroupCoordinator {
            config,
            groups: RefCell::new(AHashMap::new()),
            logs: RefCell::new(AHashMap::new()),
            compacting: RefCell::new(ahash::AHashSet::new()),
        });
        let log_config = LogConfig {
            segment_bytes: coordinator.config.offsets_segment_bytes,
            write_buffer_bytes: 64 << 10,
            tail_cache_bytes: 256 << 10,
            ..LogConfig::default()
        };
        for p in owned {
            let dir = TopicPartition::new(OFFSETS_TOPIC, p).dir(data_dir);
            let log = Rc::new(Partition::open(&dir, log_config.clone(), dma).await?);
            crate::log::housekeeping::spawn(&log).detach();
            coordinator.replay(&log).await?;
            coordinator.logs.borrow_mut().insert(p, log);
        }
        let weak = Rc::downgrade(&coordinator);
        glommio::spawn_local(tick_loop(weak)).detach();
        Ok(coordinator)
    }

    /// Runs one group request (this shard coordinates the group).
    pub async fn handle(self: &Rc<Self>, call: GroupCall) -> GroupAnswer {
        match call {
            GroupCall::Join { group, request } => {
                GroupAnswer::Join(self.join(&group, request).await)
            }
            GroupCall::Sync {
                group,
                member_id,
                instance_id,
                generation,
                assignments,
            } => GroupAnswer::Sync(
                self.sync(
                    &group,
                    &member_id,
                    instance_id.as_deref(),
                    generation,
                    assignments,
                )
                .await,
            ),
            GroupCall::Heartbeat {
                group,
                member_id,
                instance_id,
                generation,
            } => GroupAnswer::Done(self.heartbeat(
                &group,
                &member_id,
                instance_id.as_deref(),
                generation,
            )),
            GroupCall::Leave { group, members } => GroupAnswer::Leave(self.leave(&group, members)),
            GroupCall::Commit {
                group,
                member_id,
                instance_id,
                generation,
                offsets,
            } => GroupAnswer::Offsets(Ok(self
                .commit(
                    &group,
                    &member_id,
                    instance_id.as_deref(),
                    generation,
                    offsets,
                )
                .await)),
            GroupCall::Fetch { group, topics } => {
                GroupAnswer::Committed(self.committed(&group, topics))
            }
            GroupCall::Describe { group } => GroupAnswer::Describe(self.describe(&group)),
            GroupCall::List => GroupAnswer::List(self.list()),
            GroupCall::Delete { group } => GroupAnswer::Done(self.delete(&group).await),
            GroupCall::DeleteOffsets { group, partitions } => {
                GroupAnswer::Offsets(self.delete_offsets(&group, partitions).await)
            }
        }
    }

    pub fn group_count(&self) -> usize {
        self.groups.borrow().len()
    }

    /// Applies every record of a log, oldest first.
    async fn replay(&self, log: &Partition) -> Result<(), LogError> {
        let mut offset = log.log_start();
        let now = Instant::now();
        while offset < log.next_offset() {
            let batches = log.read_batches(offset, 1 << 20).await?;
            let Some(last) = batches.last() else { break };
            offset = last.last_offset() as u64 + 1;
            for batch in &batches {
                for r in batch.records() {
                    let (Some(k), v) = (r.key, r.value.unwrap_or_default()) else {
                        continue;
                    };
                    if let Err(e) = self.apply(k, v, now) {
                        tracing::warn!(log = %log.dir().display(), "skipping a record: {e}");
                    }
                }
            }
        }
        Ok(())
    }

    fn apply(&self, key: &[u8], value: &[u8], now: Instant) -> Result<(), store::Malformed> {
        let key = Key::decode(key)?;
        let mut groups = self.groups.borrow_mut();
        match key {
            Key::Offset {
                group,
                topic,
                partition,
            } => {
                if value.is_empty() {
                    if let Some(g) = groups.get_mut(&group) {
                        g.offsets.remove(&(topic, partition));
                    }
                } else {
                    let committed = store::decode_offset(value)?;
                    groups
                        .entry(group.clone())
                        .or_insert_with(|| Group::new(&group))
                        .offsets
                        .insert((topic, partition), committed);
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
                    .map(|m| Member::restored(m, &stored.protocol_type, &protocol, now))
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

    fn log_of(&self, group: &str) -> Result<Rc<Partition>, GroupError> {
        let p = offsets_partition(group, self.config.offsets_partitions);
        self.logs
            .borrow()
            .get(&p)
            .cloned()
            .ok_or(GroupError::CoordinatorNotAvailable)
    }

    /// Appends records to the group's log; durable when `flush`.
    async fn append(
        self: &Rc<Self>,
        group: &str,
        records: Vec<(Vec<u8>, Vec<u8>)>,
        flush: bool,
    ) -> Result<(), GroupError> {
        if records.is_empty() {
            return Ok(());
        }
        let p = offsets_partition(group, self.config.offsets_partitions);
        let log = self.log_of(group)?;
        let stored = async {
            log.append(batches(&records)?).await?;
            if flush {
                log.flush().await?;
            }
            Ok::<(), LogError>(())
        };
        stored.await.map_err(|e| {
            tracing::error!(group, "storing group state: {e}");
            GroupError::Storage
        })?;
        if log.size_bytes() > 2 * self.config.offsets_segment_bytes
            && self.compacting.borrow_mut().insert(p)
        {
            let me = self.clone();
            glommio::spawn_local(async move {
                if let Err(e) = me.snapshot(p, &log).await {
                    tracing::error!(partition = p, "snapshotting __consumer_offsets: {e}");
                }
                me.compacting.borrow_mut().remove(&p);
            })
            .detach();
        }
        Ok(())
    }

    /// Rewrites partition `p` as one snapshot of its groups' live state
    /// and deletes the segments before it.
    async fn snapshot(&self, p: u32, log: &Partition) -> Result<(), LogError> {
        log.roll().await?;
        let records = self.live_records(p);
        let count = records.len();
        let info = match batches(&records) {
            Ok(b) if !b.is_empty() => log.append(b).await?,
            _ => return Ok(()),
        };
        log.flush().await?;
        let deleted = log.delete_segments_before(info.base_offset).await?;
        tracing::info!(
            partition = p,
            records = count,
            deleted,
            "__consumer_offsets snapshot"
        );
        Ok(())
    }

    /// Every live record of the groups kept in partition `p`.
    fn live_records(&self, p: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        let groups = self.groups.borrow();
        let mut out = Vec::new();
        for g in groups.values() {
            if offsets_partition(&g.id, self.config.offsets_partitions) != p
                || g.state == State::Dead
            {
                continue;
            }
            for ((topic, partition), c) in &g.offsets {
                out.push((
                    Key::offset(&g.id, topic, *partition),
                    store::encode_offset(c),
                ));
            }
            out.push((
                Key::Group(g.id.clone()).encode(),
                store::encode_group(&stored_group(g)),
            ));
        }
        out
    }

    /// The group's membership record, if it settled since last stored.
    fn take_dirty(&self, group: &str) -> Option<(Vec<u8>, Vec<u8>)> {
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
    fn persist_if_dirty(self: &Rc<Self>, group: &str) {
        if let Some(record) = self.take_dirty(group) {
            let (me, group) = (self.clone(), group.to_string());
            glommio::spawn_local(async move {
                let _ = me.append(&group, vec![record], false).await;
            })
            .detach();
        }
    }

    pub async fn join(self: &Rc<Self>, group_id: &str, req: JoinRequest) -> JoinResponse {
        if group_id.is_empty() {
            return JoinResponse::error(GroupError::InvalidGroupId, &req.member_id);
        }
        let (tx, rx) = local_channel::new_bounded(1);
        let now_answer = {
            let mut groups = self.groups.borrow_mut();
            let g = groups
                .entry(group_id.to_string())
                .or_insert_with(|| Group::new(group_id));
            g.join(req, &self.config, Instant::now(), tx)
        };
        self.persist_if_dirty(group_id);
        answer_now_or_later(now_answer, rx, || {
            JoinResponse::error(GroupError::CoordinatorNotAvailable, "")
        })
        .await
    }

    pub async fn sync(
        self: &Rc<Self>,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResponse {
        let (tx, rx) = local_channel::new_bounded(1);
        let now_answer = {
            let mut groups = self.groups.borrow_mut();
            match groups.get_mut(group_id) {
                None => Some(SyncResponse::error(GroupError::UnknownMemberId)),
                Some(g) => g.sync(
                    member_id,
                    instance,
                    generation,
                    assignments,
                    Instant::now(),
                    tx,
                ),
            }
        };
        self.persist_if_dirty(group_id);
        answer_now_or_later(now_answer, rx, || {
            SyncResponse::error(GroupError::CoordinatorNotAvailable)
        })
        .await
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        let mut groups = self.groups.borrow_mut();
        let g = groups
            .get_mut(group_id)
            .ok_or(GroupError::UnknownMemberId)?;
        g.heartbeat(member_id, instance, generation, Instant::now())
    }

    /// LeaveGroup for each (member id, instance id).
    pub fn leave(
        self: &Rc<Self>,
        group_id: &str,
        members: Vec<(String, Option<String>)>,
    ) -> Vec<Result<(), GroupError>> {
        let results = {
            let mut groups = self.groups.borrow_mut();
            let now = Instant::now();
            members
                .iter()
                .map(|(id, instance)| match groups.get_mut(group_id) {
                    None => Err(GroupError::UnknownMemberId),
                    Some(g) => g.leave(id, instance.as_deref(), now),
                })
                .collect()
        };
        self.persist_if_dirty(group_id);
        results
    }

    /// OffsetCommit: stores every offset (durably) or none.
    pub async fn commit(
        self: &Rc<Self>,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        offsets: Vec<(String, i32, Committed)>,
    ) -> PartitionResults {
        let all = |e: GroupError, offsets: &[(String, i32, Committed)]| {
            offsets
                .iter()
                .map(|(t, p, _)| (t.clone(), *p, Err(e)))
                .collect()
        };
        if group_id.is_empty() {
            return all(GroupError::InvalidGroupId, &offsets);
        }
        let allowed = {
            let mut groups = self.groups.borrow_mut();
            match groups.get_mut(group_id) {
                Some(g) => g.check_commit(member_id, instance, generation),
                None if generation < 0 => {
                    groups.insert(group_id.to_string(), Group::new(group_id));
                    Ok(())
                }
                None => Err(GroupError::IllegalGeneration),
            }
        };
        if let Err(e) = allowed {
            return all(e, &offsets);
        }
        let mut results = Vec::with_capacity(offsets.len());
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for (topic, partition, c) in offsets {
            if c.metadata.len() > self.config.offset_metadata_max_bytes {
                results.push((topic, partition, Err(GroupError::OffsetMetadataTooLarge)));
                continue;
            }
            records.push((
                Key::offset(group_id, &topic, partition),
                store::encode_offset(&c),
            ));
            accepted.push((topic, partition, c));
        }
        // Memory first (see the module comment), then the durable append.
        if let Some(g) = self.groups.borrow_mut().get_mut(group_id) {
            for (topic, partition, c) in &accepted {
                g.offsets.insert((topic.clone(), *partition), c.clone());
            }
        }
        let stored = self.append(group_id, records, true).await;
        for (topic, partition, _) in accepted {
            results.push((topic, partition, stored));
        }
        results
    }

    /// OffsetFetch: the committed offset of each partition asked for (all
    /// of the group's when `topics` is None).
    pub fn committed(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Vec<(String, i32, Option<Committed>)> {
        let groups = self.groups.borrow();
        let g = groups.get(group_id);
        match topics {
            Some(topics) => topics
                .into_iter()
                .flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p)))
                .map(|(t, p)| {
                    let c = g.and_then(|g| g.offsets.get(&(t.clone(), p)).cloned());
                    (t, p, c)
                })
                .collect(),
            None => g
                .map(|g| {
                    g.offsets
                        .iter()
                        .map(|((t, p), c)| (t.clone(), *p, Some(c.clone())))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub fn describe(&self, group_id: &str) -> GroupDescription {
        let groups = self.groups.borrow();
        let Some(g) = groups.get(group_id) else {
            // Kafka describes an unknown group as Dead, without an error.
            return GroupDescription {
                group_id: group_id.to_string(),
                error: None,
                state: State::Dead.name(),
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            };
        };
        let protocol = g.protocol.clone().unwrap_or_default();
        GroupDescription {
            group_id: group_id.to_string(),
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

    /// (group id, protocol type, state) of every group here.
    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        self.groups
            .borrow()
            .values()
            .filter(|g| g.state != State::Dead)
            .map(|g| {
                (
                    g.id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state.name(),
                )
            })
            .collect()
    }

    /// DeleteGroups: an empty group and its offsets go (tombstones).
    pub async fn delete(self: &Rc<Self>, group_id: &str) -> Result<(), GroupError> {
        let keys: Vec<Vec<u8>> = {
            let mut groups = self.groups.borrow_mut();
            let g = groups
                .get_mut(group_id)
                .ok_or(GroupError::GroupIdNotFound)?;
            let mut keys: Vec<Vec<u8>> = g
                .offsets
                .keys()
                .map(|(t, p)| Key::offset(group_id, t, *p))
                .collect();
            g.delete()?;
            groups.remove(group_id);
            keys.push(Key::Group(group_id.to_string()).encode());
            keys
        };
        let tombstones = keys.into_iter().map(|k| (k, Vec::new())).collect();
        self.append(group_id, tombstones, true).await
    }

    /// OffsetDelete: drops committed offsets of a group that no member is
    /// consuming (a group with members answers GROUP_SUBSCRIBED_TO_TOPIC).
    pub async fn delete_offsets(
        self: &Rc<Self>,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<PartitionResults, GroupError> {
        let tombstones = {
            let mut groups = self.groups.borrow_mut();
            let g = groups
                .get_mut(group_id)
                .ok_or(GroupError::GroupIdNotFound)?;
            if g.state == State::Dead {
                return Err(GroupError::GroupIdNotFound);
            }
            if !g.is_empty() {
                return Ok(partitions
                    .into_iter()
                    .map(|(t, p)| (t, p, Err(GroupError::GroupSubscribedToTopic)))
                    .collect());
            }
            for (t, p) in &partitions {
                g.offsets.remove(&(t.clone(), *p));
            }
            partitions
                .iter()
                .map(|(t, p)| (Key::offset(group_id, t, *p), Vec::new()))
                .collect()
        };
        let stored = self.append(group_id, tombstones, true).await;
        Ok(partitions
            .into_iter()
            .map(|(t, p)| (t, p, stored))
            .collect())
    }

    /// Offsets of a deleted topic are dropped from every group.
    pub async fn forget_topic(self: &Rc<Self>, topic: &str) {
        let doomed: Vec<(String, Vec<i32>)> = self
            .groups
            .borrow_mut()
            .values_mut()
            .filter_map(|g| {
                let ps: Vec<i32> = g
                    .offsets
                    .keys()
                    .filter(|(t, _)| t == topic)
                    .map(|(_, p)| *p)
                    .collect();
                for p in &ps {
                    g.offsets.remove(&(topic.to_string(), *p));
                }
                (!ps.is_empty()).then(|| (g.id.clone(), ps))
            })
            .collect();
        for (group, ps) in doomed {
            let tombstones = ps
                .into_iter()
                .map(|p| (Key::offset(&group, topic, p), Vec::new()))
                .collect();
            let _ = self.append(&group, tombstones, false).await;
        }
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
        let expired: Vec<(String, Vec<(String, i32)>)> = self
            .groups
            .borrow_mut()
            .values_mut()
            .filter(|g| g.state == State::Empty)
            .filter_map(|g| {
                let old: Vec<(String, i32)> = g
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
                .map(|(topic, partition)| (Key::offset(&group, &topic, partition), Vec::new()))
                .collect();
            let _ = self.append(&group, tombstones, false).await;
        }
    }

    /// Flushes the offsets logs (shutdown).
    pub async fn flush_all(&self) -> Result<(), LogError> {
        let logs: Vec<Rc<Partition>> = self.logs.borrow().values().cloned().collect();
        for log in logs {
            log.flush().await?;
        }
        Ok(())
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

/// Records as RecordBatches of at most 1,000 records each.
fn batches(records: &[(Vec<u8>, Vec<u8>)]) -> Result<Vec<RecordBatch>, LogError> {
    let mut out = Vec::new();
    for chunk in records.chunks(1000) {
        let built: Vec<build::Record<'_>> = chunk
            .iter()
            .map(|(k, v)| build::Record {
                key: Some(k),
                value: v,
                timestamp_delta: 0,
            })
            .collect();
        let mut raw = build::batch(now_ms(), &built);
        out.push(RecordBatch::split_first(&mut raw)?);
    }
    Ok(out)
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
async fn answer_now_or_later<T>(
    now: Option<T>,
    later: local_channel::LocalReceiver<T>,
    closed: impl FnOnce() -> T,
) -> T {
    match now {
        Some(answer) => answer,
        None => later.recv().await.unwrap_or_else(closed),
    }
}
