//! A partition's background duties, on one timer task per partition:
//! the `flush.ms` half of the flush policy (fdatasync data nobody flushed
//! explicitly once it is old enough) and retention (delete whole segments
//! past `retention.ms` / `retention.bytes` every
//! `log.retention.check.interval.ms`, as Kafka's log cleaner thread does).
//!
//! Runs on the partition's shard. Holds only a weak reference, so it stops
//! by itself once the partition is dropped.

use super::partition::{now_ms, Partition};
use std::rc::{Rc, Weak};
use std::time::Duration;

/// Ticks at a quarter of `flush.ms`, clamped to 10 ms ..= 1 s: data is made
/// durable at most ~1.25 × `flush.ms` after it was appended.
fn tick(flush_ms: i64) -> Duration {
    Duration::from_millis((flush_ms / 4).clamp(10, 1000) as u64)
}

/// Starts the timer for `partition` on the current executor.
pub fn spawn(partition: &Rc<Partition>) -> glommio::Task<()> {
    let weak: Weak<Partition> = Rc::downgrade(partition);
    let period = tick(partition.config().flush_ms);
    let mut retention_checked = now_ms();
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(period).await;
            let Some(partition) = weak.upgrade() else {
                return;
            };
            let now = now_ms();
            if let Err(e) = partition.flush_if_due(now).await {
                tracing::error!(partition = %partition.dir().display(), "timed flush failed: {e}");
                return;
            }
            let interval = partition.config().retention_check_interval_ms;
            if now.saturating_sub(retention_checked) >= interval {
                retention_checked = now;
                if let Err(e) = partition.enforce_retention(now).await {
                    tracing::error!(partition = %partition.dir().display(), "retention failed: {e}");
                }
                partition.expire_producers(now);
            }
        }
    })
}
