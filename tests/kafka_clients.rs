//! Real Kafka clients (librdkafka through the `rdkafka` crate) against the
//! real `strom` binary: topic creation, produce with acks=all, consume back,
//! seeks, ListOffsets, large messages, compression, crash safety.

mod common;

use common::broker::Broker;
use common::kafka::{producer, Deliveries};
use common::test_dir;
use futures_lite::future::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

fn consumer(addr: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        // rust-rdkafka wants a group id even for assign(); no group
        // coordination is used (offsets are never committed).
        .set("group.id", "strom-tests")
        .set("enable.auto.commit", "false")
        .set("fetch.message.max.bytes", "4194304")
        .create()
        .expect("consumer")
}

fn create_topic(addr: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .expect("admin");
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = block_on(admin.create_topics(&[topic], &opts)).expect("create_topics");
    for r in results {
        r.expect("topic created");
    }
}

/// Sends every record, polling while the queue is full, then waits for all
/// delivery reports and asserts none failed. Returns (partition, offset) per
/// message in send order of the reports.
fn send_all<'a>(
    p: &BaseProducer<Deliveries>,
    records: impl IntoIterator<Item = BaseRecord<'a, [u8], [u8]>>,
) -> Vec<(i32, i64)> {
    let mut sent = 0;
    for mut record in records {
        loop {
            match p.send(record) {
                Ok(()) => break,
                Err((e, r)) => {
                    assert!(
                        matches!(
                            e,
                            rdkafka::error::KafkaError::MessageProduction(
                                rdkafka::types::RDKafkaErrorCode::QueueFull
                            )
                        ),
                        "send failed: {e}"
                    );
                    record = r;
                    p.poll(Duration::from_millis(10));
                }
            }
        }
        sent += 1;
    }
    p.flush(TIMEOUT).expect("flush");
    let reports = std::mem::take(&mut *p.context().0.lock().unwrap());
    assert_eq!(reports.len(), sent, "every message gets a delivery report");
    reports.into_iter().map(|r| r.expect("delivered")).collect()
}

/// Polls until `count` messages arrived or the deadline passes.
fn consume(c: &BaseConsumer, count: usize) -> Vec<rdkafka::message::OwnedMessage> {
    let deadline = Instant::now() + TIMEOUT;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {count} before the deadline",
            out.len()
        );
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(m.detach()),
            // librdkafka reports transient connection states through poll;
            // only the deadline above decides failure.
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {}
        }
    }
    out
}

fn assign_all(c: &BaseConsumer, topic: &str, partitions: i32, offset: Offset) {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, offset).expect("tpl");
    }
    c.assign(&tpl).expect("assign");
}

#[test]
fn keyed_messages_round_trip_with_order_keys_headers_and_timestamps() {
    // Proves the core user story: 100,000 keyed acks=all messages on a
    // 6-partition topic come back complete, per-partition in order, each key
    // always in one partition, with keys, values, headers, timestamps intact.
    // Two shards: partitions live on both, so produce and fetch cross shards.
    let dir = test_dir();
    let broker = Broker::start_with(&dir.path().join("data"), &["--shards", "2"]);
    assert!(
        broker.log_text().contains("shards=2"),
        "{}",
        broker.log_text()
    );
    create_topic(&broker.addr, "orders", 6, &[]);
    let p = producer(&broker.addr, &[]);
    let n = 100_000usize;
    let base_ts = 1_700_000_000_000i64;
    let payloads: Vec<(String, String)> = (0..n)
        .map(|i| (format!("key-{}", i % 97), format!("value-{i:08}")))
        .collect();
    let records = payloads.iter().enumerate().map(|(i, (k, v))| {
        BaseRecord::to("orders")
            .key(k.as_bytes())
            .payload(v.as_bytes())
            .timestamp(base_ts + i as i64)
            .headers(OwnedHeaders::new().insert(Header {
                key: "seq",
                value: Some(&(i as u64).to_be_bytes()),
            }))
    });
    let acks = send_all(&p, records);
    assert_eq!(acks.len(), n);

    let c = consumer(&broker.addr);
    assign_all(&c, "orders", 6, Offset::Beginning);
    let got = consume(&c, n);
    let mut key_partition: HashMap<Vec<u8>, i32> = HashMap::new();
    let mut last_seq: HashMap<i32, (i64, u64)> = HashMap::new();
    let mut seen = vec![false; n];
    for m in &got {
        let key = m.key().expect("key").to_vec();
        let part = *key_partition.entry(key.clone()).or_insert(m.partition());
        assert_eq!(part, m.partition(), "a key moved partitions");
        let h = m.headers().expect("headers").get(0);
        assert_eq!(h.key, "seq");
        let seq = u64::from_be_bytes(h.value.expect("value").try_into().expect("8 bytes"));
        let (k, v) = &payloads[seq as usize];
        assert_eq!(m.key(), Some(k.as_bytes()));
        assert_eq!(m.payload(), Some(v.as_bytes()));
        assert_eq!(m.timestamp().to_millis(), Some(base_ts + seq as i64));
        if let Some(&(off, prev)) = last_seq.get(&m.partition()) {
            assert_eq!(m.offset(), off + 1, "offsets are dense per partition");
            assert!(seq > prev, "per-partition order");
        }
        last_seq.insert(m.partition(), (m.offset(), seq));
        assert!(!seen[seq as usize], "duplicate {seq}");
        seen[seq as usize] = true;
    }
    assert!(seen.iter().all(|&s| s));
    assert!(
        key_partition
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1
    );
}

#[test]
fn seek_list_offsets_and_lookup_by_time() {
    // Proves seeking to an offset, and ListOffsets earliest / latest / by
    // timestamp as librdkafka uses them (watermarks, offsets_for_times).
    let dir = test_dir();
    let broker = Broker::start(&dir.path().join("data"));
    create_topic(&broker.addr, "seek", 1, &[]);
    let p = producer(&broker.addr, &[("linger.ms", "0")]);
    let base = 1_600_000_000_000i64;
    let values: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    send_all(
        &p,
        values.iter().enumerate().map(|(i, v)| {
            BaseRecord::to("seek")
                .payload(v.as_bytes())
                .key(&b""[..])
                .timestamp(base + 1000 * i as i64)
        }),
    );
    let c = consumer(&broker.addr);
    assert_eq!(c.fetch_watermarks("seek", 0, TIMEOUT).unwrap(), (0, 100));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("seek", 0, Offset::Offset(base + 41_500))
        .unwrap();
    let found = c.offsets_for_times(tpl, TIMEOUT).unwrap();
    assert_eq!(
        found.find_partition("seek", 0).unwrap().offset(),
        Offset::Offset(42)
    );
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("seek", 0, Offset::Offset(base + 1_000_000))
        .unwrap();
    let found = c.offsets_for_times(tpl, TIMEOUT).unwrap();
    assert_eq!(
        found.find_partition("seek", 0).unwrap().offset(),
        Offset::End
    );

    assign_all(&c, "seek", 1, Offset::Offset(73));
    let got = consume(&c, 27);
    assert_eq!(got[0].offset(), 73);
    assert_eq!(got[0].payload(), Some(&b"m73"[..]));
    assert_eq!(got[26].offset(), 99);
}

#[test]
fn a_one_mebibyte_message_and_every_compression_codec_round_trip() {
    // Proves large messages (with the topic's max.message.bytes raised) and
    // gzip / snappy / lz4 / zstd batches round-trip, stored compressed as
    // the producer sent them.
    let dir = test_dir();
    let data = dir.path().join("data");
    let broker = Broker::start(&data);
    create_topic(&broker.addr, "big", 1, &[("max.message.bytes", "2097152")]);
    let p = producer(&broker.addr, &[("message.max.bytes", "2097152")]);
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 % 251) as u8).collect();
    send_all(&p, [BaseRecord::to("big").payload(&big[..]).key(&b"k"[..])]);
    let c = consumer(&broker.addr);
    assign_all(&c, "big", 1, Offset::Beginning);
    assert_eq!(consume(&c, 1)[0].payload(), Some(&big[..]));

    for (codec, id) in [("gzip", 1u8), ("snappy", 2), ("lz4", 3), ("zstd", 4)] {
        let topic = format!("comp-{codec}");
        create_topic(&broker.addr, &topic, 1, &[]);
        let p = producer(
            &broker.addr,
            &[("compression.type", codec), ("linger.ms", "50")],
        );
        let values: Vec<String> = (0..500)
            .map(|i| format!("{codec} record {i} {}", "x".repeat(i % 50)))
            .collect();
        send_all(
            &p,
            values
                .iter()
                .map(|v| BaseRecord::to(&topic).payload(v.as_bytes()).key(&b""[..])),
        );
        let c = consumer(&broker.addr);
        assign_all(&c, &topic, 1, Offset::Beginning);
        let got = consume(&c, 500);
        for (m, v) in got.iter().zip(&values) {
            assert_eq!(m.payload(), Some(v.as_bytes()), "{codec}");
        }
        // librdkafka sends a batch uncompressed when compression would not
        // shrink it; the multi-record batches must be stored compressed.
        let log = std::fs::read(data.join(format!("{topic}-0/00000000000000000000.log"))).unwrap();
        let mut log = bytes::Bytes::from(log);
        let mut codecs = Vec::new();
        while let Ok(batch) = strom::log::RecordBatch::split_first(&mut log) {
            batch.validate().expect("stored batch is valid");
            codecs.push(batch.compression());
        }
        assert!(codecs.contains(&id), "{codec}: stored codecs {codecs:?}");
    }
}

#[test]
fn acknowledged_messages_survive_sigkill_exactly_once() {
    // Proves: after acks=all acknowledgements, a SIGKILLed broker restarts
    // with every acknowledged message exactly once, in order. Cold reads
    // go through sendfile here (the consumer-group restart test covers the
    // default, O_DIRECT reads).
    let dir = test_dir();
    let config = dir.path().join("sendfile.toml");
    std::fs::write(&config, "\"log.cold.reads\" = \"sendfile\"\n").unwrap();
    let mut broker = Broker::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    create_topic(&broker.addr, "durable", 3, &[]);
    let p = producer(&broker.addr, &[]);
    let values: Vec<String> = (0..3000).map(|i| format!("v{i}")).collect();
    let acks = send_all(
        &p,
        values.iter().map(|v| {
            BaseRecord::to("durable")
                .payload(v.as_bytes())
                .key(v.as_bytes())
        }),
    );
    drop(p);
    broker.restart_after_kill();
    let c = consumer(&broker.addr);
    assign_all(&c, "durable", 3, Offset::Beginning);
    let got = consume(&c, acks.len());
    let mut payloads: Vec<&[u8]> = got.iter().map(|m| m.payload().unwrap()).collect();
    payloads.sort();
    payloads.dedup();
    assert_eq!(payloads.len(), values.len(), "no loss, no duplicates");
    for (part, offset) in acks {
        assert!(got
            .iter()
            .any(|m| m.partition() == part && m.offset() == offset));
    }
    // Nothing beyond what was acknowledged appears.
    assert!(c.poll(Duration::from_millis(500)).is_none());
    // After a restart the tail cache is empty: all of it went out through
    // the sendfile path, and the broker says so when it stops.
    broker.stop();
    let log = broker.log_text();
    let cold: u64 = log
        .split("fetch_cold_bytes=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no fetch_cold_bytes in {log}"));
    assert!(cold > 3000 * 5, "only {cold} bytes went through sendfile");
}

#[test]
fn long_polling_fetch_wakes_on_append_across_shards() {
    // Proves a consumer parked in a long poll (fetch.wait.max.ms 10 s) gets
    // a new message within moments, whichever shard owns its partition and
    // whichever shard its connection landed on.
    let dir = test_dir();
    let broker = Broker::start_with(&dir.path().join("data"), &["--shards", "2"]);
    create_topic(&broker.addr, "wake", 4, &[]);
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", "strom-tests")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10000")
        .create()
        .expect("consumer");
    // Explicit offsets (the topic is empty): every partition is in the very
    // first fetch, which then parks. (With Offset::End librdkafka resolves
    // offsets one by one and adds late partitions only to the next fetch.)
    assign_all(&c, "wake", 4, Offset::Offset(0));
    // Let the consumer reach its long poll.
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle {
        assert!(c
            .poll(Duration::from_millis(100))
            .is_none_or(|m| m.is_err()));
    }
    let p = producer(&broker.addr, &[("linger.ms", "0")]);
    for partition in 0..4 {
        let sent = Instant::now();
        send_all(
            &p,
            [BaseRecord::to("wake")
                .partition(partition)
                .payload(&b"ping"[..])
                .key(&b""[..])],
        );
        let got = consume(&c, 1);
        assert_eq!(got[0].partition(), partition);
        let waited = sent.elapsed();
        assert!(
            waited < Duration::from_secs(3),
            "partition {partition}: woke after {waited:?}"
        );
    }
}

#[test]
fn a_small_fetch_max_bytes_still_delivers_everything_in_order() {
    // Proves: the broker's `fetch.max.bytes` caps each fetch response (and
    // what cold reads hold in memory) yet never starves a consumer: every
    // fetch carries at least one whole batch, partitions on both shards
    // take turns, and every message arrives once, in order per partition.
    let dir = test_dir();
    let config = dir.path().join("small-fetch.toml");
    std::fs::write(&config, "\"fetch.max.bytes\" = 1024\n").unwrap();
    let mut broker = Broker::start_with(
        &dir.path().join("data"),
        &["--shards", "2", "--config", config.to_str().unwrap()],
    );
    create_topic(&broker.addr, "capped", 4, &[]);
    let p = producer(&broker.addr, &[("batch.size", "2048")]);
    let values: Vec<String> = (0..400).map(|i| format!("{i:0>300}")).collect();
    let acks = send_all(
        &p,
        values.iter().map(|v| {
            BaseRecord::to("capped")
                .payload(v.as_bytes())
                .key(v.as_bytes())
        }),
    );
    drop(p);
    // After a restart every read is cold (from the segment files).
    broker.restart_after_kill();
    let c = consumer(&broker.addr);
    assign_all(&c, "capped", 4, Offset::Beginning);
    let got = consume(&c, acks.len());
    let mut next: std::collections::HashMap<i32, i64> = Default::default();
    for m in &got {
        let expected = next.entry(m.partition()).or_insert(0);
        assert_eq!(m.offset(), *expected, "partition {}", m.partition());
        *expected += 1;
    }
    let mut payloads: Vec<&[u8]> = got.iter().map(|m| m.payload().unwrap()).collect();
    payloads.sort();
    payloads.dedup();
    assert_eq!(payloads.len(), values.len());
}

#[test]
fn a_consumer_catching_up_from_the_start_reads_every_byte_through_read_ahead() {
    // Proves: 40 MB read cold after a restart by librdkafka with its
    // default 1 MiB partition limit (so each partition is read in many
    // direct reads, each next range read ahead while the last is sent)
    // arrives complete, byte for byte and in order per partition; and a
    // second consumer at a different limit (no read-ahead match) and one
    // starting mid-log read the same bytes.
    let dir = test_dir();
    let mut broker = Broker::start_with(&dir.path().join("data"), &["--shards", "2"]);
    create_topic(&broker.addr, "catch-up", 2, &[]);
    let p = producer(
        &broker.addr,
        &[("batch.size", "131072"), ("linger.ms", "5")],
    );
    let value = |i: usize| -> Vec<u8> {
        let mut v = (i as u64).to_be_bytes().repeat(1280);
        v[5000] = (i % 251) as u8;
        v
    };
    let count = 4000;
    let values: Vec<Vec<u8>> = (0..count).map(value).collect();
    let acks = send_all(
        &p,
        values.iter().enumerate().map(|(i, v)| {
            BaseRecord::to("catch-up")
                .payload(&v[..])
                .partition((i % 2) as i32)
        }),
    );
    assert_eq!(acks.len(), count);
    drop(p);
    broker.restart_after_kill();
    let check = |c: &BaseConsumer, from: i64| {
        let expected = count - 2 * from as usize;
        let got = consume(c, expected);
        let mut next = [from, from];
        for m in &got {
            let part = m.partition() as usize;
            assert_eq!(m.offset(), next[part], "partition {part}");
            let i = next[part] as usize * 2 + part;
            assert!(m.payload() == Some(&values[i][..]), "message {i} differs");
            next[part] += 1;
        }
    };
    for (limit, from) in [("1048576", 0i64), ("262144", 0), ("1048576", 700)] {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &broker.addr)
            .set("group.id", "catch-up")
            .set("enable.auto.commit", "false")
            .set("max.partition.fetch.bytes", limit)
            .create()
            .expect("consumer");
        assign_all(&c, "catch-up", 2, Offset::Offset(from));
        check(&c, from);
    }
}

#[test]
fn running_out_of_file_descriptors_pauses_accepts_and_keeps_connections_served() {
    // Proves: when the broker cannot accept (EMFILE), connections it
    // already has keep working, the failure is logged a few times with
    // backoff (not in a tight loop), and once descriptors are free again
    // new clients connect and see everything.
    let dir = test_dir();
    let broker = Broker::start(&dir.path().join("data"));
    create_topic(&broker.addr, "fds", 2, &[]);
    let p = producer(&broker.addr, &[]);
    // One key, so one partition: the consumer sees them in send order.
    let send = |tag: &str| {
        let values: Vec<Vec<u8>> = (0..50).map(|i| format!("{tag}-{i}").into_bytes()).collect();
        let records = values
            .iter()
            .map(|v| BaseRecord::to("fds").payload(&v[..]).key(&b"k"[..]));
        send_all(&p, records);
        values
    };
    let first = send("before");
    let open = broker.open_files();
    broker.set_open_files_limit(open + 4);
    // Connections the kernel completes but the broker cannot accept.
    let waiting: Vec<_> = (0..40)
        .map(|_| std::net::TcpStream::connect(&broker.addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let second = send("during");
    let log = broker.log_text();
    let failures = log.matches("accept failed").count();
    assert!(
        (1..=12).contains(&failures),
        "{failures} accept failures logged: {log}"
    );

    drop(waiting);
    broker.set_open_files_limit(open + 1000);
    let c = consumer(&broker.addr);
    assign_all(&c, "fds", 2, Offset::Beginning);
    let got = consume(&c, 100);
    let values: Vec<&[u8]> = got.iter().map(|m| m.payload().unwrap()).collect();
    let want: Vec<&[u8]> = first.iter().chain(&second).map(|v| &v[..]).collect();
    assert_eq!(
        values, want,
        "one key, one partition: every message in order"
    );
    assert!(broker.log_text().contains("accepting connections again"));
}
