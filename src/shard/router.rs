//! `Router<T>`: the one way to run work on another shard.
//!
//! A sharded service (`Shard`, `GroupCoordinator`, later the transaction
//! coordinator) has one instance per shard and one `Router<T>` per
//! instance, over a channel mesh of its own. A `Call<T>` is one kind of
//! work with its own reply type: `router.call(on, to, call)` runs `call`
//! against shard `to`'s instance and resolves with exactly that call's
//! `Reply`, so no caller ever unpacks a reply meant for someone else.
//!
//! - To this very shard, the call runs in place: no spawn, no box, no
//!   channel.
//! - To another shard, the call is boxed into a job and crosses the mesh;
//!   the owner runs it in a task of its own (so a long-polling watch never
//!   blocks the channel) and puts the reply in a slot the caller holds,
//!   then sends a reply envelope naming the call, which wakes the caller.
//!   The slot's mutex is taken twice per call, never at the same time (the
//!   envelope orders the owner's write before the caller's read).
//!
//! Order: one FIFO lock per peer around sending, so calls to a peer leave
//! in the order they started even when its channel is full, and the owner
//! starts their tasks in arrival order (the append order of pipelined
//! produce requests depends on it).

use super::ownership::ShardId;
use crate::metrics::{ShardMetrics, Stage};
use ahash::AHashMap;
use futures_util::future::join_all;
use glommio::channels::channel_mesh::{Receivers, Senders};
use glommio::channels::local_channel::{self, LocalSender};
use glommio::sync::Semaphore;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Work that runs on the shard that owns what it touches.
pub trait Call<T>: Send + 'static {
    /// What the caller gets back; crosses shards, so `Send`.
    type Reply: Send + 'static;

    /// Runs on the owning shard, against its instance of `T`.
    fn run(self, on: &Rc<T>) -> impl Future<Output = Self::Reply>;
}

/// A sharded service: one instance per shard, reachable through its own
/// router (which delivers calls and replies to it).
pub trait Sharded: Sized + 'static {
    fn router(&self) -> &Router<Self>;
}

/// A call boxed to cross the mesh: on the owner it runs the call and
/// stores the reply in the caller's slot.
type Job<T> = Box<dyn FnOnce(Rc<T>) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// `sent` is when the envelope entered the mesh: the receiver records the
/// hop (`Stage::Hop`); `Instant`s compare across threads (CLOCK_MONOTONIC).
pub enum Envelope<T> {
    Call {
        from: ShardId,
        id: u64,
        job: Job<T>,
        sent: Instant,
    },
    /// The reply of call `id` is in its slot.
    Reply { id: u64, sent: Instant },
}

#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("shard {0} is gone")]
pub struct ShardGone(pub ShardId);

pub struct Router<T> {
    id: ShardId,
    count: usize,
    senders: Option<Senders<Envelope<T>>>,
    /// Calls sent and not yet answered, by id: who to wake.
    pending: RefCell<AHashMap<u64, LocalSender<()>>>,
    next_id: Cell<u64>,
    send_order: Vec<Semaphore>,
    metrics: Rc<ShardMetrics>,
}

impl<T: Sharded> Router<T> {
    /// A router for a broker of one shard: every call is local.
    pub fn single(metrics: Rc<ShardMetrics>) -> Router<T> {
        Router {
            id: ShardId::FIRST,
            count: 1,
            senders: None,
            pending: RefCell::new(AHashMap::new()),
            next_id: Cell::new(0),
            send_order: vec![Semaphore::new(1)],
            metrics,
        }
    }

    pub fn new(senders: Senders<Envelope<T>>, metrics: Rc<ShardMetrics>) -> Router<T> {
        Router {
            id: ShardId::new(senders.peer_id()),
            count: senders.nr_consumers(),
            send_order: (0..senders.nr_consumers())
                .map(|_| Semaphore::new(1))
                .collect(),
            senders: Some(senders),
            pending: RefCell::new(AHashMap::new()),
            next_id: Cell::new(0),
            metrics,
        }
    }

    /// This shard.
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// How many shards the broker runs.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Where this shard's measurements go (the router records hops).
    pub fn metrics(&self) -> &Rc<ShardMetrics> {
        &self.metrics
    }

    /// Every shard, this one included.
    pub fn shards(&self) -> impl Iterator<Item = ShardId> {
        ShardId::all(self.count)
    }

    /// Runs `call` on shard `to`'s instance (`on` is this shard's) and
    /// returns its reply.
    pub async fn call<C: Call<T>>(
        &self,
        on: &Rc<T>,
        to: ShardId,
        call: C,
    ) -> Result<C::Reply, ShardGone> {
        if to == self.id {
            return Ok(call.run(on).await);
        }
        let senders = self.senders.as_ref().ok_or(ShardGone(to))?;
        let slot: Arc<Mutex<Option<C::Reply>>> = Arc::default();
        let owner_slot = slot.clone();
        let job: Job<T> = Box::new(move |on: Rc<T>| {
            Box::pin(async move {
                let reply = call.run(&on).await;
                *owner_slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(reply);
            })
        });
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let sent = {
            let _turn = self.send_order[to.index()].acquire_permit(1).await;
            let envelope = Envelope::Call {
                from: self.id,
                id,
                job,
                sent: Instant::now(),
            };
            senders.send_to(to.index(), envelope).await
        };
        if sent.is_err() {
            return Err(ShardGone(to));
        }
        // Registered only once sent (a call dropped while it waits to send
        // leaves nothing behind), and before this task yields again, so
        // before the reply can be delivered on this thread.
        let (tx, rx) = local_channel::new_bounded(1);
        self.pending.borrow_mut().insert(id, tx);
        rx.recv().await.ok_or(ShardGone(to))?;
        // Empty if the owner dropped the call without running it.
        let reply = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        reply.ok_or(ShardGone(to))
    }

    /// Runs `make()` on every shard's instance, at once; the replies in
    /// shard order.
    pub async fn call_every_shard<C: Call<T>>(
        &self,
        on: &Rc<T>,
        make: impl Fn() -> C,
    ) -> Vec<Result<C::Reply, ShardGone>> {
        join_all(self.shards().map(|s| self.call(on, s, make()))).await
    }

    /// Starts one receive task per peer for `on`'s router. They end when
    /// the peer's channel closes (at shutdown).
    pub fn serve(on: &Rc<T>, mut receivers: Receivers<Envelope<T>>) {
        for (peer, stream) in receivers.streams() {
            let weak: Weak<T> = Rc::downgrade(on);
            glommio::spawn_local(async move {
                while let Some(envelope) = stream.recv().await {
                    let Some(on) = weak.upgrade() else { return };
                    Router::deliver(on, envelope);
                }
                tracing::debug!(peer, "mesh channel closed");
            })
            .detach();
        }
    }

    fn deliver(on: Rc<T>, envelope: Envelope<T>) {
        let router = on.router();
        match envelope {
            Envelope::Reply { id, sent } => {
                router.metrics.since(Stage::Hop, sent);
                if let Some(tx) = router.pending.borrow_mut().remove(&id) {
                    // The caller may have gone (its connection closed).
                    let _ = tx.try_send(());
                }
            }
            Envelope::Call {
                from,
                id,
                job,
                sent,
            } => {
                router.metrics.since(Stage::Hop, sent);
                glommio::spawn_local(async move {
                    job(on.clone()).await;
                    if let Some(senders) = on.router().senders.as_ref() {
                        let envelope = Envelope::Reply {
                            id,
                            sent: Instant::now(),
                        };
                        let _ = senders.send_to(from.index(), envelope).await;
                    }
                })
                .detach();
            }
        }
    }
}
