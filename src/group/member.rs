//! `Member`: one member of a consumer group as its coordinator keeps it —
//! who it is, its session, the protocols it supports, its assignment, and
//! the answers it waits for (a JoinGroup or SyncGroup parked until the
//! rebalance gets there).
//!
//! A member waits for at most one answer at a time: a join while the group
//! prepares a rebalance, a sync while it completes one (`Group` keeps
//! this, and `Group::check_invariants` asserts it).

use super::store::StoredMember;
use super::{JoinRequest, JoinResponse, SyncResponse};
use bytes::Bytes;
use glommio::channels::local_channel::LocalSender;
use std::time::{Duration, Instant};

/// Where a parked JoinGroup or SyncGroup gets its answer.
pub type Waiter<T> = LocalSender<T>;

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// The generation `assignment` was handed out in.
    pub assigned_in: Option<i32>,
    pub last_seen: Instant,
    pub(super) join_waiter: Option<Waiter<JoinResponse>>,
    pub(super) sync_waiter: Option<Waiter<SyncResponse>>,
}

impl Member {
    /// A member joining for the first time under `id`, waiting for the
    /// join to complete.
    pub fn joining(
        id: String,
        req: JoinRequest,
        now: Instant,
        waiter: Waiter<JoinResponse>,
    ) -> Member {
        Member {
            id,
            instance_id: req.instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout: req.session_timeout,
            rebalance_timeout: req.rebalance_timeout,
            protocol_type: req.protocol_type,
            protocols: req.protocols,
            assignment: Bytes::new(),
            assigned_in: None,
            last_seen: now,
            join_waiter: Some(waiter),
            sync_waiter: None,
        }
    }

    /// A member as its group's stored record kept it (replay after a
    /// restart) in generation `generation`, with a fresh session.
    pub fn restored(
        m: StoredMember,
        protocol_type: &str,
        protocol: &str,
        generation: i32,
        now: Instant,
    ) -> Member {
        Member {
            id: m.member_id,
            instance_id: m.instance_id,
            client_id: m.client_id,
            client_host: m.client_host,
            session_timeout: m.session_timeout,
            rebalance_timeout: m.rebalance_timeout,
            protocol_type: protocol_type.to_string(),
            protocols: vec![(protocol.to_string(), m.subscription)],
            assignment: m.assignment,
            assigned_in: Some(generation),
            last_seen: now,
            join_waiter: None,
            sync_waiter: None,
        }
    }

    /// The member's metadata for `protocol` (empty if it has none).
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub fn waits_to_join(&self) -> bool {
        self.join_waiter.is_some()
    }

    pub fn waits_to_sync(&self) -> bool {
        self.sync_waiter.is_some()
    }

    pub(super) fn answer_join(&mut self, response: JoinResponse) {
        if let Some(w) = self.join_waiter.take() {
            let _ = w.try_send(response);
        }
    }

    pub(super) fn answer_sync(&mut self, response: SyncResponse) {
        if let Some(w) = self.sync_waiter.take() {
            let _ = w.try_send(response);
        }
    }
}

/// Kafka's member ids: the client id, a dash, a UUID — here made of the
/// clock and a per-thread counter. A group lives on one shard (one
/// thread), so that is unique where it must be.
pub(super) fn new_member_id(client_id: &str) -> String {
    thread_local!(static NEXT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) });
    let n = NEXT.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{client_id}-{}", uuid::Uuid::from_u64_pair(nanos, n))
}
