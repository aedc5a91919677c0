//! `strom bench --group G`: the consumers are members of consumer group G
//! (Kafka's classic protocol, "consumer" protocol type, range assignment
//! by the leader) instead of splitting partitions among themselves. Each
//! member joins, syncs, resumes from the group's committed offsets, fetches
//! its partitions, heartbeats between fetches, commits its positions before
//! every rejoin and when it leaves.
//!
//! `--leave-after S` makes member 0 leave the group S seconds after the
//! group formed (when producing starts): the rebalance time is from its
//! LeaveGroup to the moment every partition it held has returned records
//! to another member.

use super::client::KafkaClient;
use super::consumer::{fetch_once, start_offsets, Shared};
use super::BenchArgs;
use anyhow::{bail, Context};
use bytes::{Buf, BufMut, Bytes};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

const JOIN_VERSION: i16 = 5;
const SYNC_VERSION: i16 = 3;
const HEARTBEAT_VERSION: i16 = 3;
const LEAVE_VERSION: i16 = 3;
const COMMIT_VERSION: i16 = 7;
const OFFSET_FETCH_VERSION: i16 = 6;
const HEARTBEAT_EVERY: Duration = Duration::from_millis(300);
const SESSION_TIMEOUT_MS: i32 = 10_000;
/// How long consumers keep reading after the producers finished.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// The rebalance being timed: when member 0 left, the partitions it held
/// that no other member has read from yet, and when the last one was.
#[derive(Default)]
pub struct Rebalance {
    /// Members that finished their first join (start waits for all, so
    /// producing starts once the group has formed).
    started: Cell<usize>,
    /// When every member had joined (producing starts then).
    formed_at: Cell<Option<Instant>>,
    pub left_at: Cell<Option<Instant>>,
    moved: RefCell<BTreeSet<i32>>,
    pub done_at: Cell<Option<Instant>>,
}

impl Rebalance {
    pub fn millis(&self) -> Option<f64> {
        let (a, b) = (self.left_at.get()?, self.done_at.get()?);
        Some(b.saturating_duration_since(a).as_secs_f64() * 1000.0)
    }

    fn read_again(&self, partitions: &[i32]) {
        if self.left_at.get().is_none() || self.done_at.get().is_some() {
            return;
        }
        let mut moved = self.moved.borrow_mut();
        for p in partitions {
            moved.remove(p);
        }
        if moved.is_empty() {
            self.done_at.set(Some(Instant::now()));
        }
    }
}

/// Starts one task per group member.
pub async fn start(
    args: &BenchArgs,
    group: &str,
    partitions: i32,
    member_ids: &[usize],
    shared: &Rc<Shared>,
    rebalance: &Rc<Rebalance>,
) -> anyhow::Result<Vec<glommio::Task<anyhow::Result<()>>>> {
    let mut tasks = Vec::new();
    for &id in member_ids {
        let client = KafkaClient::connect(&args.bootstrap).await?;
        let member = Member {
            client,
            group: group.to_string(),
            topic: args.topic.clone(),
            earliest: args.from_earliest,
            partitions,
            member_id: String::new(),
            generation: -1,
            leave_after: (id == 0)
                .then_some(args.leave_after)
                .flatten()
                .map(|s| Duration::from_secs_f64(s.max(0.0))),
        };
        tasks.push(glommio::spawn_local(
            member.run(shared.clone(), rebalance.clone()),
        ));
    }
    // Wait for the group to form (a new group's first rebalance waits
    // group.initial.rebalance.delay.ms, 3 s by default).
    let deadline = Instant::now() + Duration::from_secs(60);
    while rebalance.started.get() < member_ids.len() {
        if Instant::now() > deadline {
            bail!("group {group} did not form within 60 s");
        }
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    rebalance.formed_at.set(Some(Instant::now()));
    Ok(tasks)
}

struct Member {
    client: KafkaClient,
    group: String,
    topic: String,
    earliest: bool,
    partitions: i32,
    member_id: String,
    generation: i32,
    /// Member 0 with --leave-after: leaves this long after the group formed.
    leave_after: Option<Duration>,
}

/// What a round of membership ended with.
enum Round {
    Rejoin,
    Done,
}

impl Member {
    async fn run(mut self, shared: Rc<Shared>, rebalance: Rc<Rebalance>) -> anyhow::Result<()> {
        let mut first = true;
        loop {
            let partitions = self.join_and_sync().await?;
            let mut offsets = self.resume_offsets(&partitions).await?;
            if std::mem::take(&mut first) {
                rebalance.started.set(rebalance.started.get() + 1);
            }
            match self.consume(&mut offsets, &shared, &rebalance).await? {
                Round::Rejoin => self.commit(&offsets).await?,
                Round::Done => {
                    self.commit(&offsets).await?;
                    return self.leave().await;
                }
            }
        }
    }

    /// JoinGroup (with the member-id round) and SyncGroup; the leader
    /// assigns ranges of partitions. Returns this member's partitions.
    async fn join_and_sync(&mut self) -> anyhow::Result<Vec<i32>> {
        let joined = loop {
            let mut req = JoinGroupRequest::default();
            req.group_id = GroupId(StrBytes::from_string(self.group.clone()));
            req.session_timeout_ms = SESSION_TIMEOUT_MS;
            req.rebalance_timeout_ms = 30_000;
            req.member_id = StrBytes::from_string(self.member_id.clone());
            req.protocol_type = StrBytes::from_static_str("consumer");
            let mut range = JoinGroupRequestProtocol::default();
            range.name = StrBytes::from_static_str("range");
            range.metadata = subscription(&self.topic);
            req.protocols = vec![range];
            let r: JoinGroupResponse = self
                .client
                .call(ApiKey::JoinGroup, JOIN_VERSION, &req)
                .await?;
            match r.error_code {
                0 => break r,
                79 => self.member_id = r.member_id.to_string(), // MEMBER_ID_REQUIRED
                25 => self.member_id.clear(),                   // UNKNOWN_MEMBER_ID
                27 => {}                                        // REBALANCE_IN_PROGRESS
                code => bail!("JoinGroup failed with error code {code}"),
            }
        };
        self.member_id = joined.member_id.to_string();
        self.generation = joined.generation_id;
        let mut assignments = Vec::new();
        if joined.leader == joined.member_id {
            let partitions = self.partitions;
            let mut members: Vec<String> = joined
                .members
                .iter()
                .map(|m| m.member_id.to_string())
                .collect();
            members.sort();
            let n = members.len().max(1) as i32;
            for (i, m) in members.iter().enumerate() {
                let i = i as i32;
                // Kafka's range assignor: the first (p % n) members get one more.
                let (per, extra) = (partitions / n, partitions % n);
                let from = i * per + i.min(extra);
                let count = per + i32::from(i < extra);
                let mut a = SyncGroupRequestAssignment::default();
                a.member_id = StrBytes::from_string(m.clone());
                a.assignment = assignment(&self.topic, from..from + count);
                assignments.push(a);
            }
        }
        let mut req = SyncGroupRequest::default();
        req.group_id = GroupId(StrBytes::from_string(self.group.clone()));
        req.generation_id = self.generation;
        req.member_id = StrBytes::from_string(self.member_id.clone());
        req.assignments = assignments;
        let r: SyncGroupResponse = self
            .client
            .call(ApiKey::SyncGroup, SYNC_VERSION, &req)
            .await?;
        match r.error_code {
            0 => parse_assignment(r.assignment),
            27 | 22 | 25 => Ok(Vec::new()), // rebalancing again: rejoin with nothing
            code => bail!("SyncGroup failed with error code {code}"),
        }
    }

    /// Committed offsets of `partitions`, or the log start / end.
    async fn resume_offsets(&mut self, partitions: &[i32]) -> anyhow::Result<Vec<(i32, i64)>> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let mut req = OffsetFetchRequest::default();
        req.group_id = GroupId(StrBytes::from_string(self.group.clone()));
        let mut t = OffsetFetchRequestTopic::default();
        t.name = TopicName(StrBytes::from_string(self.topic.clone()));
        t.partition_indexes = partitions.to_vec();
        req.topics = Some(vec![t]);
        let r: OffsetFetchResponse = self
            .client
            .call(ApiKey::OffsetFetch, OFFSET_FETCH_VERSION, &req)
            .await?;
        let committed: Vec<(i32, i64)> = r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| (p.partition_index, p.committed_offset))
            .collect();
        let fresh: Vec<i32> = committed
            .iter()
            .filter(|(_, o)| *o < 0)
            .map(|(p, _)| *p)
            .collect();
        let mut out: Vec<(i32, i64)> = committed.into_iter().filter(|(_, o)| *o >= 0).collect();
        if !fresh.is_empty() {
            out.extend(start_offsets(&mut self.client, &self.topic, &fresh, self.earliest).await?);
        }
        Ok(out)
    }

    async fn consume(
        &mut self,
        offsets: &mut [(i32, i64)],
        shared: &Shared,
        rebalance: &Rebalance,
    ) -> anyhow::Result<Round> {
        let mut beat = Instant::now();
        loop {
            if shared.totals.all_consumed(DRAIN_GRACE) {
                return Ok(Round::Done);
            }
            let leave_at = self
                .leave_after
                .zip(rebalance.formed_at.get())
                .map(|(d, t)| t + d);
            if leave_at.is_some_and(|t| Instant::now() >= t) {
                *rebalance.moved.borrow_mut() = offsets.iter().map(|(p, _)| *p).collect();
                rebalance.left_at.set(Some(Instant::now()));
                return Ok(Round::Done);
            }
            if offsets.is_empty() {
                glommio::timer::sleep(Duration::from_millis(50)).await;
            } else {
                let with_data = fetch_once(&mut self.client, &self.topic, offsets, shared).await?;
                if self.leave_after.is_none() {
                    rebalance.read_again(&with_data);
                }
            }
            if beat.elapsed() >= HEARTBEAT_EVERY {
                beat = Instant::now();
                let mut req = HeartbeatRequest::default();
                req.group_id = GroupId(StrBytes::from_string(self.group.clone()));
                req.generation_id = self.generation;
                req.member_id = StrBytes::from_string(self.member_id.clone());
                let r: HeartbeatResponse = self
                    .client
                    .call(ApiKey::Heartbeat, HEARTBEAT_VERSION, &req)
                    .await?;
                match r.error_code {
                    0 => {}
                    27 | 22 => return Ok(Round::Rejoin),
                    25 => {
                        self.member_id.clear();
                        return Ok(Round::Rejoin);
                    }
                    code => bail!("Heartbeat failed with error code {code}"),
                }
            }
        }
    }

    async fn commit(&mut self, offsets: &[(i32, i64)]) -> anyhow::Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut req = OffsetCommitRequest::default();
        req.group_id = GroupId(StrBytes::from_string(self.group.clone()));
        req.generation_id_or_member_epoch = self.generation;
        req.member_id = StrBytes::from_string(self.member_id.clone());
        let mut t = OffsetCommitRequestTopic::default();
        t.name = TopicName(StrBytes::from_string(self.topic.clone()));
        t.partitions = offsets
            .iter()
            .map(|&(p, o)| {
                let mut cp = OffsetCommitRequestPartition::default();
                cp.partition_index = p;
                cp.committed_offset = o;
                cp.committed_leader_epoch = -1;
                cp
            })
            .collect();
        req.topics = vec![t];
        // A commit refused because the group moved on is fine: the new
        // owner re-reads from the last accepted commit (at least once).
        let _: OffsetCommitResponse = self
            .client
            .call(ApiKey::OffsetCommit, COMMIT_VERSION, &req)
            .await?;
        Ok(())
    }

    async fn leave(&mut self) -> anyhow::Result<()> {
        let mut req = LeaveGroupRequest::default();
        req.group_id = GroupId(StrBytes::from_string(self.group.clone()));
        let mut m = MemberIdentity::default();
        m.member_id = StrBytes::from_string(self.member_id.clone());
        req.members = vec![m];
        let _: LeaveGroupResponse = self
            .client
            .call(ApiKey::LeaveGroup, LEAVE_VERSION, &req)
            .await?;
        Ok(())
    }
}

/// ConsumerProtocolSubscription v0: version, topics, null user data.
fn subscription(topic: &str) -> Bytes {
    let mut b = Vec::new();
    b.put_i16(0);
    b.put_i32(1);
    b.put_i16(topic.len() as i16);
    b.put_slice(topic.as_bytes());
    b.put_i32(-1);
    Bytes::from(b)
}

/// ConsumerProtocolAssignment v0: version, [(topic, [partition])], null
/// user data.
fn assignment(topic: &str, partitions: std::ops::Range<i32>) -> Bytes {
    let mut b = Vec::new();
    b.put_i16(0);
    b.put_i32(1);
    b.put_i16(topic.len() as i16);
    b.put_slice(topic.as_bytes());
    b.put_i32(partitions.len() as i32);
    for p in partitions {
        b.put_i32(p);
    }
    b.put_i32(-1);
    Bytes::from(b)
}

fn parse_assignment(mut b: Bytes) -> anyhow::Result<Vec<i32>> {
    if b.is_empty() {
        return Ok(Vec::new());
    }
    let need = |b: &Bytes, n: usize| {
        (b.remaining() >= n)
            .then_some(())
            .context("short assignment")
    };
    need(&b, 6)?;
    let _version = b.get_i16();
    let topics = b.get_i32();
    let mut out = Vec::new();
    for _ in 0..topics.max(0) {
        need(&b, 2)?;
        let len = b.get_i16().max(0) as usize;
        need(&b, len + 4)?;
        b.advance(len);
        let n = b.get_i32().max(0) as usize;
        need(&b, 4 * n)?;
        for _ in 0..n {
            out.push(b.get_i32());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_round_trip_in_the_consumer_protocol_format() {
        assert_eq!(
            parse_assignment(assignment("t", 2..5)).unwrap(),
            vec![2, 3, 4]
        );
        assert_eq!(parse_assignment(Bytes::new()).unwrap(), Vec::<i32>::new());
        assert!(parse_assignment(assignment("t", 0..3).slice(..9)).is_err());
        assert_eq!(subscription("ab").len(), 2 + 4 + 2 + 2 + 4);
    }
}
