//! Fetch (1), v4–v12: whole batches from each requested partition, within
//! `max_bytes` and each `partition_max_bytes` (the first batch of the first
//! partition with data always goes, as KIP-74 says), long-polling up to
//! `max_wait_ms` until `min_bytes` are available; appends on any owner shard
//! of the requested partitions wake the poll. Each partition is read by its
//! owner (one message per owner shard). Sessions (KIP-227) are answered sessionless (session id 0),
//! which every client accepts. Isolation levels are accepted; without
//! transactions the last stable offset is the high watermark.
//!
//! Record bytes are never copied: hot reads go out as the tail cache's
//! `Bytes`, cold reads as file ranges for `sendfile` (see `fetch_response`).

use super::error_code::ErrorCode;
use super::fetch_response::{encode, PartitionResult, TopicResult};
use super::Response;
use crate::log::ReadChunk;
use crate::metrics::{self, Stage};
use crate::shard::Shard;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::FetchRequest;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The longest a fetch may wait, whatever the client asks (Kafka has no
/// cap; clients send 500 ms by default). Bounds a task's lifetime.
const FETCH_WAIT_MAX: Duration = Duration::from_secs(30);

pub async fn handle(
    shard: &Rc<Shard>,
    req: FetchRequest,
    version: i16,
    correlation_id: i32,
) -> Response {
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(FETCH_WAIT_MAX);
    let deadline = Instant::now() + wait;
    loop {
        let (topics, bytes, errors, generations) = read(shard, &req).await;
        if bytes >= req.min_bytes.max(1) as usize || errors || Instant::now() >= deadline {
            count(shard, &topics);
            return encode(version, correlation_id, topics);
        }
        let waiting = Instant::now();
        shard.wait_for_appends(generations, deadline).await;
        shard.metrics.since(Stage::FetchWait, waiting);
    }
}

/// Counts record bytes by source (tail cache or segment file) and error codes.
fn count(shard: &Shard, topics: &[TopicResult]) {
    let m = &shard.metrics;
    let mut errors = 0;
    for p in topics.iter().flat_map(|t| &t.partitions) {
        errors += u64::from(p.error_code != 0);
        match &p.records {
            ReadChunk::Cached(_) => metrics::add(&m.fetch_hot_bytes, p.records.len() as u64),
            ReadChunk::File(_) | ReadChunk::Read(_) => {
                metrics::add(&m.fetch_cold_bytes, p.records.len() as u64)
            }
            ReadChunk::Empty => {}
        }
    }
    m.count_errors(ApiKey::Fetch as i16, errors);
}

/// One pass over the requested partitions: the results, the record bytes in
/// them, whether any partition had an error, and the append generation of
/// each owner shard read.
async fn read(
    shard: &Rc<Shard>,
    req: &FetchRequest,
) -> (Vec<TopicResult>, usize, bool, Vec<(usize, u64)>) {
    // Kafka's broker-side `fetch.max.bytes` caps what a client may ask.
    let max_bytes = if req.max_bytes <= 0 {
        usize::MAX
    } else {
        req.max_bytes as usize
    }
    .min(shard.config.fetch_max_bytes);
    let mut items = Vec::new();
    for topic in &req.topics {
        let name = topic.topic.0.as_str().to_string();
        for fp in &topic.partitions {
            let offset = u64::try_from(fp.fetch_offset).unwrap_or(u64::MAX);
            let limit = (fp.partition_max_bytes.max(0) as usize)
                .min(max_bytes)
                .max(1);
            items.push(((name.clone(), fp.partition), (offset, limit)));
        }
    }
    let (results, generations) = shard.read(items, max_bytes).await;
    let mut results = results.into_iter();
    // Owners read in parallel, each within the partition limit; here the
    // response limit applies in request order (the first data always goes).
    let mut total = 0usize;
    let mut errors = false;
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in &req.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for fp in &topic.partitions {
            let mut p = PartitionResult {
                index: fp.partition,
                error_code: 0,
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                records: ReadChunk::Empty,
            };
            match results.next().expect("a result per partition") {
                Ok(read) => {
                    p.high_watermark = read.high_watermark as i64;
                    p.last_stable_offset = read.high_watermark as i64;
                    p.log_start_offset = read.log_start as i64;
                    let len = read.chunk.len();
                    if total == 0 || total + len <= max_bytes {
                        total += len;
                        p.records = read.chunk;
                    }
                }
                Err(e) => {
                    p.error_code = ErrorCode::from(&e).code();
                    errors = true;
                }
            }
            partitions.push(p);
        }
        topics.push(TopicResult {
            name: topic.topic.0.clone().into_bytes(),
            partitions,
        });
    }
    (topics, total, errors, generations)
}
