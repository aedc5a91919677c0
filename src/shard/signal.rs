//! `Shutdown`: tells a shard's connections the broker is stopping.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Set once when the broker starts shutting down: connections stop taking
/// new requests (they answer the ones they have and close), so a
/// connected consumer's fetch loop cannot hold shutdown up.
#[derive(Default)]
pub struct Shutdown {
    started: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
}

impl Shutdown {
    pub fn start(&self) {
        self.started.set(true);
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }

    pub fn has_started(&self) -> bool {
        self.started.get()
    }

    /// Resolves once shutdown has started.
    pub fn started(&self) -> impl Future<Output = ()> + '_ {
        struct Started<'a>(&'a Shutdown);
        impl Future for Started<'_> {
            type Output = ();
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                if self.0.started.get() {
                    return Poll::Ready(());
                }
                self.0.wakers.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        }
        Started(self)
    }
}
