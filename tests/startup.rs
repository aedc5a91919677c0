//! Startup: a Kafka port that another process holds is refused with a
//! clear error instead of being shared (every shard binds with
//! SO_REUSEPORT, which would otherwise split connections between two
//! brokers).

mod common;

use common::test_dir;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_taken_kafka_port_is_a_startup_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = test_dir();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args([
            "serve",
            "--shards",
            "2",
            "--listen",
            &addr,
            "--metrics-listen",
            "none",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("strom serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("listening on {addr}")), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
    // It waits a few seconds for a port freed by a crash, not forever.
    assert!(started.elapsed() < Duration::from_secs(15));
}
