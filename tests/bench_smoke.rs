//! `strom bench` against the real broker, in a short smoke mode: message
//! counts match, percentiles are ordered and non-zero, JSON parses, the
//! `.hgrm` distribution is written, and a target rate is honoured.

mod common;

use common::broker::Broker;
use common::test_dir;
use std::process::Command;

fn bench(addr: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["bench", "--bootstrap", addr, "--json"])
        .args(extra)
        .output()
        .expect("run strom bench");
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn check_percentiles(v: &serde_json::Value) {
    check_ordered(v, "latency_ms");
}

fn check_ordered(v: &serde_json::Value, key: &str) {
    let l = &v[key];
    let ordered: Vec<f64> = ["p50", "p90", "p99", "p99.9", "p99.99", "max"]
        .iter()
        .map(|k| l[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}")))
        .collect();
    assert!(ordered[0] > 0.0, "{v}");
    assert!(ordered.windows(2).all(|w| w[0] <= w[1]), "unordered: {v}");
}

#[test]
fn bench_counts_messages_and_reports_ordered_percentiles() {
    let dir = test_dir();
    let broker = Broker::start(&dir.path().join("data"));
    let hgrm = dir.path().join("latency.hgrm");
    let v = bench(
        &broker.addr,
        &[
            "--messages",
            "3000",
            "--producers",
            "2",
            "--consumers",
            "2",
            "--topic",
            "smoke",
            "--hgrm",
            hgrm.to_str().unwrap(),
        ],
    );
    assert_eq!(v["acked"], 3000, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert!(v["mb_per_sec"].as_f64().unwrap() > 0.0);
    check_percentiles(&v);
    // The consumers saw every message and timed it end to end.
    assert_eq!(v["consumed"], 3000, "{v}");
    check_ordered(&v, "e2e_latency_ms");
    // Consume only: read those 3,000 back from the log start.
    let v = bench(
        &broker.addr,
        &[
            "--producers",
            "0",
            "--consumers",
            "2",
            "--from-earliest",
            "--messages",
            "3000",
            "--topic",
            "smoke",
        ],
    );
    assert_eq!(v["consumed"], 3000, "{v}");
    assert_eq!(v["sent"], 0, "{v}");
    // The same 3,000 read by a consumer group of 2 (range assignment by
    // the bench's leader, offsets committed in the group).
    let v = bench(
        &broker.addr,
        &[
            "--producers",
            "0",
            "--consumers",
            "2",
            "--from-earliest",
            "--messages",
            "3000",
            "--topic",
            "smoke",
            "--group",
            "smoke-readers",
        ],
    );
    assert_eq!(v["consumed"], 3000, "{v}");
    let dist = std::fs::read_to_string(&hgrm).unwrap();
    assert!(dist.contains("Total count    =         3000"), "{dist}");

    // Open loop at 2,000 msg/s for 1,000 messages takes about half a second.
    let v = bench(
        &broker.addr,
        &[
            "--messages",
            "1000",
            "--rate",
            "2000",
            "--acks",
            "all",
            "--topic",
            "smoke",
        ],
    );
    assert_eq!(v["acked"], 1000, "{v}");
    let secs = v["seconds"].as_f64().unwrap();
    assert!((0.4..5.0).contains(&secs), "took {secs} s: {v}");
    check_percentiles(&v);
}

/// Two bench shards, keyed and compressed messages with linger, and the
/// SVG plot: every message produced is consumed (the consumers decompress
/// to read the send stamps), keys land where Kafka's partitioner puts
/// them, and the plot has a line per latency.
#[test]
fn sharded_keyed_compressed_bench_and_its_plot() {
    let dir = test_dir();
    let broker = Broker::start_with(&dir.path().join("data"), &["--shards", "2"]);
    let plot = dir.path().join("latency.svg");
    for codec in ["lz4", "zstd"] {
        let topic = format!("keyed-{codec}");
        let v = bench(
            &broker.addr,
            &[
                "--messages",
                "4000",
                "--rate",
                "8000",
                "--linger-ms",
                "2",
                "--producers",
                "3",
                "--consumers",
                "2",
                "--shards",
                "2",
                "--keys",
                "50",
                "--compression",
                codec,
                "--topic",
                &topic,
                "--plot",
                plot.to_str().unwrap(),
            ],
        );
        assert_eq!(v["acked"], 4000, "{v}");
        assert_eq!(v["errors"], 0, "{v}");
        assert_eq!(v["consumed"], 4000, "{v}");
        assert_eq!(v["shards"], 2, "{v}");
        check_percentiles(&v);
        check_ordered(&v, "e2e_latency_ms");
        // Each key's messages all went to murmur2(key) % 6.
        let out = Command::new("kcat")
            .args(["-b", &broker.addr, "-t", &topic, "-C", "-e", "-q"])
            .args(["-f", "%k %p\n"])
            .output()
            .expect("kcat");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut seen = std::collections::HashMap::new();
        for line in text.lines() {
            let (key, partition) = line.split_once(' ').expect("key and partition");
            let p: i32 = partition.parse().expect("partition");
            assert_eq!(
                p,
                strom::bench::partitioner::partition_for(key.as_bytes(), 6),
                "{key}"
            );
            *seen.entry(key.to_string()).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 50, "{text}");
        let partitions: std::collections::HashSet<&str> =
            text.lines().filter_map(|l| l.split(' ').nth(1)).collect();
        assert_eq!(partitions.len(), 6, "the topic got --partitions 6");
        assert_eq!(seen.values().sum::<i32>(), 4000);
    }
    // A group member leaves halfway: everything is still consumed and the
    // rebalance is timed.
    let v = bench(
        &broker.addr,
        &[
            "--rate",
            "4000",
            "--duration",
            "3",
            "--consumers",
            "2",
            "--topic",
            "grouped",
            "--group",
            "leavers",
            "--leave-after",
            "1.5",
        ],
    );
    assert_eq!(v["consumed"], v["acked"], "{v}");
    let rebalance = v["rebalance_ms"].as_f64().unwrap_or_else(|| panic!("{v}"));
    assert!(rebalance > 0.0 && rebalance < 10_000.0, "{v}");
    let svg = std::fs::read_to_string(&plot).expect("plot written");
    assert!(svg.starts_with("<svg"), "{svg}");
    assert_eq!(
        svg.matches("<polyline").count(),
        2,
        "ack and end-to-end lines"
    );
    assert!(svg.contains("99.9%"));
}
