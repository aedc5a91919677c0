//! `Partition`: the log of one topic partition — an ordered set of segments,
//! the last one active, plus the tail cache.
//!
//! Lives on the one shard that owns the partition; all methods take `&self`
//! and are called from that shard's tasks only. State sits in a `RefCell`
//! that is never borrowed across an `.await`.
//!
//! Offsets kept, always `log_start <= durable <= written <= next`:
//! - `next`: the offset the next appended record gets;
//! - `written`: every batch below it is in a segment file (readable cold);
//! - `durable`: every batch below it survived an fdatasync.
//!
//! Contracts:
//! - `append` (or its halves, `append_readable` then `settle`) decides
//!   durability, the one place that does: with
//!   `Durability::Synced` (acks=all) it resolves once the batches are
//!   durable; with `Durability::Policy` (acks=0/1, internal writers) once
//!   they have offsets and are readable (tail cache), leaving them to the
//!   flush policy — `flush.messages` here, `flush.ms` on the housekeeping
//!   timer (`flush_if_due`). Either way the shard's `AppendSignal` is
//!   notified as soon as the batches are readable. Appends are serialized
//!   in call order.
//! - `flush` resolves once everything appended before the call is durable.
//!   Concurrent callers share fdatasyncs (group commit): while one runs,
//!   later callers queue, and the next fdatasync covers all of them.
//! - `read` returns whole batches only, the first one even if larger than
//!   `max_bytes`, and never a byte that is not yet written to its file.
//! - `append_marker` ends a producer's transaction (the transaction
//!   coordinator calls it), durably; the last stable offset is the first
//!   offset of the oldest open transaction, else the log end.

use super::append_signal::AppendSignal;
use super::appender::{SegmentAppender, WriteWatch};
use super::batch::{BatchError, RecordBatch};
use super::config::LogConfig;
use super::control::{marker_batch, EndMarker, Marker};
use super::device_flush::{self, Device};
use super::error::{IoContext, IoFailure, LogError, Result};
use super::fault;
use super::io_probe::DmaReady;
use super::offset::{LeaderEpoch, Offset, ProducerEpoch, ProducerId};
use super::producer_snapshot::{self, SnapshotEntry};
use super::producer_state::{Origin, Plan, ProducerState};
use super::read_ahead::ReadAhead;
use super::recovery::{open_sealed, rebuild_producer_state, recover_active, write_indexes};
use super::retention::LOG_START_FILE;
use super::segment::{Segment, SegmentFiles};
use super::tail_cache::TailCache;
use super::txn_index;
use glommio::sync::Semaphore;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The partition leader epoch stamped on appended batches. A single broker
/// is the only leader there has ever been.
const LEADER_EPOCH: LeaderEpoch = LeaderEpoch::FIRST;

/// What the caller of an append waits for: Kafka's acks, as the log sees
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// acks=0 / acks=1: readable now, made durable by the flush policy
    /// (`flush.messages`, `flush.ms`).
    Policy,
    /// acks=all: durable (fdatasync'ed) before the append resolves,
    /// sharing the fdatasync with every other appender waiting.
    Synced,
}

/// Offsets given to one append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: Offset,
    pub last_offset: Offset,
    /// How long a `Durability::Synced` append waited for its fdatasync
    /// after its batches were readable (zero for `Policy`).
    pub sync_wait: Duration,
    /// For a producer's retry of a stored batch: that batch's max
    /// timestamp, which Kafka answers as the log append time.
    pub retried_timestamp: Option<i64>,
}

/// How far a flush went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// fdatasync'ed (or nothing was left to flush).
    Durable,
    /// Written; durable once the caller's fdatasync of the device succeeds.
    AwaitsDeviceFlush,
}

/// An append whose batches are readable, and the durability it was asked
/// for, which `Partition::settle` waits for.
#[must_use = "an append is as durable as asked only once settled"]
#[derive(Debug)]
pub struct Appended {
    base_offset: Offset,
    last_offset: Offset,
    durability: Durability,
    readable: Instant,
    retried_timestamp: Option<i64>,
}

pub struct Partition {
    dir: PathBuf,
    config: RefCell<LogConfig>,
    /// Shared with the read and retention halves (`reader.rs`,
    /// `retention.rs`).
    pub(super) state: RefCell<State>,
    append_lock: Semaphore,
    flush_lock: Semaphore,
    /// Notified after every append, once its batches are readable.
    appended: Rc<AppendSignal>,
    /// The cold read started for the next fetch (`reader.rs`).
    pub(super) read_ahead: ReadAhead,
}

pub(super) struct State {
    /// By base offset; the last one is active and has the appender.
    pub(super) segments: BTreeMap<Offset, Segment>,
    pub(super) tail: TailCache,
    pub(super) log_start: Offset,
    pub(super) next: Offset,
    durable: Offset,
    /// When the oldest record not yet durable was appended.
    unflushed_since_ms: Option<i64>,
    /// While a flush runs: when the first record it does not cover was
    /// appended. Becomes `unflushed_since_ms` when the flush ends, so
    /// `flush.ms` counts from that record, not from before the flush.
    appended_during_flush_ms: Option<Option<i64>>,
    offline: Option<IoFailure>,
    /// What each idempotent producer last appended (deduplication).
    pub(super) producers: ProducerState,
    /// The offsets of the producer snapshots on disk, oldest first.
    pub(super) snapshots: Vec<Offset>,
    /// fdatasyncs of segment files so far (group commit makes this far
    /// smaller than the number of flush calls).
    fdatasyncs: u64,
}

impl State {
    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log has an active segment")
    }

    fn written(&self) -> Offset {
        let active = self.active();
        match &active.appender {
            Some(a) => a.written_offset(),
            None => active.next_offset,
        }
    }

    fn check_positions(&self) {
        let written = self.written();
        assert!(
            self.log_start <= self.durable,
            "log start {} > durable {}",
            self.log_start,
            self.durable
        );
        assert!(
            self.durable <= written,
            "durable {} > written {written}",
            self.durable
        );
        assert!(
            written <= self.next,
            "written {written} > next {}",
            self.next
        );
    }

    fn check_online(&self) -> Result<()> {
        match &self.offline {
            Some(failure) => Err(LogError::Offline(failure.clone())),
            None => Ok(()),
        }
    }
}

impl Partition {
    /// Opens (or creates) the log in `dir`, recovering its active segment,
    /// with an append signal of its own (tools and tests; the broker opens
    /// partitions through `LogDir`). `DmaReady` proves this thread ran the
    /// io-poll probe first.
    pub async fn open(dir: &Path, config: LogConfig, dma: &DmaReady) -> Result<Partition> {
        Partition::open_notifying(dir, config, dma, Rc::default()).await
    }

    /// Opens the log in `dir`; every append notifies `appended`.
    pub async fn open_notifying(
        dir: &Path,
        config: LogConfig,
        _: &DmaReady,
        appended: Rc<AppendSignal>,
    ) -> Result<Partition> {
        let Listing {
            dir,
            bases,
            snapshots,
            deleted_below,
        } = list_segments(dir).await?;
        let dir = &dir;
        let mut segments = BTreeMap::new();
        match bases.split_last() {
            None => {
                let segment = create_segment(dir, Offset::ZERO, &config).await?;
                segments.insert(Offset::ZERO, segment);
            }
            Some((&active, sealed)) => {
                for (i, &base) in sealed.iter().enumerate() {
                    let next = bases[i + 1];
                    segments.insert(base, open_sealed(dir, base, next, &config).await?);
                }
                segments.insert(active, recover_active(dir, active, &config).await?);
            }
        }
        let next = segments.values().next_back().expect("active").next_offset;
        let first_base = *segments.keys().next().expect("at least one segment");
        // DeleteRecords' log start, never past what recovery kept.
        let log_start = deleted_below.map_or(first_base, |o| o.max(first_base).min(next));
        let expiration = (now_ms(), config.producer_id_expiration_ms);
        let (producers, snapshots) =
            rebuild_producer_state(dir, &mut segments, snapshots, expiration).await?;
        let state = State {
            segments,
            tail: TailCache::default(),
            log_start,
            next,
            durable: next,
            unflushed_since_ms: None,
            appended_during_flush_ms: None,
            offline: None,
            fdatasyncs: 0,
            producers,
            snapshots,
        };
        state.check_positions();
        Ok(Partition {
            dir: dir.to_path_buf(),
            config: RefCell::new(config),
            state: RefCell::new(state),
            append_lock: Semaphore::new(1),
            flush_lock: Semaphore::new(1),
            appended,
            read_ahead: ReadAhead::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current config (a copy: it may change under AlterConfigs).
    pub fn config(&self) -> LogConfig {
        self.config.borrow().clone()
    }

    /// Applies new topic configs. Limits apply from the next append, the
    /// write buffer size from the next segment.
    pub fn set_config(&self, config: LogConfig) {
        *self.config.borrow_mut() = config;
    }

    pub fn log_start(&self) -> Offset {
        self.state.borrow().log_start
    }

    /// The log end offset: the offset the next record will get.
    pub fn next_offset(&self) -> Offset {
        self.state.borrow().next
    }

    /// The last stable offset: below it, every transaction has ended.
    pub fn last_stable_offset(&self) -> Offset {
        let st = self.state.borrow();
        st.producers.first_unstable().unwrap_or(st.next)
    }

    /// Producers with state here (idempotent or transactional).
    pub fn producer_count(&self) -> usize {
        self.state.borrow().producers.len()
    }

    /// Transactions open on this partition.
    pub fn open_transactions(&self) -> usize {
        self.state.borrow().producers.open_transactions()
    }

    pub fn durable_offset(&self) -> Offset {
        self.state.borrow().durable
    }

    pub fn written_offset(&self) -> Offset {
        self.state.borrow().written()
    }

    /// fdatasyncs of segment files since open.
    pub fn fdatasyncs(&self) -> u64 {
        self.state.borrow().fdatasyncs
    }

    pub fn segment_count(&self) -> usize {
        self.state.borrow().segments.len()
    }

    /// Bytes in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().segments.values().map(|s| s.size).sum()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_bases(&self) -> Vec<Offset> {
        self.state.borrow().segments.keys().copied().collect()
    }

    /// Appends batches a producer sent, stamped with the wall clock, and
    /// resolves once they are as durable as `durability` says.
    pub async fn append(
        &self,
        batches: Vec<RecordBatch>,
        durability: Durability,
    ) -> Result<AppendInfo> {
        self.append_at(batches, now_ms(), durability).await
    }

    /// Appends with an explicit clock (`segment.ms` and `flush.ms` use it).
    /// Either every batch is appended or, on a validation error, none is.
    pub async fn append_at(
        &self,
        batches: Vec<RecordBatch>,
        now_ms: i64,
        durability: Durability,
    ) -> Result<AppendInfo> {
        let appended = self.append_readable(batches, now_ms, durability).await?;
        self.settle(appended).await
    }

    /// The first half of an append: resolves once the batches have offsets
    /// and are readable; `settle` then waits for the durability asked.
    /// Several partitions' appends can so be made in order (the order of
    /// the requests that carry them) and their fdatasyncs overlap.
    pub async fn append_readable(
        &self,
        batches: Vec<RecordBatch>,
        now_ms: i64,
        durability: Durability,
    ) -> Result<Appended> {
        self.append_from(batches, now_ms, durability, Origin::Client)
            .await
    }

    /// Appends a coordinator's batch written for a producer (a
    /// transactional offset commit): only its epoch and transaction are
    /// checked, not its sequence.
    pub async fn append_from_coordinator(
        &self,
        batch: RecordBatch,
        durability: Durability,
    ) -> Result<AppendInfo> {
        let appended = self.append_from(vec![batch], now_ms(), durability, Origin::Coordinator);
        self.settle(appended.await?).await
    }

    async fn append_from(
        &self,
        batches: Vec<RecordBatch>,
        now_ms: i64,
        durability: Durability,
        origin: Origin,
    ) -> Result<Appended> {
        let config = self.config();
        check_appendable(&batches, &config, origin)?;
        let permit = self.append_lock.acquire_permit(1).await.map_err(closed)?;
        self.state.borrow().check_online()?;
        let base_offset = self.state.borrow().next;
        let plan = (self.state.borrow().producers).plan(&batches, base_offset, origin)?;
        let updates = match plan {
            Plan::Append(updates) => updates,
            // A producer's retry: nothing is stored; the answer is the
            // original's offsets, durable as this append asks (settle).
            Plan::Duplicate(original) => {
                return Ok(Appended {
                    base_offset: original.first_offset,
                    last_offset: original.last_offset,
                    durability,
                    readable: Instant::now(),
                    retried_timestamp: Some(original.max_timestamp),
                });
            }
        };
        for batch in batches {
            if self.should_roll(&batch, now_ms) {
                self.roll_locked().await?;
            }
            if let Some(watch) = self.append_one(batch, now_ms, &config) {
                let waited = watch.wait_in_flight_at_most(config.write_behind).await;
                waited.map_err(|e| self.go_offline(e))?;
            }
        }
        let last_offset = Offset::new(self.state.borrow().next.get() - 1);
        self.state.borrow_mut().producers.apply(updates);
        self.state.borrow().check_positions();
        drop(permit);
        self.appended.notify();
        Ok(Appended {
            base_offset,
            last_offset,
            durability,
            readable: Instant::now(),
            retried_timestamp: None,
        })
    }

    /// The second half of an append: acks=all waits for the fdatasync
    /// (shared with every flusher waiting); `flush.messages` flushes here,
    /// as in Kafka's append; `flush.ms` is the housekeeping timer's, so an
    /// acks=1 producer never waits for it.
    pub async fn settle(&self, appended: Appended) -> Result<AppendInfo> {
        self.settle_or_defer(appended, None)
            .await
            .map(|(info, _)| info)
    }

    /// `settle`, with acks=all's flush as `flush_or_defer(caller_flushes)`:
    /// also says whether the append awaits the caller's device flush.
    pub async fn settle_or_defer(
        &self,
        appended: Appended,
        caller_flushes: Option<Device>,
    ) -> Result<(AppendInfo, Flushed)> {
        let mut flushed = Flushed::Durable;
        if appended.durability == Durability::Synced {
            flushed = self.flush_or_defer(caller_flushes).await?;
        } else if self.flush_due_by_count() {
            self.flush().await?;
        }
        let sync_wait = match appended.durability {
            Durability::Synced => appended.readable.elapsed(),
            Durability::Policy => Duration::ZERO,
        };
        let info = AppendInfo {
            base_offset: appended.base_offset,
            last_offset: appended.last_offset,
            sync_wait,
            retried_timestamp: appended.retried_timestamp,
        };
        Ok((info, flushed))
    }

    /// The transaction coordinator put this partition in `producer`'s
    /// transaction at `epoch`: its first transactional batch may come.
    pub fn expect_transaction(&self, producer: ProducerId, epoch: ProducerEpoch) {
        let mut st = self.state.borrow_mut();
        st.producers.expect_transaction(producer, epoch);
    }

    /// Writes the marker that ends `producer`'s transaction on this
    /// partition and resolves once it is durable (as Kafka's markers, which
    /// are written with acks=all). Returns the marker's offset.
    pub async fn append_marker(
        &self,
        producer: ProducerId,
        epoch: ProducerEpoch,
        marker: Marker,
        coordinator_epoch: i32,
    ) -> Result<Offset> {
        let config = self.config();
        let now = now_ms();
        let permit = self.append_lock.acquire_permit(1).await.map_err(closed)?;
        self.state.borrow().check_online()?;
        let checked =
            (self.state.borrow().producers).check_marker(producer, epoch, coordinator_epoch);
        checked?;
        let mut raw = marker_batch(producer, epoch, marker, coordinator_epoch, now);
        let batch = RecordBatch::split_first(&mut raw)?;
        if self.should_roll(&batch, now) {
            self.roll_locked().await?;
        }
        let offset = self.state.borrow().next;
        if let Some(watch) = self.append_one(batch, now, &config) {
            let waited = watch.wait_in_flight_at_most(config.write_behind).await;
            waited.map_err(|e| self.go_offline(e))?;
        }
        {
            let mut st = self.state.borrow_mut();
            let end = EndMarker {
                marker,
                coordinator_epoch,
            };
            if let Some(aborted) = st.producers.end_txn(producer, epoch, end, offset) {
                let active = st.active_mut();
                active.aborted.push(aborted);
                active.aborted_unsaved = true;
            }
            st.check_positions();
        }
        drop(permit);
        self.appended.notify();
        let appended = Appended {
            base_offset: offset,
            last_offset: offset,
            durability: Durability::Synced,
            readable: Instant::now(),
            retried_timestamp: None,
        };
        self.settle(appended).await?;
        Ok(offset)
    }

    /// Gives one batch the next offsets and hands it to the appender, the
    /// indexes and the tail cache (the caller holds the append lock).
    /// Returns a watch to wait on when too many writes are in flight.
    fn append_one(
        &self,
        mut batch: RecordBatch,
        now_ms: i64,
        config: &LogConfig,
    ) -> Option<WriteWatch> {
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        batch.assign_offset_and_epoch(st.next, LEADER_EPOCH);
        let next = batch.next();
        let active = st.active_mut();
        let position = active.size;
        active.rolling_ms.get_or_insert(now_ms);
        let appender = active.appender.as_mut().expect("active segment appends");
        appender.append(batch.as_bytes(), next);
        let watch = (appender.in_flight() > config.write_behind).then(|| appender.watch());
        active.note_batch(position, &batch, config.index_interval_bytes);
        st.tail.push(st.next, next, batch.into_bytes());
        st.next = next;
        st.unflushed_since_ms.get_or_insert(now_ms);
        if let Some(since) = &mut st.appended_during_flush_ms {
            since.get_or_insert(now_ms);
        }
        let written = st.written();
        st.tail.evict(config.tail_cache_bytes, written);
        watch
    }

    fn should_roll(&self, batch: &RecordBatch, now_ms: i64) -> bool {
        let st = self.state.borrow();
        let active = st.active();
        if active.size == 0 {
            return false;
        }
        // Offsets relative to the base must fit the indexes' u32.
        let spanned = st
            .next
            .plus(batch.offset_count())
            .since(active.base_offset());
        active.size + batch.len() as u64 > self.config().segment_bytes
            || active.index.len() >= self.config().index_entries_max()
            || spanned > u64::from(u32::MAX)
            || active
                .rolling_ms
                .is_some_and(|t| now_ms.saturating_sub(t) >= self.config().segment_ms)
    }

    /// Seals the active segment and starts a new one at the log end.
    pub async fn roll(&self) -> Result<()> {
        let _permit = self.append_lock.acquire_permit(1).await.map_err(closed)?;
        self.state.borrow().check_online()?;
        if self.state.borrow().active().size == 0 {
            return Ok(());
        }
        self.roll_locked().await
    }

    /// Caller holds the append lock. Takes the flush lock so no flush writes
    /// the old segment while it is sealed.
    async fn roll_locked(&self) -> Result<()> {
        let _flush = self.flush_lock.acquire_permit(1).await.map_err(closed)?;
        let (watch, end, files, size) = {
            let mut st = self.state.borrow_mut();
            let active = st.active_mut();
            let appender = active.appender.as_mut().expect("active segment appends");
            let end = appender.issue_flush();
            (appender.watch(), end, active.files.clone(), active.size)
        };
        watch
            .wait_written(end)
            .await
            .map_err(|e| self.go_offline(e))?;
        watch
            .wait_zeroing_done()
            .await
            .map_err(|e| self.go_offline(e))?;
        files
            .truncate_durably(size)
            .await
            .map_err(|e| self.go_offline(e.into_failure()))?;
        let (base, next, index, time_index) = {
            let mut st = self.state.borrow_mut();
            let next = st.next;
            st.durable = next;
            st.fdatasyncs += 1;
            st.unflushed_since_ms = None;
            let active = st.active_mut();
            active.appender = None;
            active.finish_time_index();
            let encoded = (active.index.encode(), active.time_index.encode());
            (active.base_offset(), next, encoded.0, encoded.1)
        };
        write_indexes(&self.dir, base, &index, &time_index)
            .await
            .map_err(|e| self.go_offline(e.into_failure()))?;
        let fresh = create_segment(&self.dir, next, &self.config())
            .await
            .map_err(|e| self.go_offline(e.into_failure()))?;
        self.state.borrow_mut().segments.insert(next, fresh);
        // At each roll, as Kafka: an open then replays one segment at most.
        self.snapshot_producers_at(next, false).await;
        Ok(())
    }

    /// Writes the producer state, which is that of the log up to `offset`
    /// (the caller holds the append lock), as a snapshot, and deletes all
    /// but the one before it. A snapshot that cannot be written is only a
    /// warning: the next open replays more of the log.
    async fn snapshot_producers_at(&self, offset: Offset, sync: bool) {
        if self.state.borrow().snapshots.last() == Some(&offset) {
            return; // one at this offset already (a roll after a restart)
        }
        // A snapshot says every abort below it is in a `.txnindex` file.
        if let Err(e) = self.save_aborted().await {
            tracing::warn!(partition = %self.dir.display(), "writing a transaction index: {e}");
            return;
        }
        let entries = self.state.borrow().producers.snapshot();
        let written = producer_snapshot::write(&self.dir, offset, &entries, sync).await;
        if let Err(e) = written {
            tracing::warn!(partition = %self.dir.display(), "writing a producer snapshot: {e}");
            return;
        }
        let doomed: Vec<Offset> = {
            let mut st = self.state.borrow_mut();
            st.snapshots.push(offset);
            let keep_from = st.snapshots.len().saturating_sub(2);
            st.snapshots.drain(..keep_from).collect()
        };
        for old in doomed {
            if let Err(e) = producer_snapshot::remove(&self.dir, old).await {
                tracing::warn!(partition = %self.dir.display(), "deleting a producer snapshot: {e}");
            }
        }
    }

    /// Writes the `.txnindex` of each segment whose aborts are not all in
    /// it (the caller holds the append lock).
    async fn save_aborted(&self) -> Result<()> {
        let unsaved: Vec<(Offset, Vec<txn_index::AbortedTxn>)> = {
            let st = self.state.borrow();
            let unsaved = st.segments.iter().filter(|(_, s)| s.aborted_unsaved);
            unsaved.map(|(&b, s)| (b, s.aborted.clone())).collect()
        };
        for (base, aborted) in unsaved {
            txn_index::write(&self.dir, base, &aborted).await?;
            if let Some(s) = self.state.borrow_mut().segments.get_mut(&base) {
                s.aborted_unsaved = s.aborted.len() != aborted.len();
            }
        }
        Ok(())
    }

    /// Each idempotent producer the partition knows, with its last batch
    /// (DescribeProducers).
    pub fn producers(&self) -> Vec<SnapshotEntry> {
        self.state.borrow().producers.snapshot()
    }

    /// Forgets idempotent producers idle past `producer.id.expiration.ms`
    /// (by their last batch's timestamp, as Kafka).
    pub fn expire_producers(&self, now_ms: i64) -> usize {
        let expiration = self.config().producer_id_expiration_ms;
        let expired = self.state.borrow_mut().producers.expire(now_ms, expiration);
        if expired > 0 {
            tracing::info!(partition = %self.dir.display(), expired, "idle producers forgotten");
        }
        expired
    }

    /// At shutdown: a snapshot of the producer state at the log end, so
    /// the next open replays nothing (none is written if the newest
    /// snapshot is at the log end already).
    pub async fn snapshot_producers(&self) -> Result<()> {
        let _permit = self.append_lock.acquire_permit(1).await.map_err(closed)?;
        // An offline log's end may hold batches its disk refused: no
        // snapshot may claim them.
        self.state.borrow().check_online()?;
        let end = self.state.borrow().next;
        self.snapshot_producers_at(end, true).await;
        Ok(())
    }

    /// Makes everything appended before this call durable (fdatasync).
    pub async fn flush(&self) -> Result<()> {
        self.flush_or_defer(None).await.map(|_| ())
    }

    /// `flush`, except that when `caller_flushes` names this partition's
    /// device and the writes to flush are pure overwrites of the synced
    /// extent, it returns once they are written, without an fdatasync:
    /// `Flushed::AwaitsDeviceFlush`. The data is then durable only after
    /// the caller's fdatasync of that device, started after this returned,
    /// succeeds (`device_flush`), and this partition still counts it as
    /// not durable (its own flush policy flushes it again later).
    pub async fn flush_or_defer(&self, caller_flushes: Option<Device>) -> Result<Flushed> {
        let target = self.state.borrow().next;
        if self.state.borrow().durable >= target {
            return self
                .state
                .borrow()
                .check_online()
                .map(|()| Flushed::Durable);
        }
        let _flush = self.flush_lock.acquire_permit(1).await.map_err(closed)?;
        let (upto, end, watch, files, deferred, shared) = {
            let mut st = self.state.borrow_mut();
            st.check_online()?;
            if st.durable >= target {
                return Ok(Flushed::Durable);
            }
            let upto = st.next;
            st.appended_during_flush_ms = Some(None);
            let active = st.active_mut();
            let appender = active.appender.as_mut().expect("active segment appends");
            let end = appender.issue_flush();
            let watch = appender.watch();
            // Pure overwrites share the shard's next fdatasync (a device
            // cache flush), or the caller's; anything else commits its own
            // metadata.
            let files = active.files.clone();
            let pure = watch.overwrites_synced();
            let deferred = pure && caller_flushes == Some(device_flush::device_of(&files.dma));
            let shared = (pure && !deferred).then(|| device_flush::joining(&files.dma));
            (upto, end, watch, files, deferred, shared)
        };
        watch
            .wait_written(end)
            .await
            .map_err(|e| self.go_offline(e))?;
        if deferred {
            // Not durable yet: what was appended meanwhile is not the
            // oldest unflushed record, `unflushed_since_ms` still is.
            self.state.borrow_mut().appended_during_flush_ms = None;
            return Ok(Flushed::AwaitsDeviceFlush);
        }
        let is_shared = shared.is_some();
        let synced = if let Some(joined) = shared {
            device_flush::flush(joined, &files.dma).await
        } else {
            let extent = watch.written_extent();
            let synced = fault::fdatasync(&files.dma).await;
            if synced.is_ok() {
                watch.synced_through(extent);
            }
            synced
        };
        synced.map_err(|e| {
            let how = if is_shared {
                "fdatasync shared by"
            } else {
                "fdatasync"
            };
            let what = format!("{how} {}", files.log_path.display());
            self.go_offline(IoFailure::new(what, e))
        })?;
        let mut st = self.state.borrow_mut();
        st.fdatasyncs += 1;
        st.durable = st.durable.max(upto);
        // Records appended while the fdatasync ran are not covered by it.
        let since = st.appended_during_flush_ms.take().flatten();
        st.unflushed_since_ms = if st.durable == st.next { None } else { since };
        st.check_positions();
        Ok(Flushed::Durable)
    }

    /// Takes the partition offline because an fdatasync that was to cover
    /// its writes (another shard's, after `Flushed::AwaitsDeviceFlush`)
    /// failed.
    pub fn covering_flush_failed(&self, failure: IoFailure) {
        let _ = self.go_offline(failure);
    }

    /// True if `flush.messages` or `flush.ms` asks for a flush now.
    pub fn flush_due(&self, now_ms: i64) -> bool {
        let st = self.state.borrow();
        self.flush_due_by_count()
            || (st.next > st.durable
                && st
                    .unflushed_since_ms
                    .is_some_and(|t| now_ms.saturating_sub(t) >= self.config().flush_ms))
    }

    /// True if at least `flush.messages` records are not durable.
    fn flush_due_by_count(&self) -> bool {
        let st = self.state.borrow();
        let unflushed = st.next.since(st.durable);
        let due_at = u64::try_from(self.config().flush_messages)
            .unwrap_or(0)
            .max(1);
        unflushed > 0 && unflushed >= due_at
    }

    /// Applies the flush policy; the shard calls this on a timer.
    pub async fn flush_if_due(&self, now_ms: i64) -> Result<bool> {
        if !self.flush_due(now_ms) {
            return Ok(false);
        }
        self.flush().await.map(|()| true)
    }

    /// Takes the partition offline after a failed write or fdatasync:
    /// after a failed fdatasync the state of the page cache is unknown, so
    /// nothing more is accepted until the partition is reopened (and
    /// recovered from what the disk holds).
    fn go_offline(&self, failure: IoFailure) -> LogError {
        tracing::error!(
            partition = %self.dir.display(),
            errno = failure.errno(),
            disk_full = failure.is_disk_full(),
            "log offline: {failure}"
        );
        let mut st = self.state.borrow_mut();
        st.offline.get_or_insert(failure.clone());
        LogError::Offline(failure)
    }

    /// Flushes and stops accepting appends.
    pub async fn close(&self) -> Result<()> {
        self.flush().await?;
        self.append_lock.close();
        let watch = self
            .state
            .borrow()
            .active()
            .appender
            .as_ref()
            .map(|a| a.watch());
        if let Some(watch) = watch {
            watch
                .wait_zeroing_done()
                .await
                .map_err(|e| self.go_offline(e))?;
        }
        Ok(())
    }
}

/// What a partition's directory holds.
struct Listing {
    /// Its absolute path: glommio's directory calls need one.
    dir: PathBuf,
    /// Segment base offsets and producer snapshot offsets, oldest first.
    bases: Vec<Offset>,
    snapshots: Vec<Offset>,
    /// DeleteRecords' log start, if one was recorded.
    deleted_below: Option<Offset>,
}

/// Creates `dir` if needed and lists what it holds, off the executor
/// (directory calls block).
async fn list_segments(dir: &Path) -> Result<Listing> {
    let wanted = dir.to_path_buf();
    let listed = glommio::executor()
        .spawn_blocking(move || list_dir(&wanted))
        .await;
    listed.context(|| format!("opening {}", dir.display()))
}

fn list_dir(wanted: &Path) -> std::io::Result<Listing> {
    std::fs::create_dir_all(wanted)?;
    let dir = std::fs::canonicalize(wanted)?;
    let deleted_below = match std::fs::read_to_string(dir.join(LOG_START_FILE)) {
        Ok(text) => text.trim().parse::<u64>().ok().map(Offset::new),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let (mut bases, mut snapshots) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(&dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(base) = name
            .strip_suffix(".log")
            .and_then(|b| b.parse::<u64>().ok())
        {
            bases.push(Offset::new(base));
        } else if let Some(offset) = producer_snapshot::offset_of(&name) {
            snapshots.push(offset);
        }
    }
    bases.sort_unstable();
    snapshots.sort_unstable();
    Ok(Listing {
        dir,
        bases,
        snapshots,
        deleted_below,
    })
}

/// Creates an empty segment file at `base` with its appender, and makes its
/// directory entry durable.
async fn create_segment(dir: &Path, base: Offset, config: &LogConfig) -> Result<Segment> {
    let files = Rc::new(SegmentFiles::open(dir, base, true).await?);
    if config.preallocate {
        files
            .dma
            .pre_allocate(config.segment_bytes, true)
            .await
            .context(|| format!("preallocating {}", files.log_path.display()))?;
    }
    let directory = glommio::io::Directory::open(dir)
        .await
        .context(|| format!("opening {}", dir.display()))?;
    directory
        .sync()
        .await
        .context(|| format!("syncing {}", dir.display()))?;
    let _ = directory.close().await;
    let appender = SegmentAppender::new(files.dma.clone(), config, 0, &[], base);
    let mut segment = Segment::empty(files);
    segment.appender = Some(appender);
    Ok(segment)
}

fn closed<T>(_: glommio::GlommioError<T>) -> LogError {
    LogError::Closed
}

/// What makes a set of batches appendable as a whole: at least one, each
/// valid as a producer's batch, none larger than a segment; and an
/// idempotent producer's batch alone, with a sequence (Kafka refuses any
/// record set of several batches, and a producer batch without one).
fn check_appendable(batches: &[RecordBatch], config: &LogConfig, origin: Origin) -> Result<()> {
    if batches.is_empty() {
        // A produce request with a null or empty record set.
        return Err(BatchError::InvalidRecord("no record batch to append").into());
    }
    let idempotent = |b: &&RecordBatch| b.producer_id().0 >= 0;
    if batches.len() > 1 && batches.iter().any(|b| idempotent(&b)) {
        let why = "an idempotent producer sends one batch per partition and request";
        return Err(BatchError::InvalidRecord(why).into());
    }
    if origin == Origin::Client
        && batches
            .iter()
            .filter(idempotent)
            .any(|b| b.base_sequence() < 0)
    {
        let why = "an idempotent producer's batch has a sequence";
        return Err(BatchError::InvalidRecord(why).into());
    }
    for batch in batches {
        batch.validate_for_append(config.max_message_bytes)?;
        if batch.len() as u64 > config.segment_bytes {
            return Err(BatchError::RecordListTooLarge {
                size: batch.len(),
                max: config.segment_bytes as usize,
            }
            .into());
        }
    }
    Ok(())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
