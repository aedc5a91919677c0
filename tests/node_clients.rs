//! kafkajs (npm; .ci/run installs it into tests/node) against the real
//! binary: an idempotent producer (InitProducerId, sequenced batches,
//! acks=all) and a consumer group read every message back; a
//! transactional producer's committed messages and offsets are read back,
//! its aborted ones are not.

mod common;

use common::broker::Broker;
use common::test_dir;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn kafkajs_idempotent_and_transactional_producers_and_group_consumer() {
    let dir = test_dir();
    let broker = Broker::start_with(&dir.path().join("data"), &["--shards", "2"]);
    let node_dir = format!("{}/tests/node", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("node")
        .arg(format!("{node_dir}/kafkajs_client.js"))
        .arg(&broker.addr)
        .env("NODE_PATH", format!("{node_dir}/node_modules"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node (with kafkajs in tests/node: .ci/run installs it)");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kafkajs_client.js did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("transactions committed and aborted"),
        "kafkajs:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
