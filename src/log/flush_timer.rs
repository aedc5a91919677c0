//! The `flush.ms` half of the flush policy: a timer task per partition that
//! fdatasyncs data nobody flushed explicitly once it is old enough.
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
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(period).await;
            let Some(partition) = weak.upgrade() else {
                return;
            };
            if let Err(e) = partition.flush_if_due(now_ms()).await {
                tracing::error!(partition = %partition.dir().display(), "timed flush failed: {e}");
                return;
            }
        }
    })
}
