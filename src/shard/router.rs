//! `Router`: the one way to reach another shard. A copy lives on every
//! shard, over glommio's channel mesh.
//!
//! `call(to, request)` sends an `Envelope::Request` to shard `to` and
//! resolves with its `Reply`. Each shard runs one receive task per peer:
//! requests are executed in their own task (so a long-polling watch never
//! blocks the channel), replies are handed to the waiting caller by id.
//! A call to this very shard never crosses the mesh.

use super::message::{Reply, Request};
use super::Shard;
use crate::metrics::Stage;
use ahash::AHashMap;
use glommio::channels::channel_mesh::{Receivers, Senders};
use glommio::channels::local_channel::{self, LocalSender};
use glommio::sync::Semaphore;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Instant;

/// `sent` is when the envelope entered the mesh: the receiver records the
/// hop (`Stage::Hop`); `Instant`s compare across threads (CLOCK_MONOTONIC).
pub enum Envelope {
    Request {
        from: usize,
        id: u64,
        request: Request,
        sent: Instant,
    },
    Reply {
        id: u64,
        reply: Reply,
        sent: Instant,
    },
}

pub struct Router {
    id: usize,
    count: usize,
    senders: Option<Senders<Envelope>>,
    pending: RefCell<AHashMap<u64, LocalSender<Reply>>>,
    next_id: Cell<u64>,
    /// One FIFO lock per peer around `send_to`: requests to a peer leave in
    /// the order their calls started, even when its channel is full (the
    /// append order of pipelined produce requests depends on it).
    send_order: Vec<Semaphore>,
}

#[derive(Debug, thiserror::Error)]
#[error("shard {0} is gone")]
pub struct ShardGone(pub usize);

impl Router {
    /// A router for a broker of one shard: every call is local.
    pub fn single() -> Router {
        Router {
            id: 0,
            count: 1,
            senders: None,
            pending: RefCell::new(AHashMap::new()),
            next_id: Cell::new(0),
            send_order: vec![Semaphore::new(1)],
        }
    }

    pub fn new(senders: Senders<Envelope>) -> Router {
        Router {
            id: senders.peer_id(),
            count: senders.nr_consumers(),
            send_order: (0..senders.nr_consumers())
                .map(|_| Semaphore::new(1))
                .collect(),
            senders: Some(senders),
            pending: RefCell::new(AHashMap::new()),
            next_id: Cell::new(0),
        }
    }

    /// This shard's index.
    pub fn id(&self) -> usize {
        self.id
    }

    /// How many shards the broker runs.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Runs `request` on shard `to` and returns its reply.
    pub async fn call(
        &self,
        shard: &Rc<Shard>,
        to: usize,
        request: Request,
    ) -> Result<Reply, ShardGone> {
        if to == self.id {
            // Boxed: execute may call back into the router (admin requests
            // fan out to every shard), which makes the future recursive.
            let local: std::pin::Pin<Box<dyn std::future::Future<Output = Reply>>> =
                Box::pin(shard.execute(request));
            return Ok(local.await);
        }
        let senders = self.senders.as_ref().ok_or(ShardGone(to))?;
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (tx, rx) = local_channel::new_bounded(1);
        self.pending.borrow_mut().insert(id, tx);
        let sent = {
            let _turn = self.send_order[to].acquire_permit(1).await;
            let envelope = Envelope::Request {
                from: self.id,
                id,
                request,
                sent: Instant::now(),
            };
            senders.send_to(to, envelope).await
        };
        if sent.is_err() {
            self.pending.borrow_mut().remove(&id);
            return Err(ShardGone(to));
        }
        rx.recv().await.ok_or(ShardGone(to))
    }

    /// Starts one receive task per peer. They end when the peer's channel
    /// closes (at shutdown).
    pub fn serve(shard: &Rc<Shard>, mut receivers: Receivers<Envelope>) {
        for (peer, stream) in receivers.streams() {
            let weak: Weak<Shard> = Rc::downgrade(shard);
            glommio::spawn_local(async move {
                while let Some(envelope) = stream.recv().await {
                    let Some(shard) = weak.upgrade() else { return };
                    shard.router.deliver(&shard, envelope);
                }
                tracing::debug!(peer, "mesh channel closed");
            })
            .detach();
        }
    }

    fn deliver(&self, shard: &Rc<Shard>, envelope: Envelope) {
        match envelope {
            Envelope::Reply { id, reply, sent } => {
                shard.metrics.since(Stage::Hop, sent);
                if let Some(tx) = self.pending.borrow_mut().remove(&id) {
                    // The caller may have gone (its connection closed).
                    let _ = tx.try_send(reply);
                }
            }
            Envelope::Request {
                from,
                id,
                request,
                sent,
            } => {
                shard.metrics.since(Stage::Hop, sent);
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    let reply = shard.execute(request).await;
                    if let Some(senders) = shard.router.senders.as_ref() {
                        let envelope = Envelope::Reply {
                            id,
                            reply,
                            sent: Instant::now(),
                        };
                        let _ = senders.send_to(from, envelope).await;
                    }
                })
                .detach();
            }
        }
    }
}
