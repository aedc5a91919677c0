//! What librdkafka sees when the disk fails under it, against the real
//! binary with storage failures injected (`--fail-io`, `log::fault`): a
//! failed write or fdatasync is never acknowledged (KAFKA_STORAGE_ERROR),
//! its partition goes offline with a log line naming it and the errno,
//! other partitions keep working, and after a restart every acknowledged
//! message is there.

mod common;

use common::broker::Broker;
use common::kafka::{producer, Deliveries};
use common::test_dir;
use futures_lite::future::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn create(addr: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .expect("admin");
    let new: Vec<_> = (topics.iter())
        .map(|(name, n)| NewTopic::new(name, *n, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    for r in block_on(admin.create_topics(&new, &opts)).expect("create_topics") {
        r.expect("created");
    }
}

/// A producer that reports the broker's first answer (no retries), so a
/// storage error is seen as such rather than as a timeout.
fn strict_producer(addr: &str) -> BaseProducer<Deliveries> {
    producer(
        addr,
        &[
            ("linger.ms", "0"),
            ("retries", "0"),
            ("message.timeout.ms", "10000"),
        ],
    )
}

/// Sends one message and waits for its report: Ok(offset) or the error.
fn send_one(
    p: &BaseProducer<Deliveries>,
    topic: &str,
    partition: i32,
    value: &str,
) -> Result<i64, String> {
    let record = BaseRecord::<[u8], [u8]>::to(topic)
        .partition(partition)
        .payload(value.as_bytes());
    p.send(record).map_err(|(e, _)| e.to_string())?;
    p.flush(Duration::from_secs(15)).expect("flush");
    let report = p
        .context()
        .0
        .lock()
        .unwrap()
        .pop()
        .expect("a delivery report");
    report.map(|(_, offset)| offset)
}

/// Every value in `topic`'s `partitions`, read from the start until
/// `want` are all seen (or 30 s pass).
fn values_in(
    addr: &str,
    topic: &str,
    partitions: i32,
    want: &BTreeSet<String>,
) -> BTreeSet<String> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "disk-faults")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !want.is_subset(&seen) && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            seen.insert(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    seen
}

fn is_storage_error(e: &str) -> bool {
    e.contains("KafkaStorageError") || e.contains("Disk error")
}

#[test]
fn a_failed_write_takes_only_its_partition_offline_and_loses_nothing_acknowledged() {
    let dir = test_dir();
    let data = dir.path().join("data");
    let broker = Broker::start_with(&data, &["--fail-io", "write:doomed-0:after=20"]);
    create(&broker.addr, &[("doomed", 1), ("healthy", 1)]);
    let p = strict_producer(&broker.addr);
    let (mut doomed_acked, mut healthy_acked) = (BTreeSet::new(), BTreeSet::new());
    let mut refused = None;
    for i in 0..60 {
        let value = format!("d{i}");
        match send_one(&p, "doomed", 0, &value) {
            Ok(_) => assert!(doomed_acked.insert(value)),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
        let value = format!("h{i}");
        send_one(&p, "healthy", 0, &value).expect("healthy is acknowledged");
        healthy_acked.insert(value);
    }
    let refused = refused.expect("a write failed");
    assert!(is_storage_error(&refused), "{refused}");
    assert!(
        doomed_acked.len() >= 5,
        "{} acknowledged before the failure",
        doomed_acked.len()
    );
    // Offline: refused from now on, while the other partition is served.
    for i in 0..5 {
        let e = send_one(&p, "doomed", 0, &format!("late{i}")).expect_err("offline");
        assert!(is_storage_error(&e), "{e}");
        let value = format!("after{i}");
        send_one(&p, "healthy", 0, &value).expect("healthy is still served");
        healthy_acked.insert(value);
    }
    let log = broker.log_text();
    let line = (log.lines())
        .find(|l| l.contains("log offline") && l.contains("doomed-0"))
        .unwrap_or_else(|| panic!("no offline line for doomed-0: {log}"));
    assert!(line.contains("errno=5"), "{line}");
    drop((p, broker));

    // Restarted without the fault, recovery re-validates the partition.
    let broker = Broker::start(&data);
    let doomed = values_in(&broker.addr, "doomed", 1, &doomed_acked);
    assert!(
        doomed_acked.is_subset(&doomed),
        "lost: {:?}",
        doomed_acked.difference(&doomed)
    );
    let healthy = values_in(&broker.addr, "healthy", 1, &healthy_acked);
    assert!(
        healthy_acked.is_subset(&healthy),
        "lost: {:?}",
        healthy_acked.difference(&healthy)
    );
    let p = strict_producer(&broker.addr);
    send_one(&p, "doomed", 0, "again").expect("the recovered partition takes writes");
}

#[test]
fn a_failed_fdatasync_is_never_acknowledged_and_its_partitions_go_offline() {
    // The fdatasync that fails is the one the connection's shard makes for
    // the owners of a request's partitions (`Flushed::AwaitsDeviceFlush`),
    // on the data directory's probe file; partitions spread over both
    // shards.
    let dir = test_dir();
    let data = dir.path().join("data");
    let broker = Broker::start_with(
        &data,
        &[
            "--shards",
            "2",
            "--fail-io",
            "fdatasync:.dma-probe:after=30",
        ],
    );
    create(&broker.addr, &[("synced", 4)]);
    let p = strict_producer(&broker.addr);
    let mut acked = BTreeSet::new();
    let mut failed_at = None;
    for i in 0..200 {
        let value = format!("s{i}");
        match send_one(&p, "synced", i % 4, &value) {
            Ok(_) => assert!(acked.insert(value)),
            Err(e) => {
                assert!(is_storage_error(&e), "{e}");
                failed_at = Some(i % 4);
                break;
            }
        }
    }
    let failed = failed_at.expect("an fdatasync failed");
    assert!(
        acked.len() >= 20,
        "{} acknowledged before the failure",
        acked.len()
    );
    let e = send_one(&p, "synced", failed, "late").expect_err("its partition is offline");
    assert!(is_storage_error(&e), "{e}");
    let log = broker.log_text();
    let offline = (log.lines())
        .find(|l| l.contains("log offline") && l.contains(&format!("synced-{failed}")))
        .unwrap_or_else(|| panic!("no offline line for synced-{failed}: {log}"));
    // Taken offline by the caller's covering fdatasync, with its errno.
    assert!(
        offline.contains("for produce") && offline.contains("errno=5"),
        "{offline}"
    );
    drop((p, broker));

    let broker = Broker::start(&data);
    let got = values_in(&broker.addr, "synced", 4, &acked);
    assert!(acked.is_subset(&got), "lost: {:?}", acked.difference(&got));
    assert!(!got.contains("late"), "an offline partition took a write");
}
