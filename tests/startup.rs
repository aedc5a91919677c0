//! Startup: a Kafka or metrics port that another process holds is refused
//! with a clear error instead of being shared (every shard binds the Kafka
//! port with SO_REUSEPORT, which would otherwise split connections between
//! two brokers).

mod common;

use common::broker::refused_start;
use common::test_dir;
use std::time::{Duration, Instant};

#[test]
fn a_taken_kafka_port_is_a_startup_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = test_dir();
    let started = Instant::now();
    let stderr = refused_start(
        &dir.path().join("data"),
        &["--shards", "2", "--listen", &addr],
    );
    assert!(stderr.contains(&format!("listening on {addr}")), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
    // It waits a few seconds for a port freed by a crash, not forever.
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn a_taken_metrics_port_is_a_startup_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = test_dir();
    let stderr = refused_start(&dir.path().join("data"), &["--metrics-listen", &addr]);
    assert!(stderr.contains("metrics listener"), "{stderr}");
}
