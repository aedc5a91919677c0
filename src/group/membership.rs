//! `Group`: one consumer group's members and Kafka's classic rebalance
//! state machine (Empty → PreparingRebalance → CompletingRebalance →
//! Stable, and Dead once deleted).
//!
//! Synchronous and I/O-free: the coordinator calls it with the time and
//! gets answers back. A JoinGroup or SyncGroup that must wait for the other
//! members leaves a `Waiter` here, answered when the join (or the leader's
//! sync) completes, or with an error when the member is removed.
//!
//! Invariants (asserted by `check_invariants`, which the property test in
//! `tests/group_state_machine.rs` runs after every step): a member is in
//! `members` once (by id), a static member's instance id maps to exactly
//! one member, and a member id handed out with MEMBER_ID_REQUIRED is not a
//! member yet; `generation` only grows; the leader, when set, is a member,
//! and in CompletingRebalance and Stable there is one; a member waits for
//! at most one answer — a join only while the group prepares a rebalance,
//! a sync only while it completes one; in Stable every member holds an
//! assignment of the current generation; an Empty or Dead group has no
//! members.

use super::member::{new_member_id, Member, Waiter};
use super::{
    Committed, GroupConfig, GroupError, JoinRequest, JoinResponse, JoinedMember, SyncResponse,
};
use crate::log::{ProducerId, TopicPartition};
use bytes::Bytes;
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

/// Which member id a JoinGroup joins as.
enum Admission {
    As(String),
    /// A static member's new incarnation takes over from `old`.
    ReplaceStatic {
        old: String,
        fresh: String,
    },
    /// Refused with this error; the id to answer with.
    Refused(GroupError, String),
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
    /// Offsets committed inside a producer's open transaction
    /// (TxnOffsetCommit): they become `offsets` when its commit marker is
    /// written and are dropped by its abort.
    pub txn_offsets: BTreeMap<ProducerId, BTreeMap<TopicPartition, Committed>>,
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
            txn_offsets: BTreeMap::new(),
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
            && self.txn_offsets.is_empty()
            && !self.dirty
    }

    /// Ends `producer`'s transaction for this group's offsets: its
    /// pending offsets become committed, or go.
    pub fn end_txn_offsets(&mut self, producer: ProducerId, commit: bool) {
        if let Some(pending) = self.txn_offsets.remove(&producer) {
            if commit {
                self.offsets.extend(pending);
            }
        }
    }

    /// Whether a transaction holds an offset of `tp` not yet committed.
    pub fn has_pending_offset(&self, tp: &TopicPartition) -> bool {
        self.txn_offsets.values().any(|p| p.contains_key(tp))
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
        if let Err(e) = self.check_join(&req, cfg) {
            return Some(JoinResponse::error(e, &req.member_id));
        }
        let member_id = match self.admit(&req, now) {
            Admission::As(id) => id,
            Admission::ReplaceStatic { old, fresh } => {
                return self.replace_static(&old, fresh, req, now, waiter);
            }
            Admission::Refused(e, id) => return Some(JoinResponse::error(e, &id)),
        };
        if self.state == State::Stable && self.leader.as_deref() != Some(member_id.as_str()) {
            // A follower rejoining with what it had changes nothing: it
            // gets the current generation back without a rebalance.
            let unchanged = self
                .member_mut(&member_id)
                .filter(|m| m.protocols == req.protocols);
            if let Some(m) = unchanged {
                m.last_seen = now;
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
                self.members
                    .push(Member::joining(member_id, req, now, waiter));
            }
        }
        self.delay_first_join(was_empty, cfg, now);
        self.prepare_rebalance(now);
        self.try_complete_join(now);
        None
    }

    /// Why a JoinGroup cannot join at all, whoever sends it.
    fn check_join(&self, req: &JoinRequest, cfg: &GroupConfig) -> Result<(), GroupError> {
        if self.state == State::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if req.session_timeout < cfg.min_session_timeout
            || req.session_timeout > cfg.max_session_timeout
        {
            return Err(GroupError::InvalidSessionTimeout);
        }
        if req.protocols.is_empty()
            || (!self.is_empty() && self.protocol_type.as_deref() != Some(&req.protocol_type))
            || !self.supports_some(&req.protocols)
        {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        Ok(())
    }

    /// Which member id a JoinGroup joins as (Kafka's rules for new
    /// members, MEMBER_ID_REQUIRED, static members and fencing).
    fn admit(&mut self, req: &JoinRequest, now: Instant) -> Admission {
        let member_id = req.member_id.clone();
        if member_id.is_empty() {
            let fresh = new_member_id(&req.client_id);
            if let Some(instance) = req.instance_id.as_deref() {
                return match self.by_instance(instance) {
                    Some(old) => Admission::ReplaceStatic {
                        old: old.id.clone(),
                        fresh,
                    },
                    None => Admission::As(fresh),
                };
            }
            if req.require_known_member_id {
                self.pending
                    .push((fresh.clone(), now + req.session_timeout));
                return Admission::Refused(GroupError::MemberIdRequired, fresh);
            }
            return Admission::As(fresh);
        }
        if self.fenced(&member_id, req.instance_id.as_deref()) {
            return Admission::Refused(GroupError::FencedInstanceId, member_id);
        }
        if let Some(i) = self.pending.iter().position(|(id, _)| *id == member_id) {
            self.pending.remove(i);
        } else if self.member(&member_id).is_none() {
            return Admission::Refused(GroupError::UnknownMemberId, member_id);
        }
        Admission::As(member_id)
    }

    /// Kafka's InitialDelayedJoin: a new group waits for more first
    /// members, the delay restarting with each, up to the rebalance
    /// timeout.
    fn delay_first_join(&mut self, was_empty: bool, cfg: &GroupConfig, now: Instant) {
        if was_empty && !cfg.initial_rebalance_delay.is_zero() {
            let cap = now + self.max_rebalance_timeout();
            self.initial_delay_until = Some(now + cfg.initial_rebalance_delay);
            self.rebalance_deadline = Some(cap);
        } else if let Some(until) = self.initial_delay_until {
            let cap = self.rebalance_deadline.unwrap_or(until);
            self.initial_delay_until =
                Some((now + cfg.initial_rebalance_delay).min(cap).max(until));
        }
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
            let generation = self.generation;
            for m in &mut self.members {
                m.assignment = assignments
                    .iter()
                    .find(|(id, _)| *id == m.id)
                    .map(|(_, a)| a.clone())
                    .unwrap_or_default();
                m.assigned_in = Some(generation);
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

    /// Asserts the invariants of the module header. A violation is a bug
    /// in this state machine, so it panics with what broke.
    pub fn check_invariants(&self) {
        let mut ids: Vec<&str> = self.members.iter().map(|m| m.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            self.members.len(),
            "a member id is in {} twice",
            self.id
        );
        let mut instances: Vec<&str> = self
            .members
            .iter()
            .filter_map(|m| m.instance_id.as_deref())
            .collect();
        let static_members = instances.len();
        instances.sort_unstable();
        instances.dedup();
        assert_eq!(
            instances.len(),
            static_members,
            "an instance id has two members"
        );
        for (id, _) in &self.pending {
            assert!(
                self.member(id).is_none(),
                "{id} is both pending and a member"
            );
        }
        if let Some(leader) = &self.leader {
            assert!(
                self.member(leader).is_some(),
                "leader {leader} is not a member"
            );
        }
        for m in &self.members {
            assert!(
                !(m.waits_to_join() && m.waits_to_sync()),
                "{} waits to join and to sync",
                m.id
            );
        }
        let waiting_join = self.members.iter().any(Member::waits_to_join);
        let waiting_sync = self.members.iter().any(Member::waits_to_sync);
        match self.state {
            State::Empty | State::Dead => {
                assert!(self.members.is_empty(), "{:?} with members", self.state);
            }
            State::PreparingRebalance => assert!(!waiting_sync, "a sync parked while preparing"),
            State::CompletingRebalance => {
                assert!(self.leader.is_some(), "completing without a leader");
                assert!(!waiting_join, "a join parked while completing");
            }
            State::Stable => {
                assert!(self.leader.is_some(), "stable without a leader");
                assert!(
                    !waiting_join && !waiting_sync,
                    "an answer parked while stable"
                );
                for m in &self.members {
                    assert_eq!(
                        m.assigned_in,
                        Some(self.generation),
                        "{} has no assignment of generation {}",
                        m.id,
                        self.generation
                    );
                }
            }
        }
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
        self.members = members;
        // A stored leader is a member; should a record say otherwise, the
        // first member leads, as after a rebalance.
        self.leader = leader
            .filter(|l| self.member(l).is_some())
            .or_else(|| self.members.first().map(|m| m.id.clone()));
        self.state = if self.members.is_empty() {
            State::Empty
        } else {
            State::Stable
        };
    }
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
