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
//! - `append` decides durability, the one place that does: with
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

use super::append_signal::AppendSignal;
use super::appender::SegmentAppender;
use super::batch::{BatchError, RecordBatch};
use super::config::ColdReads;
use super::config::LogConfig;
use super::error::{IoContext, LogError, Result};
use super::io_probe::DmaReady;
use super::recovery::{open_sealed, recover_active, write_indexes};
use super::segment::{file_name, BatchScanner, FileSlice, Scanned, Segment, SegmentFiles};
use super::tail_cache::TailCache;
use bytes::Bytes;
use glommio::sync::Semaphore;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The partition leader epoch stamped on appended batches. A single broker
/// is the only leader there has ever been.
const LEADER_EPOCH: i32 = 0;

/// Where the bytes of a read are.
#[derive(Debug)]
pub enum ReadChunk {
    /// Nothing at or after the offset yet (offset == log end).
    Empty,
    /// Hot: batches from the tail cache, ready for a vectored write.
    Cached(Vec<Bytes>),
    /// Cold: a byte range of a segment file, ready for `sendfile`
    /// (`log.cold.reads = sendfile`).
    File(FileSlice),
    /// Cold: the same range read from the segment with O_DIRECT on the
    /// shard's io_uring (`log.cold.reads = direct`).
    Read(Bytes),
}

impl ReadChunk {
    pub fn len(&self) -> usize {
        match self {
            ReadChunk::Empty => 0,
            ReadChunk::Cached(v) => v.iter().map(Bytes::len).sum(),
            ReadChunk::File(f) => f.len as usize,
            ReadChunk::Read(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the bytes into memory with a blocking `pread`. For tests and
    /// tools only: the broker sends a `File` chunk with `sendfile`.
    pub fn to_bytes_blocking(&self) -> std::io::Result<Bytes> {
        use std::os::unix::fs::FileExt;
        match self {
            ReadChunk::Empty => Ok(Bytes::new()),
            ReadChunk::Cached(v) => Ok(v.concat().into()),
            ReadChunk::Read(b) => Ok(b.clone()),
            ReadChunk::File(f) => {
                let mut out = vec![0u8; f.len as usize];
                f.file.read_exact_at(&mut out, f.position)?;
                Ok(out.into())
            }
        }
    }
}

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
    pub base_offset: u64,
    pub last_offset: u64,
    /// How long a `Durability::Synced` append waited for its fdatasync
    /// after its batches were readable (zero for `Policy`).
    pub sync_wait: Duration,
}

pub struct Partition {
    dir: PathBuf,
    config: RefCell<LogConfig>,
    state: RefCell<State>,
    append_lock: Semaphore,
    flush_lock: Semaphore,
    /// Notified after every append, once its batches are readable.
    appended: Rc<AppendSignal>,
}

struct State {
    /// By base offset; the last one is active and has the appender.
    segments: BTreeMap<u64, Segment>,
    tail: TailCache,
    log_start: u64,
    next: u64,
    durable: u64,
    /// When the oldest record not yet durable was appended.
    unflushed_since_ms: Option<i64>,
    /// While a flush runs: when the first record it does not cover was
    /// appended. Becomes `unflushed_since_ms` when the flush ends, so
    /// `flush.ms` counts from that record, not from before the flush.
    appended_during_flush_ms: Option<Option<i64>>,
    offline: Option<String>,
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

    fn written(&self) -> u64 {
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
            Some(why) => Err(LogError::Offline(why.clone())),
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
        let (dir, bases) = list_segments(dir).await?;
        let dir = &dir;
        let mut segments = BTreeMap::new();
        match bases.split_last() {
            None => {
                let segment = create_segment(dir, 0, &config).await?;
                segments.insert(0, segment);
            }
            Some((&active, sealed)) => {
                for (i, &base) in sealed.iter().enumerate() {
                    let next = bases[i + 1];
                    segments.insert(base, open_sealed(dir, base, next, &config).await?);
                }
                segments.insert(active, recover_active(dir, active, &config).await?);
            }
        }
        let log_start = *segments.keys().next().expect("at least one segment");
        let next = segments.values().next_back().expect("active").next_offset;
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
        };
        state.check_positions();
        Ok(Partition {
            dir: dir.to_path_buf(),
            config: RefCell::new(config),
            state: RefCell::new(state),
            append_lock: Semaphore::new(1),
            flush_lock: Semaphore::new(1),
            appended,
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

    pub fn log_start(&self) -> u64 {
        self.state.borrow().log_start
    }

    /// The log end offset: the offset the next record will get.
    pub fn next_offset(&self) -> u64 {
        self.state.borrow().next
    }

    pub fn durable_offset(&self) -> u64 {
        self.state.borrow().durable
    }

    pub fn written_offset(&self) -> u64 {
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
    pub fn segment_bases(&self) -> Vec<u64> {
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
        if batches.is_empty() {
            // A produce request with a null or empty record set.
            return Err(BatchError::InvalidRecord("no record batch to append").into());
        }
        let config = self.config();
        for batch in &batches {
            batch.validate_for_append(config.max_message_bytes)?;
            if batch.len() as u64 > config.segment_bytes {
                return Err(BatchError::RecordListTooLarge {
                    size: batch.len(),
                    max: config.segment_bytes as usize,
                }
                .into());
            }
        }
        let permit = self.append_lock.acquire_permit(1).await.map_err(closed)?;
        self.state.borrow().check_online()?;
        let base_offset = self.state.borrow().next;
        for batch in batches {
            if self.should_roll(&batch, now_ms) {
                self.roll_locked().await?;
            }
            let watch = {
                let mut st = self.state.borrow_mut();
                let st = &mut *st;
                let mut batch = batch;
                batch.assign_offset_and_epoch(st.next as i64, LEADER_EPOCH);
                let next = batch.last_offset() as u64 + 1;
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
            };
            if let Some(watch) = watch {
                let waited = watch.wait_in_flight_at_most(config.write_behind).await;
                waited.map_err(|e| self.go_offline(e))?;
            }
        }
        let last_offset = self.state.borrow().next - 1;
        self.state.borrow().check_positions();
        drop(permit);
        self.appended.notify();
        let readable = Instant::now();
        // acks=all waits for the fdatasync (shared with every flusher
        // waiting); `flush.messages` flushes here, as in Kafka's append;
        // `flush.ms` is the housekeeping timer's, so an acks=1 producer
        // never waits for it.
        if durability == Durability::Synced || self.flush_due_by_count() {
            self.flush().await?;
        }
        let sync_wait = match durability {
            Durability::Synced => readable.elapsed(),
            Durability::Policy => Duration::ZERO,
        };
        Ok(AppendInfo {
            base_offset,
            last_offset,
            sync_wait,
        })
    }

    fn should_roll(&self, batch: &RecordBatch, now_ms: i64) -> bool {
        let st = self.state.borrow();
        let active = st.active();
        if active.size == 0 {
            return false;
        }
        let records = batch.last_offset_delta().max(0) as u64 + 1;
        active.size + batch.len() as u64 > self.config().segment_bytes
            || active.index.len() >= self.config().index_entries_max()
            || st.next + records - active.base_offset() > u64::from(u32::MAX)
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
            .map_err(|e| self.go_offline(e.to_string()))?;
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
            .map_err(|e| self.go_offline(e.to_string()))?;
        let fresh = create_segment(&self.dir, next, &self.config())
            .await
            .map_err(|e| self.go_offline(e.to_string()))?;
        self.state.borrow_mut().segments.insert(next, fresh);
        Ok(())
    }

    /// Makes everything appended before this call durable (fdatasync).
    pub async fn flush(&self) -> Result<()> {
        let target = self.state.borrow().next;
        if self.state.borrow().durable >= target {
            return self.state.borrow().check_online();
        }
        let _flush = self.flush_lock.acquire_permit(1).await.map_err(closed)?;
        let (upto, end, watch, files) = {
            let mut st = self.state.borrow_mut();
            st.check_online()?;
            if st.durable >= target {
                return Ok(());
            }
            let upto = st.next;
            st.appended_during_flush_ms = Some(None);
            let active = st.active_mut();
            let appender = active.appender.as_mut().expect("active segment appends");
            let end = appender.issue_flush();
            (upto, end, appender.watch(), active.files.clone())
        };
        watch
            .wait_written(end)
            .await
            .map_err(|e| self.go_offline(e))?;
        files
            .dma
            .fdatasync()
            .await
            .map_err(|e| self.go_offline(format!("fdatasync {}: {e}", files.log_path.display())))?;
        let mut st = self.state.borrow_mut();
        st.fdatasyncs += 1;
        st.durable = st.durable.max(upto);
        // Records appended while the fdatasync ran are not covered by it.
        let since = st.appended_during_flush_ms.take().flatten();
        st.unflushed_since_ms = if st.durable == st.next { None } else { since };
        st.check_positions();
        Ok(())
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
        let unflushed = st.next - st.durable;
        unflushed > 0 && unflushed >= self.config().flush_messages.max(1) as u64
    }

    /// Applies the flush policy; the shard calls this on a timer.
    pub async fn flush_if_due(&self, now_ms: i64) -> Result<bool> {
        if !self.flush_due(now_ms) {
            return Ok(false);
        }
        self.flush().await.map(|()| true)
    }

    fn go_offline(&self, why: String) -> LogError {
        tracing::error!(partition = %self.dir.display(), "log offline: {why}");
        let mut st = self.state.borrow_mut();
        st.offline.get_or_insert(why.clone());
        LogError::Offline(why)
    }

    /// Reads whole batches from the one holding `offset`, up to `max_bytes`
    /// (at least one batch). Kafka's rules: OFFSET_OUT_OF_RANGE outside
    /// `[log_start, log_end]`, empty at the log end.
    pub async fn read(&self, offset: u64, max_bytes: usize) -> Result<ReadChunk> {
        if max_bytes == 0 {
            // A fetch whose byte budget is spent: the offset is still
            // checked (OFFSET_OUT_OF_RANGE), nothing is read.
            return self.check_offset(offset).map(|()| ReadChunk::Empty);
        }
        let (files, from, end) = match self.locate(offset, max_bytes)? {
            Located::Done(chunk) => return Ok(chunk),
            Located::File { files, from, end } => (files, from, end),
        };
        let mut scanner = BatchScanner::new(&files, end);
        let mut pos = from;
        let (start, first_len) = loop {
            let Some((len, _, last)) = scanner.header(pos).await? else {
                return Ok(ReadChunk::Empty);
            };
            if last >= offset as i64 {
                break (pos, len);
            }
            pos += len;
        };
        let limit = end.min(start + first_len.max(max_bytes as u64));
        // Jump to the last indexed batch boundary inside the limit, then walk
        // the few batches after it.
        let mut pos = start + first_len;
        if let Some(p) = self.boundary_before(files.base_offset, limit) {
            pos = pos.max(p);
        }
        while let Some((len, _, _)) = scanner.header(pos).await? {
            if pos + len > limit {
                break;
            }
            pos += len;
        }
        let len = pos - start;
        match self.config().cold_reads {
            ColdReads::Direct => Ok(ReadChunk::Read(files.read(start, len as usize).await?)),
            ColdReads::Sendfile => Ok(ReadChunk::File(FileSlice {
                file: files.reader()?,
                position: start,
                len: len as u32,
            })),
        }
    }

    fn boundary_before(&self, base: u64, limit: u64) -> Option<u64> {
        let st = self.state.borrow();
        let segment = st.segments.get(&base)?;
        let (_, p) = segment
            .index
            .floor_by_position(limit.min(u64::from(u32::MAX)) as u32)?;
        Some(u64::from(p))
    }

    /// OFFSET_OUT_OF_RANGE unless `offset` is in [log start, log end].
    fn check_offset(&self, offset: u64) -> Result<()> {
        let st = self.state.borrow();
        if offset < st.log_start || offset > st.next {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start: st.log_start,
                log_end: st.next,
            });
        }
        Ok(())
    }

    fn locate(&self, offset: u64, max_bytes: usize) -> Result<Located> {
        self.check_offset(offset)?;
        let st = self.state.borrow();
        if offset == st.next {
            return Ok(Located::Done(ReadChunk::Empty));
        }
        if st.tail.first_offset().is_some_and(|first| first <= offset) {
            return Ok(Located::Done(ReadChunk::Cached(
                st.tail.read(offset, max_bytes),
            )));
        }
        let segment = st
            .segments
            .range(..=offset)
            .next_back()
            .map(|(_, s)| s)
            .filter(|s| offset < s.next_offset)
            .ok_or_else(|| LogError::Corrupt(format!("no segment holds offset {offset}")))?;
        let (_, from) = segment.index.floor((offset - segment.base_offset()) as u32);
        Ok(Located::File {
            files: segment.files.clone(),
            from: u64::from(from),
            end: segment.readable_end(),
        })
    }

    /// Whole batches from the one holding `offset`, in memory. Used by the
    /// log's own lookups and by tests; fetches use [`Partition::read`].
    pub async fn read_batches(&self, offset: u64, max_bytes: usize) -> Result<Vec<RecordBatch>> {
        let (files, from, end) = match self.locate(offset, max_bytes)? {
            Located::Done(ReadChunk::Cached(chunks)) => {
                return chunks
                    .into_iter()
                    .map(|mut b| RecordBatch::split_first(&mut b).map_err(LogError::from))
                    .collect();
            }
            Located::Done(_) => return Ok(Vec::new()),
            Located::File { files, from, end } => (files, from, end),
        };
        let mut scanner = BatchScanner::new(&files, end);
        let mut pos = from;
        let mut out: Vec<RecordBatch> = Vec::new();
        let mut total = 0usize;
        while let Scanned::Batch(batch) = scanner.batch(pos).await? {
            pos += batch.len() as u64;
            if batch.last_offset() < offset as i64 {
                continue;
            }
            if !out.is_empty() && total + batch.len() > max_bytes {
                break;
            }
            total += batch.len();
            out.push(batch);
        }
        Ok(out)
    }

    /// The offset (and timestamp) of the first record with a timestamp at or
    /// after `timestamp` (ListOffsets by time), or `None` if every record is
    /// older.
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(u64, i64)>> {
        let mut offset = {
            let st = self.state.borrow();
            let Some(segment) = st.segments.values().find(|s| s.max_timestamp >= timestamp) else {
                return Ok(None);
            };
            let relative = segment.time_index.scan_start(timestamp);
            (segment.base_offset() + u64::from(relative)).max(st.log_start)
        };
        loop {
            let batches = self.read_batches(offset, 1 << 20).await?;
            if batches.is_empty() {
                return Ok(None);
            }
            for batch in batches {
                if let Some((found, ts)) = batch.first_offset_at_or_after(timestamp) {
                    return Ok(Some(((found as u64).max(offset), ts)));
                }
                offset = batch.last_offset() as u64 + 1;
            }
        }
    }

    /// Deletes whole sealed segments past `retention.ms` or beyond
    /// `retention.bytes`, oldest first, and advances the log start offset.
    /// Returns how many segments were deleted.
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<usize> {
        let config = self.config();
        self.delete_front("retention", |first, total| {
            let by_time = config.retention_ms >= 0
                && now_ms.saturating_sub(first.max_timestamp) > config.retention_ms;
            let by_size =
                config.retention_bytes >= 0 && total - first.size >= config.retention_bytes as u64;
            by_time || by_size
        })
        .await
    }

    /// Deletes every whole segment before the one holding `offset` (the
    /// log then starts at that segment): what a snapshot written at
    /// `offset` makes redundant.
    pub async fn delete_segments_before(&self, offset: u64) -> Result<usize> {
        let next_bases: Vec<u64> = self
            .state
            .borrow()
            .segments
            .keys()
            .skip(1)
            .copied()
            .collect();
        let mut nexts = next_bases.into_iter();
        self.delete_front("snapshot", |_, _| nexts.next().is_some_and(|b| b <= offset))
            .await
    }

    /// Deletes the oldest segments while `doomed(first, total bytes)` says
    /// so; never the active segment.
    async fn delete_front(
        &self,
        reason: &str,
        mut doomed_pred: impl FnMut(&Segment, u64) -> bool,
    ) -> Result<usize> {
        let doomed = {
            let mut st = self.state.borrow_mut();
            let mut total: u64 = st.segments.values().map(|s| s.size).sum();
            let mut doomed = Vec::new();
            while st.segments.len() > 1 {
                let first = st.segments.values().next().expect("segments");
                if !doomed_pred(first, total) {
                    break;
                }
                let base = first.base_offset();
                let segment = st.segments.remove(&base).expect("first segment");
                total -= segment.size;
                doomed.push(segment.files);
            }
            let start = *st.segments.keys().next().expect("active segment");
            st.log_start = start;
            st.tail.drop_below(start);
            doomed
        };
        let deleted = doomed.len();
        for files in doomed {
            let base = files.base_offset;
            tracing::info!(segment = %files.log_path.display(), reason, "deleting segment");
            for ext in ["log", "index", "timeindex"] {
                let path = self.dir.join(file_name(base, ext));
                if let Err(e) = glommio::io::remove(&path).await {
                    let e: std::io::Error = e.into();
                    if e.kind() != std::io::ErrorKind::NotFound {
                        return Err(e).context(|| format!("deleting {}", path.display()));
                    }
                }
            }
        }
        Ok(deleted)
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

enum Located {
    Done(ReadChunk),
    File {
        files: Rc<SegmentFiles>,
        from: u64,
        end: u64,
    },
}

/// Creates `dir` if needed and lists the base offsets of its segments,
/// oldest first, off the executor (directory calls block). Returns the
/// directory's absolute path too: glommio's directory calls need one.
async fn list_segments(dir: &Path) -> Result<(PathBuf, Vec<u64>)> {
    let wanted = dir.to_path_buf();
    let listed = glommio::executor()
        .spawn_blocking(move || -> std::io::Result<(PathBuf, Vec<u64>)> {
            std::fs::create_dir_all(&wanted)?;
            let dir = std::fs::canonicalize(&wanted)?;
            let mut bases = Vec::new();
            for entry in std::fs::read_dir(&dir)? {
                let name = entry?.file_name();
                let name = name.to_string_lossy();
                if let Some(base) = name
                    .strip_suffix(".log")
                    .and_then(|b| b.parse::<u64>().ok())
                {
                    bases.push(base);
                }
            }
            bases.sort_unstable();
            Ok((dir, bases))
        })
        .await;
    listed.context(|| format!("opening {}", dir.display()))
}

/// Creates an empty segment file at `base` with its appender, and makes its
/// directory entry durable.
async fn create_segment(dir: &Path, base: u64, config: &LogConfig) -> Result<Segment> {
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
    LogError::Offline("partition is closed".into())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
