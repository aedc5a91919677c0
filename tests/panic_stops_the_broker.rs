//! A panic is a bug, and a bug stops the whole broker: with two shards, a
//! panic on one (forced with the hidden `--crash-on-produce-to` hook) ends
//! the process with SIGABRT at once instead of leaving the other shard
//! serving half the partitions, and a restart — what a supervisor does —
//! recovers every message acknowledged before it.

mod common;

use common::broker::Broker;
use common::test_dir;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

fn kcat(addr: &str, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new("kcat")
        .args(["-b", addr])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kcat");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    child.wait_with_output().expect("kcat output")
}

#[test]
fn a_panic_on_one_shard_stops_the_broker_and_a_restart_recovers() {
    let dir = test_dir();
    let data = dir.path().join("data");
    let mut broker = Broker::start_with(
        &data,
        &[
            "--shards",
            "2",
            "--num-partitions",
            "4",
            "--crash-on-produce-to",
            "boom",
        ],
    );
    let messages: Vec<String> = (0..200).map(|i| format!("kept-{i}")).collect();
    let produced = kcat(
        &broker.addr,
        &["-t", "kept", "-P", "-X", "acks=all"],
        &(messages.join("\n") + "\n"),
    );
    assert!(produced.status.success(), "{produced:?}");

    // The produce to "boom" panics its owner shard; the whole process goes.
    let _ = kcat(
        &broker.addr,
        &["-t", "boom", "-P", "-X", "message.timeout.ms=3000"],
        "fatal\n",
    );
    let status = broker
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("strom kept running after a panic: {}", broker.log_text()));
    assert_eq!(
        status.signal(),
        Some(libc::SIGABRT),
        "a panic aborts (status {status}): {}",
        broker.log_text()
    );
    assert!(broker
        .log_text()
        .contains("a test asked this shard to fail"));

    // The supervisor's restart: every acknowledged message is there.
    let broker = Broker::start_with(&data, &["--shards", "2"]);
    let consumed = kcat(&broker.addr, &["-t", "kept", "-C", "-e", "-q"], "");
    assert!(consumed.status.success(), "{consumed:?}");
    let mut got: Vec<String> = String::from_utf8_lossy(&consumed.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    got.sort();
    let mut want = messages;
    want.sort();
    assert_eq!(got, want);
}
