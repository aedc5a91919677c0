//! Torn and corrupt tails: the active segment is cut (or damaged) at many
//! byte positions and the log reopened. Proves every batch wholly before the
//! damage is served intact and in order, nothing at or past it is served,
//! and the log accepts appends again right after.

mod common;

use common::{batch, open, read_all, run, small_config, tag_of, test_dir};
use std::path::{Path, PathBuf};
use strom::log::Durability;
use strom::log::LogConfig;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        ..small_config()
    }
}

/// Writes `count` flushed batches of varied sizes; returns each batch's end
/// position in the (single) segment and the segment path.
fn write_log(path: PathBuf, count: u64) -> (Vec<u64>, PathBuf) {
    run(move || async move {
        let p = open(&path, config()).await;
        let mut ends = Vec::new();
        let mut end = 0u64;
        for tag in 0..count {
            let b = batch(
                tag,
                1 + (tag % 3) as usize,
                50 + (tag as usize * 37) % 700,
                0,
            );
            end += b.len() as u64;
            ends.push(end);
            p.append(vec![b], Durability::Policy).await.unwrap();
            p.flush().await.unwrap();
        }
        assert_eq!(p.segment_count(), 1);
        (ends, path.join(format!("{:020}.log", 0)))
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Reopens `dir` and checks it holds exactly batches `0..expect`, then that
/// an append continues the log.
fn check_reopened(dir: PathBuf, expect: u64) {
    run(move || async move {
        let p = open(&dir, config()).await;
        assert_eq!(
            p.next_offset().get(),
            expect_offsets(expect),
            "log end after recovery"
        );
        let tags: Vec<u64> = read_all(&p, 0).await.iter().map(tag_of).collect();
        assert_eq!(tags, (0..expect).collect::<Vec<_>>());
        let info = p
            .append(vec![batch(999, 1, 10, 0)], Durability::Policy)
            .await
            .unwrap();
        assert_eq!(info.base_offset.get(), expect_offsets(expect));
        p.close().await.unwrap();
    })
}

/// Offsets used by batches `0..n` as `write_log` builds them.
fn expect_offsets(n: u64) -> u64 {
    (0..n).map(|tag| 1 + tag % 3).sum()
}

/// A deterministic spread of positions (xorshift), plus the edges.
fn positions(max: u64, n: usize) -> Vec<u64> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = vec![0, 1, max - 1, max];
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(x % max);
    }
    out
}

#[test]
fn torn_tail_is_truncated_at_every_cut() {
    let dir = test_dir();
    let (ends, log) = write_log(dir.path().join("t-0"), 60);
    let total = *ends.last().unwrap();
    for (i, cut) in positions(total, 40).into_iter().enumerate() {
        let copy = dir.path().join(format!("cut{i}-0"));
        copy_dir(log.parent().unwrap(), &copy);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(copy.join(log.file_name().unwrap()))
            .unwrap();
        f.set_len(cut).unwrap();
        let whole = ends.iter().filter(|&&e| e <= cut).count() as u64;
        check_reopened(copy, whole);
    }
}

#[test]
fn corrupt_byte_truncates_from_the_damaged_batch() {
    let dir = test_dir();
    let (ends, log) = write_log(dir.path().join("t-0"), 40);
    let total = *ends.last().unwrap();
    for (i, at) in positions(total, 25)
        .into_iter()
        .filter(|&p| p < total)
        .enumerate()
    {
        let copy = dir.path().join(format!("flip{i}-0"));
        copy_dir(log.parent().unwrap(), &copy);
        let file = copy.join(log.file_name().unwrap());
        let mut raw = std::fs::read(&file).unwrap();
        raw[at as usize] ^= 0x55;
        std::fs::write(&file, raw).unwrap();
        // The damaged batch is the first whose end is past `at`.
        let intact = ends.iter().filter(|&&e| e <= at).count() as u64;
        check_reopened(copy, intact);
    }
}

#[test]
fn garbage_after_the_last_batch_is_removed() {
    let dir = test_dir();
    let (ends, log) = write_log(dir.path().join("t-0"), 10);
    let mut raw = std::fs::read(&log).unwrap();
    // The file may end in zero padding of a partial block; garbage follows.
    assert!(raw.len() as u64 >= *ends.last().unwrap());
    raw.extend((0..5000u32).map(|i| (i * 7 + 3) as u8));
    std::fs::write(&log, raw).unwrap();
    check_reopened(log.parent().unwrap().to_path_buf(), 10);
}
