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
