//! `AppendSignal`: wakes readers waiting for new data in any partition of
//! one shard.
//!
//! One per shard, shared by every partition the shard opens. Each append
//! bumps a generation once its batches are readable; a long-polling fetch
//! records the generation it read at and sleeps until it changes or its
//! deadline passes. Waking every waiter on every append is cheap while
//! waiters are few; per-partition waiters are the next step if profiles
//! say so.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
pub struct AppendSignal {
    generation: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

impl AppendSignal {
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    pub fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// Resolves once the generation differs from `seen`.
    pub fn changed(&self, seen: u64) -> impl Future<Output = ()> + '_ {
        struct Changed<'a> {
            signal: &'a AppendSignal,
            seen: u64,
        }
        impl Future for Changed<'_> {
            type Output = ();
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                if self.signal.generation.get() != self.seen {
                    return Poll::Ready(());
                }
                self.signal.wakers.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        }
        Changed { signal: self, seen }
    }
}
