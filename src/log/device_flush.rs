//! Shared device flushes: one fdatasync that makes the writes of several
//! partitions of a shard durable at once.
//!
//! A flush whose writes all overwrite blocks already allocated, written and
//! inside a file size an earlier fdatasync made durable (the appender's
//! `overwrites_synced`, which zero-ahead makes the rule under acks=all) has
//! no metadata to write: for it, ext4's fdatasync is a cache flush of the
//! device (`blkdev_issue_flush`; with a journal, issued when the inode's
//! datasync transaction is already committed; without one, always), and a
//! device cache flush makes every write that completed before it durable,
//! whatever file it went to. So such flushes on one shard and device share
//! one fdatasync, on the file of whichever of them starts it, instead of
//! one each (and one io_uring worker hand-off each). An fdatasync about to
//! start first lets the flushes whose writes are in flight join it (the
//! partitions of one produce request). Any flush with metadata to write
//! fdatasyncs its own file, as before. The argument, and what it saved, is
//! in tuning.md.
//!
//! The same holds across shards: a partition owner whose flush is a pure
//! overwrite can leave the fdatasync to the shard that asked it to append
//! (`Partition::flush_or_defer`), once its writes completed; that shard
//! answers the client only after its own fdatasync of the device, started
//! after the owner's reply arrived, so one produce request spanning shards
//! pays one device flush, not one per shard.
//!
//! Invariant: a caller's writes completed before it called `flush`, and it
//! returns only after an fdatasync of the same device that started after
//! the call; if that fdatasync failed, every caller it covered gets the
//! error (the page state of the failed file is unknown, so all of them go
//! offline).

use ahash::AHashMap;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use glommio::io::DmaFile;

#[derive(Default)]
struct State {
    /// The generation of the newest fdatasync started.
    started: u64,
    /// The generation of the newest fdatasync finished.
    done: u64,
    running: bool,
    /// Generations whose fdatasync failed, with the error.
    failed: Vec<(u64, Failure)>,
    /// Flushes whose writes are still in flight (`Joining`), by id.
    joining: BTreeSet<u64>,
    next_id: u64,
    waiters: Vec<Waker>,
}

impl State {
    fn wake_all(&mut self) {
        for w in self.waiters.drain(..) {
            w.wake();
        }
    }
}

/// A failed fdatasync, kept to give each caller it covered its own copy
/// (`io::Error` is not `Clone`), errno included: the log line names it.
struct Failure {
    errno: Option<i32>,
    kind: std::io::ErrorKind,
    what: String,
}

impl Failure {
    fn of(e: &std::io::Error) -> Failure {
        Failure {
            errno: e.raw_os_error(),
            kind: e.kind(),
            what: e.to_string(),
        }
    }

    fn to_error(&self) -> std::io::Error {
        match self.errno {
            Some(errno) => std::io::Error::from_raw_os_error(errno),
            None => std::io::Error::new(self.kind, self.what.clone()),
        }
    }
}

/// A block device: (major, minor).
pub type Device = (u32, u32);

/// The device `file` lives on.
pub fn device_of(file: &DmaFile) -> Device {
    (file.dev_major(), file.dev_minor())
}

thread_local! {
    /// Per device (major, minor): a cache flush covers one device only.
    static DEVICES: RefCell<AHashMap<Device, Rc<RefCell<State>>>> = RefCell::default();
}

fn state_of(file: &DmaFile) -> Rc<RefCell<State>> {
    let device = device_of(file);
    DEVICES.with(|d| d.borrow_mut().entry(device).or_default().clone())
}

/// A flush on its way to `flush`: its writes are in flight. An fdatasync
/// about to start waits for the flushes joining before it, so the
/// partitions of one request share it instead of the later ones waiting
/// for a second.
pub struct Joining {
    id: u64,
    state: Rc<RefCell<State>>,
}

impl Drop for Joining {
    fn drop(&mut self) {
        let mut st = self.state.borrow_mut();
        st.joining.remove(&self.id);
        st.wake_all();
    }
}

/// Announces a flush of `file` that will call `flush` once its writes are
/// done.
pub fn joining(file: &DmaFile) -> Joining {
    let state = state_of(file);
    let id = {
        let mut st = state.borrow_mut();
        st.next_id += 1;
        let id = st.next_id;
        st.joining.insert(id);
        id
    };
    Joining { id, state }
}

/// Makes every write of this shard to `file`'s device that completed
/// before the call durable, by an fdatasync of `file` or one another
/// caller started after the call.
pub async fn flush(joined: Joining, file: &DmaFile) -> std::io::Result<()> {
    let state = joined.state.clone();
    let need = state.borrow().started + 1;
    drop(joined);
    loop {
        {
            let st = state.borrow();
            if st.done >= need {
                return match st.failed.iter().find(|(g, _)| *g == need) {
                    Some((_, failure)) => Err(failure.to_error()),
                    None => Ok(()),
                };
            }
        }
        if !state.borrow().running {
            // Let the flushes announced before this moment join first.
            let before = state.borrow().next_id;
            wait(&state, |st| {
                st.running || st.joining.first().is_none_or(|&id| id > before)
            })
            .await;
            let gen = {
                let mut st = state.borrow_mut();
                if st.running || st.done >= need {
                    continue;
                }
                st.running = true;
                st.started += 1;
                st.wake_all();
                st.started
            };
            let result = super::fault::fdatasync(file).await;
            let mut st = state.borrow_mut();
            st.running = false;
            st.done = gen;
            if let Err(e) = &result {
                st.failed.push((gen, Failure::of(e)));
            }
            st.wake_all();
            continue;
        }
        // Wait for the running fdatasync to finish, then look again.
        let seen = state.borrow().done;
        wait(&state, |st| st.done > seen).await;
    }
}

/// Resolves once `ready` holds for the shard's state.
async fn wait(state: &Rc<RefCell<State>>, ready: impl Fn(&State) -> bool) {
    poll_fn(|cx| {
        let mut st = state.borrow_mut();
        if ready(&st) {
            Poll::Ready(())
        } else {
            st.waiters.push(cx.waker().clone());
            Poll::Pending
        }
    })
    .await;
}

/// fdatasyncs this shard has shared so far (started), on every device.
pub fn started() -> u64 {
    DEVICES.with(|d| d.borrow().values().map(|s| s.borrow().started).sum())
}
