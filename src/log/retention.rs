//! Deleting whole segments from the front of a `Partition`: retention
//! (`retention.ms`, `retention.bytes`) and what a snapshot of an internal
//! log makes redundant. The active segment is never deleted, and the log
//! start offset moves to the first segment that stays.

use super::error::{IoContext, Result};
use super::offset::Offset;
use super::partition::Partition;
use super::producer_snapshot;
use super::segment::{file_name, Segment};

impl Partition {
    /// Deletes whole sealed segments past `retention.ms` or beyond
    /// `retention.bytes`, oldest first, and advances the log start offset.
    /// Returns how many segments were deleted.
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<usize> {
        let config = self.config();
        let max_bytes = u64::try_from(config.retention_bytes).ok();
        self.delete_front("retention", |first, total| {
            let by_time = config.retention_ms >= 0
                && now_ms.saturating_sub(first.max_timestamp) > config.retention_ms;
            let by_size = max_bytes.is_some_and(|max| total - first.size >= max);
            by_time || by_size
        })
        .await
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
            let start = *st.segments.keys().next().expect("active segment");
            st.log_start = start;
            st.tail.drop_below(start);
            st.producers.drop_below(start);
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
            producer_snapshot::remove(self.dir(), offset).await?;
        }
        for files in doomed {
            let base = files.base_offset;
            tracing::info!(segment = %files.log_path.display(), reason, "deleting segment");
            for ext in ["log", "index", "timeindex"] {
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
