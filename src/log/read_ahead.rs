//! `ReadAhead`: the cold read a partition starts for the fetch it expects
//! next. Segments are read with O_DIRECT, so no page cache reads ahead of
//! a consumer: without this, every fetch of a consumer catching up waits
//! for the disk and then for the network, one after the other. After a
//! cold read, the partition reads the range that follows (same offset
//! arithmetic, same byte limit) while the answer is being sent; the
//! consumer's next fetch at that offset takes it.
//!
//! Invariants: a partition holds at most one read-ahead, taken by the
//! first read of the partition (used if its offset and byte limit match,
//! dropped otherwise). Per shard, the bytes of read-aheads held or in
//! flight stay within the `log.read.ahead.bytes` of the partition that
//! starts one: older ones are dropped first, and any older than
//! `MAX_AGE` goes when the next one starts. The bytes are whole batches
//! of a segment's written, immutable range, so a read-ahead never goes
//! stale; the reader still checks the offset against the log start and
//! the last stable offset before answering from it.

use super::error::Result;
use super::offset::Offset;
use bytes::Bytes;
use glommio::Task;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

/// A read-ahead no fetch took in this long is dropped.
const MAX_AGE: Duration = Duration::from_secs(5);

/// What a direct cold read answered.
#[derive(Debug)]
pub struct DirectRead {
    /// Whole batches, in pooled blocks (`read_buffer`).
    pub parts: Vec<Bytes>,
    /// The file position after them.
    pub stop: u64,
    /// The offset after their last record.
    pub next: Offset,
}

struct Pending {
    id: u64,
    offset: Offset,
    max_bytes: usize,
    task: Task<Result<Option<DirectRead>>>,
    _charge: Charge,
}

type Slot = RefCell<Option<Pending>>;

/// A partition's read-ahead slot.
#[derive(Default)]
pub struct ReadAhead {
    slot: Rc<Slot>,
}

/// The shard's read-aheads, oldest first: (slot, id, started).
#[derive(Default)]
struct Held {
    queue: VecDeque<(Weak<Slot>, u64, Instant)>,
    next_id: u64,
}

thread_local! {
    static HELD: RefCell<Held> = RefCell::default();
    /// Bytes asked for by the read-aheads alive on this shard.
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

/// Counts a read-ahead's bytes while it lives.
struct Charge(usize);

impl Charge {
    fn new(bytes: usize) -> Charge {
        BYTES.with(|b| b.set(b.get() + bytes));
        Charge(bytes)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        BYTES.with(|b| b.set(b.get().saturating_sub(self.0)));
    }
}

impl ReadAhead {
    /// The read-ahead for a read of `max_bytes` at `offset`, if one was
    /// started for exactly that; any other is dropped (cancelled).
    pub fn take(
        &self,
        offset: Offset,
        max_bytes: usize,
    ) -> Option<Task<Result<Option<DirectRead>>>> {
        let pending = self.slot.borrow_mut().take()?;
        (pending.offset == offset && pending.max_bytes == max_bytes).then_some(pending.task)
    }

    /// Starts `read` (the read of `max_bytes` at `offset`) as this
    /// partition's read-ahead, within `budget` bytes for the shard.
    pub fn start<F>(&self, offset: Offset, max_bytes: usize, budget: usize, read: F)
    where
        F: std::future::Future<Output = Result<Option<DirectRead>>> + 'static,
    {
        drop(self.slot.borrow_mut().take());
        if max_bytes > budget {
            return;
        }
        let id = HELD.with(|held| {
            let mut held = held.borrow_mut();
            let now = Instant::now();
            while let Some((slot, id, started)) = held.queue.front() {
                let live = slot
                    .upgrade()
                    .filter(|s| s.borrow().as_ref().is_some_and(|p| p.id == *id));
                let over = BYTES.with(Cell::get) + max_bytes > budget;
                match live {
                    Some(s) if over || now.duration_since(*started) > MAX_AGE => {
                        drop(s.borrow_mut().take());
                    }
                    Some(_) => break,
                    None => {}
                }
                held.queue.pop_front();
            }
            held.next_id += 1;
            let id = held.next_id;
            held.queue.push_back((Rc::downgrade(&self.slot), id, now));
            id
        });
        if BYTES.with(Cell::get) + max_bytes > budget {
            return;
        }
        *self.slot.borrow_mut() = Some(Pending {
            id,
            offset,
            max_bytes,
            task: glommio::spawn_local(read),
            _charge: Charge::new(max_bytes),
        });
    }
}

/// Bytes of read-aheads alive on this shard.
pub fn held_bytes() -> usize {
    BYTES.with(Cell::get)
}
