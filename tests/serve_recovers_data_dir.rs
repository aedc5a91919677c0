//! `strom serve` on a relative data dir (the README's command): a log left
//! by a killed writer is recovered and reported, and serve exits cleanly.

use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn serve_recovers_a_relative_data_dir_left_by_a_killed_writer() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut writer = Command::new(env!("CARGO_BIN_EXE_strom"))
        .current_dir(dir.path())
        .args(["log-writer", "--dir", "data/demo-0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    writer.kill().unwrap();
    let out = writer.wait_with_output().unwrap();
    let acked = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(acked > 0, "writer acknowledged nothing");

    let serve = Command::new(env!("CARGO_BIN_EXE_strom"))
        .current_dir(dir.path())
        .args(["serve", "--data-dir", "data"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&serve.stderr);
    assert!(serve.status.success(), "serve failed: {log}");
    assert!(log.contains("partitions=1"), "{log}");
    assert!(log.contains("recovered data directory"), "{log}");
}
