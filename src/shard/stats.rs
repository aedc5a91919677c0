//! `ShardStats`: counters of one shard, read by log lines today and by the
//! metrics endpoint later. Plain `Cell`s: only this shard touches them.

use crate::log::ReadChunk;
use crate::protocol::fetch_response::TopicResult;
use std::cell::Cell;

#[derive(Default)]
pub struct ShardStats {
    /// Record bytes fetched from the tail cache (vectored writes, no disk).
    pub fetch_hot_bytes: Cell<u64>,
    /// Record bytes fetched from segment files with `sendfile`.
    pub fetch_cold_bytes: Cell<u64>,
    /// Requests being handled right now (shutdown waits for them).
    pub requests_in_flight: Cell<usize>,
}

impl ShardStats {
    pub fn count_fetch(&self, topics: &[TopicResult]) {
        for p in topics.iter().flat_map(|t| &t.partitions) {
            let (counter, n) = match &p.records {
                ReadChunk::Cached(_) => (&self.fetch_hot_bytes, p.records.len()),
                ReadChunk::File(_) => (&self.fetch_cold_bytes, p.records.len()),
                ReadChunk::Empty => continue,
            };
            counter.set(counter.get() + n as u64);
        }
    }
}
