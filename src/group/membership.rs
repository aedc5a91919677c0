//! `Group`: one consumer group's members and Kafka's classic rebalance
//! state machine (Empty → PreparingRebalance → CompletingRebalance →
//! Stable, and Dead once deleted).
//!
//! Synchronous and I/O-free: the coordinator calls it with the time and
//! gets answers back. A JoinGroup or SyncGroup that must wait for the other
//! members leaves a `Waiter` here, answered when the join (or the leader's
//! sync) completes, or with an error when the member is removed.
//!
//! Invariants: a member is in `members` once (by id), and a static member's
//! instance id maps to exactly one member; `generation` only grows; in
//! CompletingRebalance and Stable every member has joined the current
//! generation; the leader, when set, is a member.

use super::store::StoredMember;
use super::{
    Committed, GroupConfig, GroupError, JoinRequest, JoinResponse, JoinedMember, SyncResponse,
};
use crate::log::TopicPartition;
use bytes::Bytes;
use glommio::channels::local_channel::LocalSender;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl State {
    /// Kafka's name, as DescribeGroups and ListGroups report it.
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

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
    pub last_seen: Instant,
    join_waiter: Option<Waiter<JoinResponse>>,
    sync_waiter: Option<Waiter<SyncResponse>>,
}

impl Member {
    /// A member as its group's stored record kept it (replay after a
    /// restart), with a fresh session.
    pub fn restored(m: StoredMember, protocol_type: &str, protocol: &str, now: Instant) -> Member {
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

    fn answer_join(&mut self, response: JoinResponse) {
        if let Some(w) = self.join_waiter.take() {
            let _ = w.try_send(response);
        }
    }

    fn answer_sync(&mut self, response: SyncResponse) {
        if let Some(w) = self.sync_waiter.take() {
            let _ = w.try_send(response);
        }
    }
}

pub struct Group {
    pub id: String,
    pub state: State,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// In join order (the first is the leader when a new one is needed).
    pub members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, valid until then.
    pending: Vec<(String, Instant)>,
    /// When PreparingRebalance gives up on members that did not rejoin.
    rebalance_deadline: Option<Instant>,
    /// A new group waits this long for more members before the first
    /// join completes (group.initial.rebalance.delay.ms).
    initial_delay_until: Option<Instant>,
    pub offsets: BTreeMap<TopicPartition, Committed>,
    /// Set when membership settled (Stable or Empty) and should be stored.
    pub dirty: bool,
}

impl Group {
    pub fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: Vec::new(),
            pending: Vec::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            offsets: BTreeMap::new(),
            dirty: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Nothing to remember: no members, none expected, no offsets.
    pub fn is_idle(&self) -> bool {
        self.state == State::Empty
            && self.members.is_empty()
            && self.pending.is_empty()
            && self.offsets.is_empty()
            && !self.dirty
    }

    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    fn by_instance(&self, instance: &str) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.instance_id.as_deref() == Some(instance))
    }

    /// A static member's instance id used with a member id that is not
    /// the instance's current one: an older incarnation, fenced.
    pub fn fenced(&self, member_id: &str, instance: Option<&str>) -> bool {
        instance
            .and_then(|i| self.by_instance(i))
            .is_some_and(|m| m.id != member_id)
    }

    /// Handles a JoinGroup. `None`: the answer comes through `waiter` when
    /// the rebalance completes.
    pub fn join(
        &mut self,
        req: JoinRequest,
        cfg: &GroupConfig,
        now: Instant,
        waiter: Waiter<JoinResponse>,
    ) -> Option<JoinResponse> {
        let fail = |e: GroupError, member: &str| Some(JoinResponse::error(e, member));
        if self.state == State::Dead {
            return fail(GroupError::CoordinatorNotAvailable, &req.member_id);
        }
        if req.session_timeout < cfg.min_session_timeout
            || req.session_timeout > cfg.max_session_timeout
        {
            return fail(GroupError::InvalidSessionTimeout, &req.member_id);
        }
        if req.protocols.is_empty()
            || (!self.is_empty() && self.protocol_type.as_deref() != Some(&req.protocol_type))
            || !self.supports_some(&req.protocols)
        {
            return fail(GroupError::InconsistentGroupProtocol, &req.member_id);
        }
        let mut member_id = req.member_id.clone();
        if member_id.is_empty() {
            if let Some(instance) = req.instance_id.clone() {
                let fresh = new_member_id(&req.client_id);
                if let Some(old) = self.by_instance(&instance).map(|m| m.id.clone()) {
                    return self.replace_static(&old, fresh, req, now, waiter);
                }
                member_id = fresh;
            } else if req.require_known_member_id {
                let fresh = new_member_id(&req.client_id);
                self.pending
                    .push((fresh.clone(), now + req.session_timeout));
                return fail(GroupError::MemberIdRequired, &fresh);
            } else {
                member_id = new_member_id(&req.client_id);
            }
        } else if self.fenced(&member_id, req.instance_id.as_deref()) {
            return fail(GroupError::FencedInstanceId, &member_id);
        } else if let Some(i) = self.pending.iter().position(|(id, _)| *id == member_id) {
            self.pending.remove(i);
        } else if self.member(&member_id).is_none() {
            return fail(GroupError::UnknownMemberId, &member_id);
        }

        let known = self.member(&member_id).is_some();
        if known && self.state == State::Stable {
            // A follower rejoining with what it had changes nothing: it
            // gets the current generation back without a rebalance.
            let leader = self.leader.as_deref() == Some(member_id.as_str());
            let unchanged = self
                .member(&member_id)
                .is_some_and(|m| m.protocols == req.protocols);
            if !leader && unchanged {
                if let Some(m) = self.member_mut(&member_id) {
                    m.last_seen = now;
                }
                return Some(self.join_response(&member_id, false));
            }
        }
        let was_empty = self.state == State::Empty;
        match self.member_mut(&member_id) {
            Some(m) => {
                m.protocols = req.protocols;
                m.session_timeout = req.session_timeout;
                m.rebalance_timeout = req.rebalance_timeout;
                m.last_seen = now;
                m.answer_join(JoinResponse::error(GroupError::UnknownMemberId, &m.id));
                m.join_waiter = Some(waiter);
            }
            None => {
                if self.is_empty() {
                    self.protocol_type = Some(req.protocol_type.clone());
                }
                self.members.push(Member {
                    id: member_id.clone(),
                    instance_id: req.instance_id,
                    client_id: req.client_id,
                    client_host: req.client_host,
                    session_timeout: req.session_timeout,
                    rebalance_timeout: req.rebalance_timeout,
                    protocol_type: req.protocol_type,
                    protocols: req.protocols,
                    assignment: Bytes::new(),
                    last_seen: now,
                    join_waiter: Some(waiter),
                    sync_waiter: None,
                });
            }
        }
        if was_empty && !cfg.initial_rebalance_delay.is_zero() {
            // Kafka's InitialDelayedJoin: wait for more first members, the
            // delay restarting with each, up to the rebalance timeout.
            let cap = now + self.max_rebalance_timeout();
            self.initial_delay_until = Some(now + cfg.initial_rebalance_delay);
            self.rebalance_deadline = Some(cap);
        } else if let Some(until) = self.initial_delay_until {
            let cap = self.rebalance_deadline.unwrap_or(until);
            self.initial_delay_until =
                Some((now + cfg.initial_rebalance_delay).min(cap).max(until));
        }
        self.prepare_rebalance(now);
        self.try_complete_join(now);
        None
    }

    /// A static member rejoining with a new member id: the old id is
    /// fenced; in a Stable group with the same protocols no rebalance.
    fn replace_static(
        &mut self,
        old: &str,
        fresh: String,
        req: JoinRequest,
        now: Instant,
        waiter: Waiter<JoinResponse>,
    ) -> Option<JoinResponse> {
        let stable = self.state == State::Stable;
        let Some(m) = self.member_mut(old) else {
            return Some(JoinResponse::error(GroupError::UnknownMemberId, old));
        };
        m.answer_join(JoinResponse::error(GroupError::FencedInstanceId, old));
        m.answer_sync(SyncResponse::error(GroupError::FencedInstanceId));
        let unchanged = m.protocols == req.protocols;
        m.id = fresh.clone();
        m.client_id = req.client_id;
        m.client_host = req.client_host;
        m.session_timeout = req.session_timeout;
        m.rebalance_timeout = req.rebalance_timeout;
        m.protocols = req.protocols;
        m.last_seen = now;
        if self.leader.as_deref() == Some(old) {
            self.leader = Some(fresh.clone());
        }
        if stable && unchanged {
            self.dirty = true;
            let leader = self.leader.as_deref() == Some(fresh.as_str());
            return Some(self.join_response(&fresh, leader));
        }
        if let Some(m) = self.member_mut(&fresh) {
            m.join_waiter = Some(waiter);
        }
        self.prepare_rebalance(now);
        self.try_complete_join(now);
        None
    }

    /// Whether some protocol is supported by `protocols` and every member.
    fn supports_some(&self, protocols: &[(String, Bytes)]) -> bool {
        protocols.iter().any(|(name, _)| {
            self.members
                .iter()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .iter()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::from_secs(60))
    }

    /// Moves to PreparingRebalance (members must rejoin).
    fn prepare_rebalance(&mut self, now: Instant) {
        match self.state {
            State::PreparingRebalance | State::Dead => return,
            State::CompletingRebalance => {
                for m in &mut self.members {
                    m.answer_sync(SyncResponse::error(GroupError::RebalanceInProgress));
                }
            }
            State::Empty | State::Stable => {}
        }
        self.state = State::PreparingRebalance;
        if self.initial_delay_until.is_none() {
            self.rebalance_deadline = Some(now + self.max_rebalance_timeout());
        }
    }

    /// Completes the join if every member has rejoined (and no member id
    /// handed out is still expected), or the deadline passed.
    pub fn try_complete_join(&mut self, now: Instant) -> bool {
        if self.state != State::PreparingRebalance {
            return false;
        }
        if self.initial_delay_until.is_some_and(|t| now < t) {
            return false;
        }
        let all_joined =
            self.members.iter().all(|m| m.join_waiter.is_some()) && self.pending.is_empty();
        let timed_out = self.rebalance_deadline.is_some_and(|t| now >= t);
        if !all_joined && !timed_out {
            return false;
        }
        self.initial_delay_until = None;
        self.rebalance_deadline = None;
        // Members that did not rejoin in time are out.
        self.members.retain(|m| m.join_waiter.is_some());
        self.pending.clear();
        self.generation += 1;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.protocol = None;
            self.leader = None;
            self.dirty = true;
            return true;
        }
        self.protocol = self.select_protocol();
        let leader_stays = self
            .leader
            .as_ref()
            .is_some_and(|l| self.member(l).is_some());
        if !leader_stays {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        self.state = State::CompletingRebalance;
        let ids: Vec<String> = self.members.iter().map(|m| m.id.clone()).collect();
        for id in ids {
            let leader = self.leader.as_deref() == Some(id.as_str());
            let response = self.join_response(&id, leader);
            if let Some(m) = self.member_mut(&id) {
                m.last_seen = now;
                m.answer_join(response);
            }
        }
        true
    }

    /// The protocol every member supports that most members prefer.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.first()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| {
                self.members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == n))
            })
            .collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &self.members {
            if let Some((n, _)) = m
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n.as_str()))
            {
                *votes.entry(n.as_str()).or_default() += 1;
            }
        }
        candidates
            .iter()
            .max_by_key(|c| {
                (
                    votes.get(*c).copied().unwrap_or(0),
                    std::cmp::Reverse(candidates.iter().position(|x| x == *c)),
                )
            })
            .map(|c| c.to_string())
    }

    fn join_response(&self, member_id: &str, with_members: bool) -> JoinResponse {
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinResponse {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members {
                self.members
                    .iter()
                    .map(|m| JoinedMember {
                        id: m.id.clone(),
                        instance_id: m.instance_id.clone(),
                        metadata: m.metadata_for(&protocol),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Checks a member's generation (sync, heartbeat, commit).
    fn check_member(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        if self.state == State::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if self.fenced(member_id, instance) {
            return Err(GroupError::FencedInstanceId);
        }
        if self.member(member_id).is_none() {
            return Err(GroupError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    /// Handles a SyncGroup. `None`: the answer comes through `waiter` once
    /// the leader's assignment arrives.
    pub fn sync(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
        waiter: Waiter<SyncResponse>,
    ) -> Option<SyncResponse> {
        if let Err(e) = self.check_member(member_id, instance, generation) {
            return Some(SyncResponse::error(e));
        }
        match self.state {
            State::PreparingRebalance => {
                return Some(SyncResponse::error(GroupError::RebalanceInProgress));
            }
            State::Stable => {
                let m = self.member_mut(member_id).expect("checked above");
                m.last_seen = now;
                return Some(SyncResponse::ok(m.assignment.clone(), self));
            }
            State::Empty | State::Dead => {
                return Some(SyncResponse::error(GroupError::UnknownMemberId));
            }
            State::CompletingRebalance => {}
        }
        let m = self.member_mut(member_id).expect("checked above");
        m.last_seen = now;
        m.sync_waiter = Some(waiter);
        if self.leader.as_deref() == Some(member_id) {
            for m in &mut self.members {
                m.assignment = assignments
                    .iter()
                    .find(|(id, _)| *id == m.id)
                    .map(|(_, a)| a.clone())
                    .unwrap_or_default();
            }
            self.state = State::Stable;
            self.dirty = true;
            let protocol_type = self.protocol_type.clone();
            let protocol_name = self.protocol.clone();
            for m in &mut self.members {
                let response = SyncResponse {
                    error: None,
                    assignment: m.assignment.clone(),
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol_name.clone(),
                };
                m.answer_sync(response);
            }
        }
        None
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupError> {
        if self.state == State::Empty {
            return Err(GroupError::UnknownMemberId);
        }
        self.check_member(member_id, instance, generation)?;
        if let Some(m) = self.member_mut(member_id) {
            m.last_seen = now;
        }
        match self.state {
            State::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Removes a leaving member (LeaveGroup), by member id or, for static
    /// members, by instance id.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        now: Instant,
    ) -> Result<(), GroupError> {
        if self.state == State::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let id = match instance {
            Some(i) => {
                let m = self.by_instance(i).ok_or(GroupError::UnknownMemberId)?;
                if !member_id.is_empty() && m.id != member_id {
                    return Err(GroupError::FencedInstanceId);
                }
                m.id.clone()
            }
            None => self
                .member(member_id)
                .map(|m| m.id.clone())
                .ok_or(GroupError::UnknownMemberId)?,
        };
        self.remove(&id, now);
        Ok(())
    }

    /// Takes a member out and rebalances the others.
    fn remove(&mut self, id: &str, now: Instant) {
        let Some(i) = self.members.iter().position(|m| m.id == id) else {
            return;
        };
        let mut m = self.members.remove(i);
        m.answer_join(JoinResponse::error(GroupError::UnknownMemberId, id));
        m.answer_sync(SyncResponse::error(GroupError::UnknownMemberId));
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        match self.state {
            State::Stable | State::CompletingRebalance => {
                if self.members.is_empty() {
                    self.generation += 1;
                    self.state = State::Empty;
                    self.protocol = None;
                    self.dirty = true;
                } else {
                    self.prepare_rebalance(now);
                }
            }
            State::PreparingRebalance => {
                self.try_complete_join(now);
            }
            State::Empty | State::Dead => {}
        }
    }

    /// Expires members whose session ran out and member ids never used,
    /// and completes a rebalance whose deadline passed. Returns whether
    /// anything changed.
    pub fn tick(&mut self, now: Instant) -> bool {
        let before = (self.state, self.generation, self.members.len());
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.join_waiter.is_none() && m.last_seen + m.session_timeout < now)
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove(&id, now);
        }
        let pending = self.pending.len();
        self.pending.retain(|(_, until)| *until > now);
        self.try_complete_join(now);
        before != (self.state, self.generation, self.members.len()) || pending != self.pending.len()
    }

    /// DeleteGroups: only an empty group can go.
    pub fn delete(&mut self) -> Result<(), GroupError> {
        match self.state {
            State::Dead => Err(GroupError::GroupIdNotFound),
            State::Empty => {
                self.state = State::Dead;
                self.offsets.clear();
                Ok(())
            }
            _ => Err(GroupError::NonEmptyGroup),
        }
    }

    /// Whether an offset commit from this member may be stored now.
    pub fn check_commit(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        if self.state == State::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if generation < 0 && member_id.is_empty() && self.state == State::Empty {
            return Ok(()); // a standalone commit (no group membership)
        }
        self.check_member(member_id, instance, generation)?;
        if self.state == State::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Loads a stored membership (replay after a restart): the group is
    /// as it was, each member with a fresh session.
    pub fn restore(
        &mut self,
        generation: i32,
        protocol_type: Option<String>,
        protocol: Option<String>,
        leader: Option<String>,
        members: Vec<Member>,
    ) {
        self.generation = generation;
        self.protocol_type = protocol_type;
        self.protocol = protocol;
        self.leader = leader;
        self.members = members;
        self.state = if self.members.is_empty() {
            State::Empty
        } else {
            State::Stable
        };
    }
}

/// Kafka's member ids: the client id, a dash, a UUID — here made of the
/// clock and a per-thread counter. A group lives on one shard (one
/// thread), so that is unique where it must be.
fn new_member_id(client_id: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::channels::local_channel::{self, LocalReceiver};

    fn cfg() -> GroupConfig {
        GroupConfig {
            initial_rebalance_delay: Duration::ZERO,
            ..GroupConfig::default()
        }
    }

    fn join_req(member: &str, instance: Option<&str>, v4: bool) -> JoinRequest {
        JoinRequest {
            member_id: member.to_string(),
            instance_id: instance.map(str::to_string),
            client_id: "c".into(),
            client_host: String::new(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
            require_known_member_id: v4,
        }
    }

    fn waiter<T>() -> (Waiter<T>, LocalReceiver<T>) {
        local_channel::new_bounded(1)
    }

    fn run<F: std::future::Future<Output = ()> + 'static>(f: F) {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .make()
            .expect("executor")
            .run(f);
    }

    /// Joins a dynamic v4 member (MEMBER_ID_REQUIRED round first); the
    /// join is left pending. Returns its id and where its answer comes.
    fn join_new(g: &mut Group, now: Instant) -> (String, LocalReceiver<JoinResponse>) {
        let (tx, _rx) = waiter();
        let first = g
            .join(join_req("", None, true), &cfg(), now, tx)
            .expect("answered");
        assert_eq!(first.error, Some(GroupError::MemberIdRequired));
        let (tx, rx) = waiter();
        assert!(g
            .join(join_req(&first.member_id, None, true), &cfg(), now, tx)
            .is_none());
        (first.member_id, rx)
    }

    #[test]
    fn two_members_join_sync_and_rebalance_when_one_leaves() {
        run(async {
            let now = Instant::now();
            let mut g = Group::new("g");
            let (a, a_join) = join_new(&mut g, now);
            // Alone: the join completes at once, a leads generation 1.
            let ja = a_join.recv().await.expect("joined");
            assert_eq!(
                (ja.error, ja.generation, ja.leader.as_str()),
                (None, 1, a.as_str())
            );
            assert_eq!(ja.members.len(), 1);
            let (tx, _s) = waiter();
            let sa = g.sync(
                &a,
                None,
                1,
                vec![(a.clone(), Bytes::from_static(b"all"))],
                now,
                tx,
            );
            assert!(
                sa.is_none(),
                "the leader's sync is answered through its waiter"
            );
            assert_eq!(g.state, State::Stable);

            // b joins: a is told to rejoin; the join waits for a.
            let (b, b_join) = join_new(&mut g, now);
            assert_eq!(g.state, State::PreparingRebalance);
            assert_eq!(
                g.heartbeat(&a, None, 1, now),
                Err(GroupError::RebalanceInProgress)
            );
            let (tx, a_join) = waiter();
            assert!(g.join(join_req(&a, None, true), &cfg(), now, tx).is_none());
            let (ja, jb) = (a_join.recv().await.unwrap(), b_join.recv().await.unwrap());
            assert_eq!((ja.generation, jb.generation), (2, 2));
            assert_eq!(ja.leader, a, "the leader stays the leader");
            assert_eq!((ja.members.len(), jb.members.len()), (2, 0));

            // b's sync waits for the leader's assignment.
            let (tx, b_sync) = waiter();
            assert!(g.sync(&b, None, 2, vec![], now, tx).is_none());
            assert_eq!(
                g.sync(&b, None, 1, vec![], now, waiter().0).unwrap().error,
                Some(GroupError::IllegalGeneration)
            );
            let (tx, _a_sync) = waiter();
            let plan = vec![
                (a.clone(), Bytes::from_static(b"p0")),
                (b.clone(), Bytes::from_static(b"p1")),
            ];
            assert!(g.sync(&a, None, 2, plan, now, tx).is_none());
            assert_eq!(
                b_sync.recv().await.unwrap().assignment,
                Bytes::from_static(b"p1")
            );
            assert_eq!(g.heartbeat(&b, None, 2, now), Ok(()));

            // a leaves: b must rejoin and then leads generation 3 alone.
            assert_eq!(g.leave(&a, None, now), Ok(()));
            assert_eq!(
                g.heartbeat(&b, None, 2, now),
                Err(GroupError::RebalanceInProgress)
            );
            let (tx, b_join) = waiter();
            assert!(g.join(join_req(&b, None, true), &cfg(), now, tx).is_none());
            let jb = b_join.recv().await.unwrap();
            assert_eq!((jb.generation, jb.leader.as_str()), (3, b.as_str()));
            assert_eq!(
                g.leave("nobody", None, now),
                Err(GroupError::UnknownMemberId)
            );
            assert_eq!(g.delete(), Err(GroupError::NonEmptyGroup));
        });
    }

    #[test]
    fn an_expired_session_removes_the_member_and_empties_the_group() {
        run(async {
            let now = Instant::now();
            let mut g = Group::new("g");
            let (a, a_join) = join_new(&mut g, now);
            a_join.recv().await.unwrap();
            g.sync(&a, None, 1, vec![], now, waiter().0);
            assert!(!g.tick(now + Duration::from_secs(5)));
            assert!(g.tick(now + Duration::from_secs(11)));
            assert_eq!(g.state, State::Empty);
            assert_eq!(
                g.heartbeat(&a, None, 1, now),
                Err(GroupError::UnknownMemberId)
            );
            // An unused member id handed out expires too.
            let first = g
                .join(join_req("", None, true), &cfg(), now, waiter().0)
                .unwrap();
            assert!(g.tick(now + Duration::from_secs(11)));
            let late = g.join(
                join_req(&first.member_id, None, true),
                &cfg(),
                now,
                waiter().0,
            );
            assert_eq!(late.unwrap().error, Some(GroupError::UnknownMemberId));
            assert_eq!(g.delete(), Ok(()));
        });
    }

    #[test]
    fn a_static_member_rejoins_without_a_rebalance_and_fences_its_old_self() {
        run(async {
            let now = Instant::now();
            let mut g = Group::new("g");
            let (tx, a_join) = waiter();
            assert!(g
                .join(join_req("", Some("i-1"), true), &cfg(), now, tx)
                .is_none());
            let a = a_join.recv().await.unwrap().member_id;
            let (b, b_join) = join_new(&mut g, now);
            let (tx, a_join) = waiter();
            assert!(g
                .join(join_req(&a, Some("i-1"), true), &cfg(), now, tx)
                .is_none());
            let gen = a_join.recv().await.unwrap().generation;
            b_join.recv().await.unwrap();
            let plan = vec![
                (a.clone(), Bytes::from_static(b"pa")),
                (b.clone(), Bytes::from_static(b"pb")),
            ];
            g.sync(&a, Some("i-1"), gen, plan, now, waiter().0);
            assert_eq!(g.state, State::Stable);

            // The instance restarts (new process, no member id): same
            // generation, no rebalance, its assignment back on sync.
            let again = g
                .join(join_req("", Some("i-1"), true), &cfg(), now, waiter().0)
                .expect("answered at once");
            assert_eq!((again.error, again.generation), (None, gen));
            assert_ne!(again.member_id, a);
            // It led the group, so it still does, and sees the members.
            assert_eq!(
                (again.leader.as_str(), again.members.len()),
                (again.member_id.as_str(), 2)
            );
            assert_eq!(g.state, State::Stable);
            assert_eq!(g.heartbeat(&b, None, gen, now), Ok(()));
            let s = g
                .sync(&again.member_id, Some("i-1"), gen, vec![], now, waiter().0)
                .unwrap();
            assert_eq!(s.assignment, Bytes::from_static(b"pa"));
            // The old incarnation is fenced.
            assert_eq!(
                g.heartbeat(&a, Some("i-1"), gen, now),
                Err(GroupError::FencedInstanceId)
            );
        });
    }

    #[test]
    fn bad_joins_get_kafka_errors() {
        let now = Instant::now();
        let mut g = Group::new("g");
        let mut short = join_req("", None, false);
        short.session_timeout = Duration::from_millis(100);
        assert_eq!(
            g.join(short, &cfg(), now, waiter().0).unwrap().error,
            Some(GroupError::InvalidSessionTimeout)
        );
        let mut none = join_req("", None, false);
        none.protocols.clear();
        assert_eq!(
            g.join(none, &cfg(), now, waiter().0).unwrap().error,
            Some(GroupError::InconsistentGroupProtocol)
        );
        assert_eq!(
            g.join(join_req("ghost", None, true), &cfg(), now, waiter().0)
                .unwrap()
                .error,
            Some(GroupError::UnknownMemberId)
        );
        assert_eq!(
            g.check_commit("", None, -1),
            Ok(()),
            "standalone commits to an empty group"
        );
        assert_eq!(
            g.check_commit("ghost", None, 3),
            Err(GroupError::UnknownMemberId)
        );
    }
}
