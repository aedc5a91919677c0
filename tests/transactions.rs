//! Transactions, as Kafka serves them, with librdkafka against the real
//! binary (two shards, so transactional ids, groups and partitions sit on
//! different shards):
//! - committed transactions over three partitions are read by a
//!   read_committed consumer, aborted ones are not (a read_uncommitted one
//!   sees both), in send order per partition; an open transaction holds
//!   read_committed consumers back until it commits;
//! - a second producer with the same transactional id fences the first:
//!   the first one's open transaction is aborted and it cannot commit;
//! - a transaction open past `transaction.timeout.ms` is aborted by the
//!   coordinator and its producer fenced;
//! - consume-transform-produce with offsets sent to the transaction: each
//!   input message is in the output exactly once and the group's committed
//!   offset moves only with committed transactions, also after kill -9
//!   (a transaction left open by the crash is aborted when its producer
//!   comes back).

mod common;

use common::broker::Broker;
use common::test_dir;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

fn start(dir: &std::path::Path, settings: &str) -> Broker {
    let config = dir.join("strom.toml");
    std::fs::write(&config, settings).unwrap();
    let config = config.to_string_lossy().to_string();
    Broker::start_with(
        &dir.join("data"),
        &[
            "--shards",
            "2",
            "--num-partitions",
            "3",
            "--config",
            &config,
        ],
    )
}

fn producer(addr: &str, transactional_id: &str, extra: &[(&str, &str)]) -> BaseProducer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr)
        .set("transactional.id", transactional_id)
        .set("linger.ms", "1")
        .set("message.timeout.ms", "20000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("transactional producer")
}

fn send(p: &BaseProducer, topic: &str, partition: i32, value: &str) {
    let record = BaseRecord::<(), str>::to(topic)
        .partition(partition)
        .payload(value);
    p.send(record).map_err(|(e, _)| e).expect("send");
    p.poll(Duration::ZERO);
}

fn consumer(addr: &str, isolation: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", format!("reader-{isolation}"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer")
}

fn assign_from_start(c: &BaseConsumer, topic: &str, partitions: i32) {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).expect("assign");
}

/// Polls until `want` messages arrived or `wait` passed (then polls a
/// little more, so extra messages would be seen); values by partition.
fn read(c: &BaseConsumer, want: usize, wait: Duration) -> BTreeMap<i32, Vec<String>> {
    let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let deadline = Instant::now() + wait;
    let mut count = 0;
    while Instant::now() < deadline {
        if count >= want {
            // Anything more would show up within a few polls.
            for _ in 0..5 {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                    let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                    out.entry(m.partition()).or_default().push(v);
                }
            }
            break;
        }
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                out.entry(m.partition()).or_default().push(v);
                count += 1;
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    }
    out
}

fn values(tag: &str, partition: i32, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag}-{partition}-{i}")).collect()
}

/// One transaction of `n` messages per partition, tagged.
fn transaction(p: &BaseProducer, topic: &str, tag: &str, n: usize) {
    p.begin_transaction().expect("begin");
    for i in 0..n {
        for partition in 0..3 {
            send(p, topic, partition, &format!("{tag}-{partition}-{i}"));
        }
    }
}

#[test]
fn read_committed_sees_committed_transactions_only_and_waits_for_open_ones() {
    let dir = test_dir();
    let broker = start(dir.path(), "");
    let p = producer(&broker.addr, "writer", &[]);
    p.init_transactions(T).expect("init transactions");
    transaction(&p, "txn", "c1", 10);
    p.commit_transaction(T).expect("commit");
    transaction(&p, "txn", "a", 10);
    p.flush(T).expect("flush");
    p.abort_transaction(T).expect("abort");
    transaction(&p, "txn", "c2", 10);
    p.commit_transaction(T).expect("commit");

    let committed = consumer(&broker.addr, "read_committed");
    assign_from_start(&committed, "txn", 3);
    let seen = read(&committed, 60, T);
    for partition in 0..3 {
        let mut want = values("c1", partition, 10);
        want.extend(values("c2", partition, 10));
        assert_eq!(seen.get(&partition), Some(&want), "partition {partition}");
    }
    let uncommitted = consumer(&broker.addr, "read_uncommitted");
    assign_from_start(&uncommitted, "txn", 3);
    let all = read(&uncommitted, 90, T);
    for partition in 0..3 {
        let mut want = values("c1", partition, 10);
        want.extend(values("a", partition, 10));
        want.extend(values("c2", partition, 10));
        assert_eq!(all.get(&partition), Some(&want), "partition {partition}");
    }

    // An open transaction holds read_committed consumers at its start...
    transaction(&p, "txn", "open", 5);
    p.flush(T).expect("flush");
    let more = read(&uncommitted, 15, T);
    assert_eq!(more.values().map(Vec::len).sum::<usize>(), 15);
    let held = read(&committed, 1, Duration::from_secs(2));
    assert!(held.is_empty(), "read past an open transaction: {held:?}");
    // ...until it commits, which wakes them.
    p.commit_transaction(T).expect("commit");
    let released = read(&committed, 15, T);
    for partition in 0..3 {
        assert_eq!(
            released.get(&partition),
            Some(&values("open", partition, 5))
        );
    }
}

#[test]
fn a_second_producer_with_the_same_id_fences_the_first_and_aborts_its_transaction() {
    let dir = test_dir();
    let broker = start(dir.path(), "");
    let first = producer(&broker.addr, "shared", &[]);
    first.init_transactions(T).expect("init first");
    transaction(&first, "fence", "zombie", 5);
    first.flush(T).expect("flush");

    let second = producer(&broker.addr, "shared", &[]);
    second.init_transactions(T).expect("init second");
    let refused = first.commit_transaction(T);
    assert!(refused.is_err(), "a fenced producer committed");
    transaction(&second, "fence", "live", 5);
    second.commit_transaction(T).expect("commit second");

    let c = consumer(&broker.addr, "read_committed");
    assign_from_start(&c, "fence", 3);
    let seen = read(&c, 15, T);
    for partition in 0..3 {
        assert_eq!(seen.get(&partition), Some(&values("live", partition, 5)));
    }
}

#[test]
fn a_transaction_open_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let dir = test_dir();
    let broker = start(
        dir.path(),
        "\"transaction.abort.timed.out.transaction.cleanup.interval.ms\" = 200\n",
    );
    let slow = producer(
        &broker.addr,
        "slow",
        &[
            ("transaction.timeout.ms", "1000"),
            ("message.timeout.ms", "1000"),
        ],
    );
    slow.init_transactions(T).expect("init");
    transaction(&slow, "late", "late", 5);
    slow.flush(T).expect("flush");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        slow.commit_transaction(T).is_err(),
        "a timed-out transaction committed"
    );

    // The partitions are stable again: what is produced after is read.
    let plain: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .expect("producer");
    for partition in 0..3 {
        send(&plain, "late", partition, &format!("after-{partition}"));
    }
    plain.flush(T).expect("flush");
    let c = consumer(&broker.addr, "read_committed");
    assign_from_start(&c, "late", 3);
    let seen = read(&c, 3, T);
    for partition in 0..3 {
        assert_eq!(
            seen.get(&partition),
            Some(&vec![format!("after-{partition}")])
        );
    }
}

/// A copier's state left behind: its producer with a transaction open
/// (output produced, offsets sent, not committed) and its consumer.
type OpenCopier = (BaseProducer, BaseConsumer);

/// Copies `input` to `output` in transactions of up to 20 messages, the
/// consumed offsets committed in each; `abort_first` aborts one batch
/// first (it is then consumed again). With `leave_open`, after `want` it
/// copies one more batch in a transaction it leaves open and hands back.
/// Returns how many it copied in committed transactions.
fn copy_exactly_once(
    addr: &str,
    want: usize,
    abort_first: bool,
    leave_open: bool,
) -> (usize, Option<OpenCopier>) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "copier")
        // A member the crash left in the group is dropped this soon.
        .set("session.timeout.ms", "6000")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    c.subscribe(&["input"]).expect("subscribe");
    let p = producer(addr, "copier-out", &[]);
    p.init_transactions(T).expect("init");
    let mut copied = 0;
    let mut aborted = !abort_first;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let last = copied >= want;
        if last && !leave_open {
            break;
        }
        let mut batch = Vec::new();
        let limit = if last { 20 } else { (want - copied).min(20) };
        while batch.len() < limit {
            match c.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => batch.push((
                    m.partition(),
                    m.offset(),
                    String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string(),
                )),
                Some(Err(e)) => panic!("consume: {e}"),
                None => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        p.begin_transaction().expect("begin");
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for (partition, offset, value) in &batch {
            send(&p, "output", *partition, &format!("copy-{value}"));
            next.insert(*partition, offset + 1);
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, offset) in &next {
            offsets
                .add_partition_offset("input", *partition, Offset::Offset(*offset))
                .unwrap();
        }
        let metadata = c.group_metadata().expect("group metadata");
        p.send_offsets_to_transaction(&offsets, &metadata, T)
            .expect("send offsets");
        if last {
            p.flush(T).expect("flush");
            return (copied, Some((p, c)));
        }
        if !aborted {
            aborted = true;
            p.flush(T).expect("flush");
            p.abort_transaction(T).expect("abort");
            // Consume the aborted batch again, from the committed offsets.
            let committed = c.committed(T).expect("committed");
            for e in committed.elements() {
                let to = match e.offset() {
                    Offset::Offset(o) => Offset::Offset(o),
                    _ => Offset::Beginning,
                };
                c.seek(e.topic(), e.partition(), to, T).expect("seek");
            }
            for partition in next.keys() {
                if committed.find_partition("input", *partition).is_none() {
                    c.seek("input", *partition, Offset::Beginning, T)
                        .expect("seek");
                }
            }
            continue;
        }
        p.commit_transaction(T).expect("commit");
        copied += batch.len();
    }
    assert!(!leave_open, "no batch left to leave open");
    (copied, None)
}

#[test]
fn consume_transform_produce_copies_each_message_once_across_kill_9() {
    let dir = test_dir();
    let mut broker = start(dir.path(), "\"group.initial.rebalance.delay.ms\" = 0\n");
    let plain: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let mut input: Vec<String> = Vec::new();
    for i in 0..60 {
        let partition = i % 3;
        let v = format!("in-{partition}-{i}");
        send(&plain, "input", partition, &v);
        input.push(v);
    }
    plain.flush(T).expect("flush");

    // The copier is killed mid-stream: 40 copied in committed
    // transactions, the next batch's output and offsets in one left open.
    let (copied, open) = copy_exactly_once(&broker.addr, 40, true, true);
    assert_eq!(copied, 40);
    broker.restart_after_kill();
    drop(open);

    // Its next incarnation fences and aborts the open transaction (its
    // output is never read, its offsets never count) and goes on from the
    // offsets the last commit left.
    for i in 60..75 {
        let partition = i % 3;
        let v = format!("in-{partition}-{i}");
        send(&plain, "input", partition, &v);
        input.push(v);
    }
    plain.flush(T).expect("flush");
    assert_eq!(copy_exactly_once(&broker.addr, 35, false, false).0, 35);
    let log = broker.log_text();
    assert!(
        log.contains("a new producer fences the open transaction"),
        "the crashed transaction was not fenced: {log}"
    );

    let c = consumer(&broker.addr, "read_committed");
    assign_from_start(&c, "output", 3);
    let seen = read(&c, 75, T);
    let mut copies: Vec<String> = seen.into_values().flatten().collect();
    copies.sort();
    let mut want: Vec<String> = input.iter().map(|v| format!("copy-{v}")).collect();
    want.sort();
    assert_eq!(copies, want);

    // The group's committed input offsets are the input's ends.
    let group: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", "copier")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for partition in 0..3 {
        tpl.add_partition("input", partition);
    }
    let committed = group.committed_offsets(tpl, T).expect("committed offsets");
    for partition in 0..3 {
        let (_, end) = group
            .fetch_watermarks("input", partition, T)
            .expect("watermarks");
        let at = committed
            .find_partition("input", partition)
            .map(|e| e.offset());
        assert_eq!(at, Some(Offset::Offset(end)), "partition {partition}");
    }
}

#[test]
fn transaction_state_survives_compaction_and_kill_9() {
    let dir = test_dir();
    // Small segments: the transaction log is compacted many times over.
    let mut broker = start(
        dir.path(),
        "\"transaction.state.log.segment.bytes\" = 4096\n",
    );
    let p = producer(&broker.addr, "many", &[]);
    p.init_transactions(T).expect("init");
    for round in 0..60 {
        transaction(&p, "many", &format!("r{round}"), 1);
        p.commit_transaction(T).expect("commit");
    }
    let log = broker.log_text();
    assert!(
        log.contains("state log compacted") && log.contains("__transaction_state"),
        "the transaction log was never compacted: {log}"
    );
    // Kill -9 with a transaction open: after the restart its producer's
    // next incarnation aborts it, and every committed one is read.
    transaction(&p, "many", "open", 1);
    p.flush(T).expect("flush");
    broker.restart_after_kill();
    drop(p);
    let again = producer(&broker.addr, "many", &[]);
    again.init_transactions(T).expect("init after restart");
    transaction(&again, "many", "after", 1);
    again.commit_transaction(T).expect("commit after restart");

    let c = consumer(&broker.addr, "read_committed");
    assign_from_start(&c, "many", 3);
    let seen = read(&c, 61 * 3, T);
    for partition in 0..3 {
        let mut want: Vec<String> = (0..60).map(|r| format!("r{r}-{partition}-0")).collect();
        want.push(format!("after-{partition}-0"));
        assert_eq!(seen.get(&partition), Some(&want), "partition {partition}");
    }
}
