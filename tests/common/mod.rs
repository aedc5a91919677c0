//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod broker;
pub mod kafka;
pub mod proxy;

use bytes::Bytes;
use std::future::Future;
use std::path::Path;
use strom::log::batch::build;
use strom::log::{LogConfig, Offset, Partition, RecordBatch};

/// A temp dir on the real disk (not tmpfs), so O_DIRECT and the io-poll
/// probe behave as in production.
pub fn test_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("strom-test-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

/// Runs `fut` on a fresh glommio executor thread and returns its output.
pub fn run<T, F, G>(make: G) -> T
where
    G: FnOnce() -> F + Send + 'static,
    F: Future<Output = T> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(make)
        .expect("executor")
        .join()
        .expect("executor thread")
}

/// A valid batch of `count` records whose values carry `tag`.
pub fn batch(tag: u64, count: usize, value_len: usize, timestamp: i64) -> RecordBatch {
    let mut value = vec![0u8; value_len.max(8)];
    value[..8].copy_from_slice(&tag.to_be_bytes());
    let records: Vec<build::Record<'_>> = (0..count)
        .map(|_| build::Record {
            key: None,
            value: &value,
            timestamp_delta: 0,
        })
        .collect();
    let mut bytes = build::batch(timestamp, &records);
    RecordBatch::split_first(&mut bytes).expect("valid batch")
}

/// The tag of a batch built by [`batch`]: the first 8 value bytes of its
/// first record (the header is 61 bytes, then a record of
/// length / attributes / ts delta / offset delta / key len / value len).
pub fn tag_of(batch: &RecordBatch) -> u64 {
    let raw = batch.as_bytes();
    // length varint (1-2 bytes), attributes, ts delta (0), offset delta (0),
    // key -1 (1 byte), value length varint (1-2 bytes), then the value.
    let mut at = 61;
    at += varint_len(&raw[at..]);
    at += 1 + 1 + 1 + 1;
    at += varint_len(&raw[at..]);
    u64::from_be_bytes(raw[at..at + 8].try_into().expect("8 bytes"))
}

fn varint_len(buf: &[u8]) -> usize {
    buf.iter().position(|b| b & 0x80 == 0).expect("varint") + 1
}

/// Splits a read's bytes into batches.
pub fn split(mut bytes: Bytes) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let b = RecordBatch::split_first(&mut bytes).expect("whole batch");
        b.validate().expect("valid batch");
        out.push(b);
    }
    out
}

/// Small segments and buffers so tests roll and spill to disk quickly.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 10,
        write_buffer_bytes: 8 << 10,
        tail_cache_bytes: 16 << 10,
        index_interval_bytes: 1024,
        preallocate: false,
        ..LogConfig::default()
    }
}

pub async fn open(dir: &Path, config: LogConfig) -> Partition {
    let ready = strom::log::io_probe::ensure_dma_reads(dir.parent().expect("parent"))
        .await
        .expect("probe");
    Partition::open(dir, config, &ready).await.expect("open")
}

/// Every batch from `from` to the log end, through `read` (hot or cold).
pub async fn read_all(p: &Partition, from: u64) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut offset = Offset::new(from);
    while offset < p.next_offset() {
        let chunk = p.read(offset, 16 << 10).await.expect("read");
        let batches = split(chunk.to_bytes_blocking().expect("bytes"));
        assert!(!batches.is_empty(), "no progress at {offset}");
        for b in batches {
            if b.next() > offset {
                offset = b.next();
                out.push(b);
            }
        }
    }
    out
}
