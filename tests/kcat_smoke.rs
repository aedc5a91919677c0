//! The README's promise with Debian's kcat: produce to an auto-created
//! topic, read it back, list metadata; and a clean SIGTERM shutdown.

mod common;

use common::broker::Broker;
use common::test_dir;
use std::io::Write;
use std::process::{Command, Stdio};

fn kcat(args: &[&str], input: Option<&[u8]>) -> String {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is installed (.ci/run installs it)");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kcat {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn kcat_produces_consumes_and_lists() {
    let dir = test_dir();
    // One shard: the path with no cross-shard hops. Settings from a TOML
    // file with Kafka's names: auto-created topics get 3 partitions.
    let config = dir.path().join("strom.toml");
    std::fs::write(&config, "num.partitions = 3\nlog.segment.bytes = 1048576\n").unwrap();
    let config = config.to_str().unwrap().to_string();
    let data = dir.path().join("data");
    let mut broker = Broker::start_with(&data, &["--shards", "1", "--config", &config]);
    let b = broker.addr.clone();
    kcat(
        &["-b", &b, "-t", "demo", "-P", "-p", "0"],
        Some(b"hello\nworld\n"),
    );
    let got = kcat(&["-b", &b, "-t", "demo", "-p", "0", "-C", "-e"], None);
    assert_eq!(got, "hello\nworld\n");
    let from_one = kcat(
        &[
            "-b", &b, "-t", "demo", "-p", "0", "-C", "-e", "-o", "1", "-f", "%o %s\n",
        ],
        None,
    );
    assert_eq!(from_one, "1 world\n");
    // acks=0: no response is sent, the messages still land.
    kcat(
        &["-b", &b, "-t", "fire", "-P", "-p", "0", "-X", "acks=0"],
        Some(b"f1\nf2\n"),
    );
    let fired = kcat(&["-b", &b, "-t", "fire", "-p", "0", "-C", "-e"], None);
    assert_eq!(fired, "f1\nf2\n");
    let meta = kcat(&["-b", &b, "-L"], None);
    assert!(meta.contains("topic \"demo\" with 3 partitions"), "{meta}");
    broker.stop();
    // Restarted, now with every core as a shard: the data is still there.
    let broker = Broker::start(&data);
    let got = kcat(
        &["-b", &broker.addr, "-t", "demo", "-p", "0", "-C", "-e"],
        None,
    );
    assert_eq!(got, "hello\nworld\n");
}
