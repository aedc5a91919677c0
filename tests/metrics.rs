//! The broker's `/metrics` endpoint and `strom stats`, against the real
//! binary with 2 shards after librdkafka produced and consumed: the text
//! parses as Prometheus exposition, its counts match what the client did,
//! every stage a produce and a fetch pass through was timed, and `strom
//! stats` prints the tables from it.

mod common;

use common::broker::Broker;
use common::test_dir;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};
use strom::metrics::exposition::{parse, Sample};

const TIMEOUT: Duration = Duration::from_secs(30);
const MESSAGES: usize = 400;
const PARTITIONS: i32 = 4;

/// GET `path` over plain HTTP/1.0; (status line, body).
fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to metrics");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
        .value
}

#[test]
fn metrics_count_what_clients_did_and_strom_stats_shows_them() {
    let dir = test_dir();
    let broker = Broker::start_with(
        &dir.path().join("data"),
        &["--shards", "2", "--num-partitions", &PARTITIONS.to_string()],
    );

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("acks", "all")
        .set("linger.ms", "2")
        .create()
        .expect("producer");
    for i in 0..MESSAGES {
        let key = format!("k{i}");
        let record = BaseRecord::to("metered")
            .key(key.as_bytes())
            .payload(b"value-bytes")
            .partition((i % PARTITIONS as usize) as i32);
        producer.send(record).map_err(|(e, _)| e).expect("send");
    }
    producer.flush(TIMEOUT).expect("every message acknowledged");

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", "metrics-test")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("metered", p, Offset::Offset(0))
            .expect("assign");
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + TIMEOUT;
    let mut consumed = 0;
    while consumed < MESSAGES {
        assert!(Instant::now() < deadline, "consumed only {consumed}");
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m.expect("a message");
            consumed += 1;
        }
    }
    // A request answered with an error code: metadata of a topic that is
    // not there, with auto-creation refused by the name.
    let _ = consumer.fetch_metadata(Some("bad topic name!"), Duration::from_secs(5));

    let (status, body) = http_get(&broker.metrics_addr, "/metrics");
    assert!(status.contains("200"), "{status}");
    let samples = parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));

    assert_eq!(value(&samples, "strom_shards", &[]), 2.0);
    assert!(value(&samples, "strom_requests_total", &[("api", "Produce")]) >= 1.0);
    assert_eq!(
        value(
            &samples,
            "strom_request_errors_total",
            &[("api", "Produce")]
        ),
        0.0
    );
    assert!(
        value(
            &samples,
            "strom_request_errors_total",
            &[("api", "Metadata")]
        ) >= 1.0
    );
    assert!(value(&samples, "strom_requests_total", &[("api", "Fetch")]) >= 1.0);
    let ends: f64 = (0..PARTITIONS)
        .map(|p| {
            value(
                &samples,
                "strom_partition_log_end_offset",
                &[("topic", "metered"), ("partition", &p.to_string())],
            )
        })
        .sum();
    assert_eq!(
        ends as usize, MESSAGES,
        "log end offsets add up to what was produced"
    );
    let size = value(
        &samples,
        "strom_partition_size_bytes",
        &[("topic", "metered"), ("partition", "0")],
    );
    assert!(size > 0.0, "partition size {size}");
    let shards_owning: std::collections::BTreeSet<_> = samples
        .iter()
        .filter(|s| s.name == "strom_partition_log_end_offset")
        .filter_map(|s| s.label("shard"))
        .collect();
    assert_eq!(
        shards_owning.len(),
        2,
        "partitions are spread over both shards"
    );
    // Every stage a produce, an acks=all flush and a fetch go through.
    for stage in [
        "decode",
        "cross_shard_hop",
        "append",
        "fsync_wait",
        "response_write",
        "fetch_send",
    ] {
        let n = value(
            &samples,
            "strom_stage_latency_seconds_count",
            &[("stage", stage)],
        );
        assert!(n >= 1.0, "stage {stage} never timed");
        let p50 = value(
            &samples,
            "strom_stage_latency_seconds",
            &[("stage", stage), ("quantile", "0.5")],
        );
        let max = value(
            &samples,
            "strom_stage_latency_seconds",
            &[("stage", stage), ("quantile", "1")],
        );
        assert!(
            p50 > 0.0 && p50 <= max && max < 60.0,
            "{stage}: p50 {p50} max {max}"
        );
    }
    assert!(value(&samples, "strom_bytes_in_total", &[]) > (MESSAGES * 11) as f64);
    let fetched = value(
        &samples,
        "strom_fetch_bytes_total",
        &[("source", "tail_cache")],
    ) + value(
        &samples,
        "strom_fetch_bytes_total",
        &[("source", "segment_file")],
    );
    assert!(fetched > (MESSAGES * 11) as f64, "fetched {fetched} bytes");

    let (status, _) = http_get(&broker.metrics_addr, "/nothing");
    assert!(status.contains("404"), "{status}");

    let out = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["stats", "--metrics", &broker.metrics_addr])
        .output()
        .expect("strom stats");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for header in ["STAGE", "API", "TOPIC"] {
        assert!(
            table.lines().any(|l| l.starts_with(header)),
            "{header}:\n{table}"
        );
    }
    let row = |first: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(first))
            .unwrap_or_else(|| panic!("no {first} row:\n{table}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert!(
        row("Produce")[1].parse::<u64>().expect("requests") >= 1,
        "{table}"
    );
    let partition_rows: u64 = table
        .lines()
        .filter(|l| l.starts_with("metered "))
        .map(|l| {
            l.split_whitespace()
                .nth(4)
                .expect("log end")
                .parse::<u64>()
                .expect("offset")
        })
        .sum();
    assert_eq!(partition_rows as usize, MESSAGES, "{table}");
    assert_eq!(row("fsync_wait").len(), 7, "{table}");

    // A scraper speaking garbage gets 400 and the endpoint keeps serving.
    let mut s = std::net::TcpStream::connect(&broker.metrics_addr).expect("connect");
    s.write_all(b"\x00\x01garbage\r\n\r\n").expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(http_get(&broker.metrics_addr, "/metrics").0.contains("200"));
}
