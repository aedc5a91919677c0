//! Consumer groups against the real binary with librdkafka and kcat:
//! partitions split over a group's members and move when one leaves or
//! is killed; committed offsets survive a broker SIGKILL; ListGroups and
//! DescribeGroups through the rdkafka API.

mod common;

use common::broker::{refused_start, Broker};
use common::test_dir;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A broker with 2 shards whose groups form without Kafka's 3 s initial
/// delay (group.initial.rebalance.delay.ms = 0).
fn start_broker(dir: &Path, partitions: u32) -> Broker {
    let config = dir.join("strom.toml");
    std::fs::write(
        &config,
        format!("\"group.initial.rebalance.delay.ms\" = 0\n\"num.partitions\" = {partitions}\n"),
    )
    .expect("config");
    Broker::start_with(
        &dir.join("data"),
        &[
            "--shards",
            "2",
            "--config",
            config.to_str().expect("utf-8 path"),
        ],
    )
}

fn produce(addr: &str, topic: &str, from: usize, count: usize) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("acks", "all")
        .set("linger.ms", "1")
        .create()
        .expect("producer");
    for i in from..from + count {
        let key = format!("k{i}");
        let value = format!("v{i}");
        loop {
            match p.send(BaseRecord::to(topic).key(&key).payload(&value)) {
                Ok(()) => break,
                Err(_) => {
                    p.poll(Duration::from_millis(10));
                }
            }
        }
    }
    p.flush(Duration::from_secs(30)).expect("all produced");
}

fn member(addr: &str, group: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr)
        .set("group.id", group)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("auto.offset.reset", "earliest");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("consumer")
}

fn assigned(c: &BaseConsumer) -> BTreeSet<i32> {
    c.assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Polls every consumer until `done` says so (or fails after TIMEOUT);
/// every message seen is recorded as (partition, offset).
fn poll_until(
    consumers: &[&BaseConsumer],
    seen: &mut HashSet<(i32, i64)>,
    what: &str,
    mut done: impl FnMut(&HashSet<(i32, i64)>) -> bool,
) {
    let deadline = Instant::now() + TIMEOUT;
    while !done(seen) {
        if Instant::now() > deadline {
            let mut per: BTreeMap<i32, (usize, i64)> = BTreeMap::new();
            for (p, o) in seen.iter() {
                let e = per.entry(*p).or_insert((0, 0));
                e.0 += 1;
                e.1 = e.1.max(*o);
            }
            let sets: Vec<BTreeSet<i32>> = consumers.iter().map(|c| assigned(c)).collect();
            panic!("timed out waiting for {what}: seen (count, max offset) {per:?}, assignments {sets:?}");
        }
        for c in consumers {
            if let Some(m) = c.poll(Duration::from_millis(20)) {
                let m = m.expect("a message");
                seen.insert((m.partition(), m.offset()));
                // At-least-once: only what was processed is committed (an
                // error means this consumer stores offsets by itself).
                let _ = c.store_offset_from_message(&m);
            }
        }
    }
}

/// Each partition of 0..n assigned to exactly one of the consumers.
fn split_exactly(consumers: &[&BaseConsumer], n: i32) -> bool {
    let sets: Vec<BTreeSet<i32>> = consumers.iter().map(|c| assigned(c)).collect();
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
    sets.iter().all(|s| !s.is_empty()) && total == n as usize && union == (0..n).collect()
}

#[test]
fn a_group_splits_partitions_and_takes_over_when_a_member_leaves() {
    let dir = test_dir();
    let broker = start_broker(dir.path(), 6);
    produce(&broker.addr, "orders", 0, 600);
    // Auto-commit of explicitly stored offsets: librdkafka's default
    // stores an offset for every message its queue hands out, including
    // prefetched ones drained at close, which the test never saw.
    let manual_store = [("enable.auto.offset.store", "false")];
    let (a, b, c) = (
        member(&broker.addr, "billing", &manual_store),
        member(&broker.addr, "billing", &manual_store),
        member(&broker.addr, "billing", &manual_store),
    );
    for m in [&a, &b, &c] {
        m.subscribe(&["orders"]).expect("subscribe");
    }
    let mut seen = HashSet::new();
    poll_until(
        &[&a, &b, &c],
        &mut seen,
        "three members to share 6 partitions",
        |_| split_exactly(&[&a, &b, &c], 6),
    );

    // The group as the admin API shows it.
    let groups = a
        .fetch_group_list(Some("billing"), Duration::from_secs(10))
        .expect("group list");
    let g = groups
        .groups()
        .iter()
        .find(|g| g.name() == "billing")
        .expect("billing listed");
    assert_eq!(g.state(), "Stable");
    assert_eq!(g.protocol_type(), "consumer");
    assert_eq!(g.members().len(), 3);
    assert!(g
        .members()
        .iter()
        .all(|m| !m.assignment().unwrap_or_default().is_empty()));
    assert!(
        g.members().iter().all(|m| m.client_host() == "/127.0.0.1"),
        "client hosts"
    );

    // One member leaves (LeaveGroup on close): the other two take its
    // partitions, and everything produced is consumed at least once.
    drop(c);
    produce(&broker.addr, "orders", 600, 300);
    poll_until(
        &[&a, &b],
        &mut seen,
        "two members to share all 6 partitions",
        |_| split_exactly(&[&a, &b], 6),
    );
    poll_until(&[&a, &b], &mut seen, "all 900 messages", |s| s.len() >= 900);
    let per_partition: BTreeMap<i32, usize> = seen.iter().fold(BTreeMap::new(), |mut m, (p, _)| {
        *m.entry(*p).or_default() += 1;
        m
    });
    assert_eq!(per_partition.len(), 6, "{per_partition:?}");
}

#[test]
fn committed_offsets_survive_a_broker_crash() {
    let dir = test_dir();
    let mut broker = start_broker(dir.path(), 2);
    produce(&broker.addr, "ledger", 0, 100);
    let first = member(&broker.addr, "resume", &[("enable.auto.commit", "false")]);
    first.subscribe(&["ledger"]).expect("subscribe");
    let mut seen = HashSet::new();
    poll_until(&[&first], &mut seen, "60 messages", |s| s.len() >= 60);
    first
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    let positions: BTreeMap<i32, i64> = first
        .position()
        .expect("positions")
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect();
    assert!(!positions.is_empty());
    drop(first);

    broker.restart_after_kill();

    let second = member(&broker.addr, "resume", &[("enable.auto.commit", "false")]);
    let mut tpl = TopicPartitionList::new();
    for p in 0..2 {
        tpl.add_partition("ledger", p);
    }
    let committed = second
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    for e in committed.elements() {
        let expected = positions.get(&e.partition()).copied();
        match expected {
            Some(o) => assert_eq!(e.offset(), Offset::Offset(o), "partition {}", e.partition()),
            None => assert_eq!(e.offset(), Offset::Invalid, "partition {}", e.partition()),
        }
    }
    // A new member of the group starts exactly there (20 more messages so
    // that every partition has one at or after its committed offset).
    produce(&broker.addr, "ledger", 100, 20);
    second.subscribe(&["ledger"]).expect("subscribe");
    let mut first_seen: BTreeMap<i32, i64> = BTreeMap::new();
    let deadline = Instant::now() + TIMEOUT;
    while first_seen.len() < positions.len() {
        assert!(Instant::now() < deadline, "resumed only {first_seen:?}");
        if let Some(m) = second.poll(Duration::from_millis(50)) {
            let m = m.expect("a message");
            first_seen.entry(m.partition()).or_insert(m.offset());
        }
    }
    for (p, o) in &positions {
        assert_eq!(
            first_seen.get(p),
            Some(o),
            "partition {p} resumed elsewhere"
        );
    }
    // What was produced before the crash is not in the tail cache after
    // it: those fetches read the segment files (O_DIRECT, the default).
    drop(second);
    broker.stop();
    let log = broker.log_text();
    let cold: u64 = log
        .split("fetch_cold_bytes=")
        .last()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no fetch_cold_bytes in {log}"));
    assert!(cold > 0, "nothing was read from the segment files");
}

/// A `kcat -G` member; its stdout lines are "partition offset".
struct Kcat {
    child: Child,
    lines: mpsc::Receiver<(i32, i64)>,
}

impl Kcat {
    fn start(addr: &str, group: &str, topic: &str) -> Kcat {
        let mut child = Command::new("kcat")
            .args(["-b", addr, "-G", group, topic, "-q", "-u", "-f", "%p %o\\n"])
            .args([
                "-X",
                "auto.offset.reset=earliest",
                "-X",
                "session.timeout.ms=6000",
            ])
            .args(["-X", "heartbeat.interval.ms=500"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kcat");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let mut parts = line.split_whitespace();
                if let (Some(p), Some(o)) = (parts.next(), parts.next()) {
                    if let (Ok(p), Ok(o)) = (p.parse(), o.parse()) {
                        let _ = tx.send((p, o));
                    }
                }
            }
        });
        Kcat { child, lines }
    }

    fn partitions_seen(&self, into: &mut BTreeSet<i32>) {
        while let Ok((p, _)) = self.lines.try_recv() {
            into.insert(p);
        }
    }
}

impl Drop for Kcat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `f` holds, producing a round of messages every so often.
fn eventually(addr: &str, topic: &str, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    let mut round = 0;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        produce(addr, topic, 10_000 + round * 40, 40);
        round += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn kcat_members_split_partitions_and_a_killed_one_is_replaced() {
    let dir = test_dir();
    let broker = start_broker(dir.path(), 4);
    produce(&broker.addr, "demo", 0, 40);
    let one = Kcat::start(&broker.addr, "pair", "demo");
    let mut two = Kcat::start(&broker.addr, "pair", "demo");
    // Judged on the messages of the latest round only: before the second
    // member joins, the first one may hold every partition.
    eventually(&broker.addr, "demo", "both kcat members to consume", || {
        let (mut seen_one, mut seen_two) = (BTreeSet::new(), BTreeSet::new());
        one.partitions_seen(&mut seen_one);
        two.partitions_seen(&mut seen_two);
        !seen_one.is_empty()
            && !seen_two.is_empty()
            && seen_one.is_disjoint(&seen_two)
            && seen_one.len() + seen_two.len() == 4
    });
    // SIGKILL: no LeaveGroup; after the 6 s session timeout the survivor
    // gets every partition.
    let _ = two.child.kill();
    let _ = two.child.wait();
    let mut after = BTreeSet::new();
    eventually(
        &broker.addr,
        "demo",
        "the survivor to consume all 4 partitions",
        || {
            one.partitions_seen(&mut after);
            after.len() == 4
        },
    );
}

/// Polls until `done`, recording each consumer's assignment after every
/// poll round.
fn watch_assignments(
    consumers: &[&BaseConsumer],
    what: &str,
    history: &mut Vec<Vec<BTreeSet<i32>>>,
    mut done: impl FnMut(&[BTreeSet<i32>]) -> bool,
) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        for c in consumers {
            if let Some(m) = c.poll(Duration::from_millis(20)) {
                m.expect("a message");
            }
        }
        let now: Vec<BTreeSet<i32>> = consumers.iter().map(|c| assigned(c)).collect();
        let finished = done(&now);
        history.push(now);
        if finished {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            history.last()
        );
    }
}

#[test]
fn cooperative_sticky_moves_only_what_the_new_member_takes() {
    let dir = test_dir();
    let broker = start_broker(dir.path(), 6);
    produce(&broker.addr, "events", 0, 60);
    let coop = [("partition.assignment.strategy", "cooperative-sticky")];
    let (a, b) = (
        member(&broker.addr, "coop", &coop),
        member(&broker.addr, "coop", &coop),
    );
    a.subscribe(&["events"]).expect("subscribe");
    b.subscribe(&["events"]).expect("subscribe");
    let mut history = Vec::new();
    watch_assignments(
        &[&a, &b],
        "a and b to share 6 partitions",
        &mut history,
        |s| s.iter().all(|x| x.len() == 3),
    );
    let before = (assigned(&a), assigned(&b));

    let c = member(&broker.addr, "coop", &coop);
    c.subscribe(&["events"]).expect("subscribe");
    let mut during = Vec::new();
    watch_assignments(&[&a, &b, &c], "c to get its share", &mut during, |s| {
        s.iter().all(|x| x.len() == 2)
    });
    // Incremental: a and b only ever lost partitions (never all of them),
    // so they kept consuming the rest throughout.
    for round in &during {
        assert!(
            !round[0].is_empty() && round[0].is_subset(&before.0),
            "{during:?}"
        );
        assert!(
            !round[1].is_empty() && round[1].is_subset(&before.1),
            "{during:?}"
        );
    }
}

#[test]
fn a_static_member_restarting_within_its_session_gets_its_partitions_back() {
    let dir = test_dir();
    let broker = start_broker(dir.path(), 4);
    produce(&broker.addr, "static", 0, 40);
    let a = member(&broker.addr, "statics", &[("group.instance.id", "node-a")]);
    let b = member(&broker.addr, "statics", &[("group.instance.id", "node-b")]);
    a.subscribe(&["static"]).expect("subscribe");
    b.subscribe(&["static"]).expect("subscribe");
    let mut history = Vec::new();
    watch_assignments(
        &[&a, &b],
        "a and b to share 4 partitions",
        &mut history,
        |s| s.iter().all(|x| x.len() == 2),
    );
    let (mine, theirs) = (assigned(&a), assigned(&b));

    // a's process goes away (a static member sends no LeaveGroup) and
    // comes back as the same instance well within session.timeout.ms.
    drop(a);
    let a = member(&broker.addr, "statics", &[("group.instance.id", "node-a")]);
    a.subscribe(&["static"]).expect("subscribe");
    let mut during = Vec::new();
    watch_assignments(
        &[&a, &b],
        "a to get its partitions back",
        &mut during,
        |s| s[0] == mine,
    );
    assert!(
        during.iter().all(|round| round[1] == theirs),
        "b was rebalanced: {during:?}"
    );
    let groups = b
        .fetch_group_list(Some("statics"), Duration::from_secs(10))
        .expect("group list");
    assert_eq!(groups.groups()[0].members().len(), 2);
    assert_eq!(groups.groups()[0].state(), "Stable");
}

/// Total bytes of the `__consumer_offsets-*` segment files.
fn offsets_log_bytes(data: &Path) -> u64 {
    std::fs::read_dir(data)
        .expect("data dir")
        .flatten()
        .filter(|d| {
            d.file_name()
                .to_string_lossy()
                .starts_with("__consumer_offsets-")
        })
        .flat_map(|d| {
            std::fs::read_dir(d.path())
                .expect("partition dir")
                .flatten()
        })
        .filter(|f| f.path().extension().is_some_and(|e| e == "log"))
        .map(|f| f.metadata().map_or(0, |m| m.len()))
        .sum()
}

#[test]
fn the_offsets_log_stays_small_under_many_commits_and_survives_a_crash() {
    let dir = test_dir();
    let config = dir.path().join("strom.toml");
    std::fs::write(&config, "\"offsets.topic.segment.bytes\" = 4096\n").expect("config");
    let data = dir.path().join("data");
    let mut broker = Broker::start_with(
        &data,
        &["--shards", "2", "--config", config.to_str().expect("utf-8")],
    );
    produce(&broker.addr, "churn", 0, 10);
    let c = member(&broker.addr, "churner", &[("enable.auto.commit", "false")]);
    for n in 1..=400 {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("churn", 0, Offset::Offset(n))
            .expect("offset");
        c.commit(&tpl, CommitMode::Sync).expect("commit");
    }
    // 400 commits are ~44 KB of records; snapshots keep the log near one
    // 4 KiB segment plus the active one.
    let bytes = offsets_log_bytes(&data);
    assert!(bytes < 16 << 10, "offsets log holds {bytes} bytes");
    drop(c);

    broker.restart_after_kill();
    let c = member(&broker.addr, "churner", &[("enable.auto.commit", "false")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("churn", 0);
    let committed = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed");
    assert_eq!(committed.elements()[0].offset(), Offset::Offset(400));
}

#[test]
fn groups_are_deleted_only_when_empty_and_deleted_topics_lose_their_offsets() {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;

    let dir = test_dir();
    let broker = start_broker(dir.path(), 2);
    produce(&broker.addr, "doomed", 0, 20);
    produce(&broker.addr, "kept", 0, 20);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .expect("admin");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let delete = |group: &str| {
        futures_lite::future::block_on(admin.delete_groups(&[group], &opts))
            .expect("delete_groups")
            .remove(0)
    };

    let c = member(&broker.addr, "cleanup", &[("enable.auto.commit", "false")]);
    c.subscribe(&["doomed", "kept"]).expect("subscribe");
    let mut seen = HashSet::new();
    poll_until(
        &[&c],
        &mut seen,
        "the member to own all 4 partitions",
        |_| c.assignment().map_or(0, |a| a.count()) == 4,
    );
    let mut tpl = TopicPartitionList::new();
    for t in ["doomed", "kept"] {
        for p in 0..2 {
            tpl.add_partition_offset(t, p, Offset::Offset(5))
                .expect("offset");
        }
    }
    c.commit(&tpl, CommitMode::Sync)
        .expect("commit as a member");
    assert_eq!(
        delete("cleanup"),
        Err(("cleanup".to_string(), RDKafkaErrorCode::NonEmptyGroup))
    );
    assert_eq!(
        delete("never-was"),
        Err(("never-was".to_string(), RDKafkaErrorCode::GroupIdNotFound))
    );

    // Deleting a topic drops the group's offsets for it, not the others.
    let committed = |c: &BaseConsumer| {
        let mut tpl = TopicPartitionList::new();
        for t in ["doomed", "kept"] {
            for p in 0..2 {
                tpl.add_partition(t, p);
            }
        }
        c.committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed")
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.offset()))
            .collect::<Vec<_>>()
    };
    assert!(committed(&c)
        .iter()
        .all(|(_, o)| matches!(o, Offset::Offset(_))));
    drop(c);
    futures_lite::future::block_on(admin.delete_topics(&["doomed"], &opts))
        .expect("delete_topics")
        .remove(0)
        .expect("doomed deleted");
    let probe = member(&broker.addr, "cleanup", &[("enable.auto.commit", "false")]);
    let after = committed(&probe);
    for (topic, offset) in &after {
        match topic.as_str() {
            "doomed" => assert_eq!(*offset, Offset::Invalid, "{after:?}"),
            _ => assert!(matches!(offset, Offset::Offset(_)), "{after:?}"),
        }
    }
    drop(probe);

    // The group is empty now (its member left): it can go, with its offsets.
    assert_eq!(delete("cleanup"), Ok("cleanup".to_string()));
    let probe = member(&broker.addr, "cleanup", &[("enable.auto.commit", "false")]);
    assert!(committed(&probe).iter().all(|(_, o)| *o == Offset::Invalid));
}

#[test]
fn offsets_of_an_empty_group_expire_after_the_retention() {
    let dir = test_dir();
    let config = dir.path().join("strom.toml");
    // Kafka's names; 0 minutes so the test need not wait for one.
    std::fs::write(
        &config,
        "\"offsets.retention.minutes\" = 0\n\"offsets.retention.check.interval.ms\" = 100\n",
    )
    .expect("config");
    let broker = Broker::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("utf-8")],
    );
    produce(&broker.addr, "brief", 0, 5);
    let c = member(
        &broker.addr,
        "forgetful",
        &[("enable.auto.commit", "false")],
    );
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("brief", 0, Offset::Offset(3))
        .expect("offset");
    c.commit(&tpl, CommitMode::Sync).expect("commit");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut ask = TopicPartitionList::new();
        ask.add_partition("brief", 0);
        let got = c
            .committed_offsets(ask, Duration::from_secs(10))
            .expect("committed");
        if got.elements()[0].offset() == Offset::Invalid {
            break;
        }
        assert!(Instant::now() < deadline, "offset never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        broker.log_text().contains("offsets expired"),
        "{}",
        broker.log_text()
    );
}

#[test]
fn offsets_topic_partition_count_cannot_change_under_existing_groups() {
    let dir = test_dir();
    let data = dir.path().join("data");
    let mut broker = Broker::start(&data);
    broker.stop();
    let config = dir.path().join("strom.toml");
    std::fs::write(&config, "\"offsets.topic.num.partitions\" = 16\n").expect("config");
    let stderr = refused_start(&data, &["--config", config.to_str().expect("utf-8")]);
    assert!(stderr.contains("cannot change"), "{stderr}");
}
