//! `Housekeeping`: a shard's background duties for its partitions, on one
//! timer task per shard (not one per partition: 10,000 idle partitions
//! with a timer each took a quarter of a core doing nothing). Each sweep
//! looks at every partition and runs what is due: the `flush.ms` half of
//! the flush policy (fdatasync data nobody flushed explicitly once it is
//! old enough) and retention (delete whole segments past `retention.ms` /
//! `retention.bytes` every `log.retention.check.interval.ms`, as Kafka's
//! log cleaner thread does), then producer expiry.
//!
//! Runs on the shard that owns the partitions. Holds them weakly, so a
//! dropped partition leaves the sweep by itself, and the sweep ends once
//! the `Housekeeping` is dropped. A partition whose timed flush failed
//! (it is offline) leaves too, so it is not retried every tick.

use super::partition::{now_ms, Partition};
use futures_util::future::join_all;
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

/// Sweeps at a quarter of the smallest `flush.ms`, clamped to 10 ms ..= 1 s:
/// data is made durable at most ~1.25 × `flush.ms` after it was appended.
fn tick(flush_ms: i64) -> Duration {
    Duration::from_millis((flush_ms / 4).clamp(10, 1000) as u64)
}

/// The sweep's period with no partition asking for less.
const IDLE_TICK: Duration = Duration::from_secs(1);

struct Duty {
    partition: Weak<Partition>,
    /// When retention last ran for it.
    retention_checked: i64,
}

#[derive(Default)]
pub struct Housekeeping {
    duties: RefCell<Vec<Duty>>,
}

impl Housekeeping {
    /// Starts the sweep on the current executor; it ends once the returned
    /// handle is dropped.
    pub fn start() -> Rc<Housekeeping> {
        let housekeeping = Rc::new(Housekeeping::default());
        glommio::spawn_local(sweep(Rc::downgrade(&housekeeping))).detach();
        housekeeping
    }

    /// Adds a partition opened on this shard.
    pub fn add(&self, partition: &Rc<Partition>) {
        self.duties.borrow_mut().push(Duty {
            partition: Rc::downgrade(partition),
            retention_checked: now_ms(),
        });
    }

    /// Partitions still looked after (the dropped ones leave at the next
    /// sweep).
    pub fn len(&self) -> usize {
        self.duties.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The partitions with something due now, each with whether retention
    /// is; drops the duties of partitions that are gone. Also returns the
    /// period until the next sweep.
    fn due(&self, now: i64) -> (Vec<(Rc<Partition>, bool)>, Duration) {
        let mut due = Vec::new();
        let mut period = IDLE_TICK;
        self.duties.borrow_mut().retain_mut(|duty| {
            let Some(partition) = duty.partition.upgrade() else {
                return false;
            };
            let config = partition.config();
            period = period.min(tick(config.flush_ms));
            let retention =
                now.saturating_sub(duty.retention_checked) >= config.retention_check_interval_ms;
            if retention {
                duty.retention_checked = now;
            }
            if retention || partition.flush_due(now) {
                due.push((partition, retention));
            }
            true
        });
        (due, period)
    }

    fn remove(&self, gone: &[Rc<Partition>]) {
        let is_gone = |d: &Duty| gone.iter().any(|p| d.partition.as_ptr() == Rc::as_ptr(p));
        self.duties.borrow_mut().retain(|d| !is_gone(d));
    }
}

async fn sweep(housekeeping: Weak<Housekeeping>) {
    let mut period = IDLE_TICK;
    loop {
        glommio::timer::sleep(period).await;
        let Some(this) = housekeeping.upgrade() else {
            return;
        };
        let now = now_ms();
        let (due, next) = this.due(now);
        period = next;
        drop(this);
        let runs = due.into_iter().map(|(partition, retention)| async move {
            if let Err(e) = partition.flush_if_due(now).await {
                tracing::error!(partition = %partition.dir().display(), "timed flush failed: {e}");
                return Some(partition);
            }
            if retention {
                if let Err(e) = partition.enforce_retention(now).await {
                    tracing::error!(partition = %partition.dir().display(), "retention failed: {e}");
                }
                partition.expire_producers(now);
            }
            None
        });
        let failed: Vec<Rc<Partition>> = join_all(runs).await.into_iter().flatten().collect();
        if let (false, Some(this)) = (failed.is_empty(), housekeeping.upgrade()) {
            this.remove(&failed);
        }
    }
}
