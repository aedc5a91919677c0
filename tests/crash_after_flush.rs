//! Crash safety: a child process appends and flushes in a loop (four
//! concurrent writers sharing fdatasyncs) and is killed with SIGKILL at a
//! varying moment, three times over the same log. Proves that after each
//! recovery every batch whose flush had returned is present exactly once, at
//! the offset it was given, with its content intact.

mod common;

use common::{read_all, run, tag_of, test_dir};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn every_flushed_batch_survives_sigkill_exactly_once() {
    let dir = test_dir();
    let path = dir.path().join("crash-0");
    let mut acked: Vec<(u64, u64)> = Vec::new();
    for (round, delay_ms) in [150u64, 420, 260].into_iter().enumerate() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strom"))
            .args(["log-writer", "--dir"])
            .arg(&path)
            .args(["--first-tag", &(round as u64 * 1_000_000).to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn log-writer");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut parts = line.split_whitespace().map(|p| p.parse::<u64>().unwrap());
                tx.send((parts.next().unwrap(), parts.next().unwrap()))
                    .unwrap();
            }
        });
        // Wait for the first ack so the kill lands mid-stream, then kill.
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("child acks");
        acked.push(first);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        reader.join().unwrap();
        let before = acked.len();
        acked.extend(rx.try_iter());
        assert!(
            acked.len() - before > 10,
            "round {round}: child made too little progress"
        );

        let check_path = path.clone();
        let expected = acked.clone();
        run(move || async move {
            let p = common::open(&check_path, strom::log::LogConfig::default()).await;
            let batches = read_all(&p, 0).await;
            let mut seen = HashSet::new();
            for b in &batches {
                assert!(seen.insert(tag_of(b)), "tag {} stored twice", tag_of(b));
            }
            for &(tag, offset) in &expected {
                let b = batches
                    .iter()
                    .find(|b| b.base_offset() as u64 == offset)
                    .unwrap_or_else(|| panic!("acked offset {offset} (tag {tag}) lost"));
                assert_eq!(tag_of(b), tag, "offset {offset} holds another batch");
            }
        });
    }
}
