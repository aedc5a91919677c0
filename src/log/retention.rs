//! Deleting from the front of a `Partition`: whole segments by retention
//! (`retention.ms`, `retention.bytes`) or because a snapshot of an
//! internal log makes them redundant, and records by DeleteRecords, which
//! moves the log start offset inside a segment. The active segment is
//! never deleted; the log start offset only grows.
//!
//! DeleteRecords' log start is durable before it is answered: the records
//! below it are flushed, then `<partition>/log-start-offset` is written
//! (temp file, fsync, rename), which opening the partition reads back.

use super::error::{IoContext, IoFailure, LogError, Result};
use super::log_dir::write_durably_off_thread;
use super::offset::Offset;
use super::partition::Partition;
use super::producer_snapshot;
use super::segment::{file_name, Segment};

/// Where DeleteRecords' log start is kept, in the partition's directory.
pub const LOG_START_FILE: &str = "log-start-offset";

impl Partition {
    /// Deletes whole sealed segments past `retention.ms` or beyond
    /// `retention.bytes`, oldest first, and advances the log start offset.
    /// Returns how many segments were deleted.
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<usize> {
        let config = self.config();
        let max_bytes = u64::try_from(config.retention_bytes).ok();
        // Segments wholly below a DeleteRecords log start go too.
        let log_start = self.log_start();
        self.delete_front("retention", |first, total| {
            let by_time = config.retention_ms >= 0
                && now_ms.saturating_sub(first.max_timestamp) > config.retention_ms;
            let by_size = max_bytes.is_some_and(|max| total - first.size >= max);
            by_time || by_size || first.next_offset <= log_start
        })
        .await
    }

    /// DeleteRecords: the log starts at `offset` from now on (`None`: at
    /// the log end, Kafka's -1), durably, and whole segments below it are
    /// deleted. Returns the log start after it (never lower than before:
    /// an offset below the log start changes nothing).
    pub async fn delete_records_before(&self, offset: Option<Offset>) -> Result<Offset> {
        let end = self.next_offset();
        let target = offset.unwrap_or(end);
        if target > end {
            return Err(LogError::OffsetOutOfRange {
                requested: target,
                log_start: self.log_start(),
                log_end: end,
            });
        }
        if target <= self.log_start() {
            return Ok(self.log_start());
        }
        // The log start never passes the durable offset.
        self.flush().await?;
        let path = self.dir().join(LOG_START_FILE);
        let text = format!("{}\n", target.get()).into_bytes();
        write_durably_off_thread(path.clone(), text)
            .await
            .map_err(|e| IoFailure::new(format!("writing {}", path.display()), e))?;
        {
            let mut st = self.state.borrow_mut();
            st.log_start = st.log_start.max(target);
            st.tail.drop_below(target);
        }
        self.delete_front("records deleted", |first, _| first.next_offset <= target)
            .await?;
        Ok(self.log_start())
    }

    /// Deletes every whole segment before the one holding `offset` (the
    /// log then starts at that segment): what a snapshot written at
    /// `offset` makes redundant.
    pub async fn delete_segments_before(&self, offset: Offset) -> Result<usize> {
        let next_bases: Vec<Offset> = self
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
            let first_base = *st.segments.keys().next().expect("active segment");
            let start = st.log_start.max(first_base);
            st.log_start = start;
            st.tail.drop_below(start);
            doomed
        };
        let deleted = doomed.len();
        // Snapshots below the log start describe deleted segments.
        let (start, old_snapshots) = {
            let mut st = self.state.borrow_mut();
            let start = st.log_start;
            let keep = st.snapshots.partition_point(|&o| o < start);
            (start, st.snapshots.drain(..keep).collect::<Vec<_>>())
        };
        for offset in old_snapshots {
            debug_assert!(offset < start);
            if let Err(e) = producer_snapshot::remove(self.dir(), offset).await {
                tracing::warn!(partition = %self.dir().display(), "deleting a producer snapshot: {e}");
            }
        }
        for files in doomed {
            let base = files.base_offset;
            tracing::info!(segment = %files.log_path.display(), reason, "deleting segment");
            for ext in ["log", "index", "timeindex", "txnindex"] {
                let path = self.dir().join(file_name(base, ext));
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
}
