//! Fetch (1), v4–v12: whole batches from each requested partition, within
//! `max_bytes` and each `partition_max_bytes` (the first batch of the first
//! partition with data always goes, as KIP-74 says), long-polling up to
//! `max_wait_ms` until `min_bytes` are available; appends on any owner shard
//! of the requested partitions wake the poll. Each partition is read by its
//! owner (one call per owner shard). Sessions (KIP-227) are answered sessionless (session id 0),
//! which every client accepts. A read_committed fetch (isolation level 1)
//! reads below each partition's last stable offset and gets the aborted
//! transactions among what it read.
//!
//! Hot reads go out as the tail cache's `Bytes`, uncopied; cold reads as
//! the pooled blocks of one O_DIRECT read (copied once out of the shard's
//! DMA buffer, `log::read_buffer`) or as file ranges for `sendfile` (see
//! `fetch_response`).
//! A negative partition index is UNKNOWN_TOPIC_OR_PARTITION and a negative
//! fetch offset of a partition that exists OFFSET_OUT_OF_RANGE, answered
//! here without a read.

use super::error_code::ErrorCode;
use super::fetch_response::{encode, PartitionResult, TopicResult};
use super::{wire, Response};
use crate::log::ReadChunk;
use crate::metrics::{self, Stage};
use crate::shard::owner_calls::{Fetched, ReadRange};
use crate::shard::ownership::ShardId;
use crate::shard::Shard;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::FetchRequest;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The longest a fetch may wait, whatever the client asks (Kafka has no
/// cap; clients send 500 ms by default). Bounds a task's lifetime.
const FETCH_WAIT_MAX: Duration = Duration::from_secs(30);

/// Kafka's isolation level for transactional records' consumers.
pub const READ_COMMITTED: i8 = 1;

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
) -> (Vec<TopicResult>, usize, bool, Vec<(ShardId, u64)>) {
    // Kafka's broker-side `fetch.max.bytes` caps what a client may ask.
    let max_bytes = if req.max_bytes <= 0 {
        usize::MAX
    } else {
        wire::size(req.max_bytes)
    }
    .min(shard.config.fetch_max_bytes);
    let mut items = Vec::new();
    // Per partition, in request order: routed to its owner, or answered
    // here with an error code.
    let mut answered_here = Vec::new();
    for topic in &req.topics {
        let name = topic.topic.0.as_str();
        for fp in &topic.partitions {
            let range = wire::offset(fp.fetch_offset).map(|offset| ReadRange {
                offset,
                max_bytes: wire::size(fp.partition_max_bytes).min(max_bytes).max(1),
                committed: req.isolation_level == READ_COMMITTED,
            });
            match (wire::topic_partition(name, fp.partition), range) {
                (Some(tp), Some(range)) => {
                    items.push((tp, range));
                    answered_here.push(None);
                }
                // An unknown partition is that first, whatever its offset.
                (Some(tp), None) if shard.owner_of(&tp).is_some() => {
                    answered_here.push(Some(ErrorCode::OffsetOutOfRange))
                }
                _ => answered_here.push(Some(ErrorCode::UnknownTopicOrPartition)),
            }
        }
    }
    let (results, generations) = shard.read(items, max_bytes).await;
    let mut results = results.into_iter();
    let mut answered_here = answered_here.into_iter();
    // Owners read in parallel, each within the partition limit; here the
    // response limit applies in request order (the first data always goes).
    let mut total = 0usize;
    let mut errors = false;
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in &req.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for fp in &topic.partitions {
            let result: Result<Fetched, ErrorCode> = match answered_here.next().flatten() {
                Some(code) => Err(code),
                None => results
                    .next()
                    .expect("a result per partition read")
                    .map_err(|e| ErrorCode::from(&e)),
            };
            let p = partition_result(fp.partition, result, &mut total, max_bytes);
            errors |= p.error_code != 0;
            partitions.push(p);
        }
        topics.push(TopicResult {
            name: topic.topic.0.clone().into_bytes(),
            partitions,
        });
    }
    (topics, total, errors, generations)
}

/// One partition's answer; its records go if they fit in what is left of
/// `max_bytes` (or nothing went before them).
fn partition_result(
    index: i32,
    result: Result<Fetched, ErrorCode>,
    total: &mut usize,
    max_bytes: usize,
) -> PartitionResult {
    let mut p = PartitionResult {
        index,
        error_code: 0,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        aborted: Vec::new(),
        records: ReadChunk::Empty,
    };
    match result {
        Ok(read) => {
            p.high_watermark = wire::offset_to_wire(read.high_watermark);
            p.last_stable_offset = wire::offset_to_wire(read.last_stable);
            p.log_start_offset = wire::offset_to_wire(read.log_start);
            let aborted = read.aborted.iter();
            p.aborted = aborted.map(|&(id, first)| (id.0, first.to_i64())).collect();
            let len = read.chunk.len();
            if *total == 0 || *total + len <= max_bytes {
                *total += len;
                p.records = read.chunk;
            }
        }
        Err(code) => p.error_code = code.code(),
    }
    p
}
