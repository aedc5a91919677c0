//! Fetch (1), v4–v12: whole batches from each requested partition, within
//! `max_bytes` and each `partition_max_bytes` (the first batch of the first
//! partition with data always goes, as KIP-74 says), long-polling up to
//! `max_wait_ms` until `min_bytes` are available; appends on this shard wake
//! the poll. Sessions (KIP-227) are answered sessionless (session id 0),
//! which every client accepts. Isolation levels are accepted; without
//! transactions the last stable offset is the high watermark.
//!
//! Record bytes are never copied: hot reads go out as the tail cache's
//! `Bytes`, cold reads as file ranges for `sendfile` (see `fetch_response`).

use super::error_code::ErrorCode;
use super::fetch_response::{encode, PartitionResult, TopicResult};
use super::Response;
use crate::log::ReadChunk;
use crate::shard::Shard;
use futures_lite::future;
use kafka_protocol::messages::FetchRequest;
use std::time::{Duration, Instant};

/// The longest a fetch may wait, whatever the client asks (Kafka has no
/// cap; clients send 500 ms by default). Bounds a task's lifetime.
const FETCH_WAIT_MAX: Duration = Duration::from_secs(30);

pub async fn handle(
    shard: &Shard,
    req: FetchRequest,
    version: i16,
    correlation_id: i32,
) -> Response {
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(FETCH_WAIT_MAX);
    let deadline = Instant::now() + wait;
    loop {
        let seen = shard.appended.generation();
        let (topics, bytes, errors) = read(shard, &req).await;
        let now = Instant::now();
        if bytes >= req.min_bytes.max(1) as usize || errors || now >= deadline {
            shard.stats.count_fetch(&topics);
            return encode(version, correlation_id, topics);
        }
        future::or(shard.appended.changed(seen), async {
            glommio::timer::sleep(deadline - now).await;
        })
        .await;
    }
}

/// One pass over the requested partitions: the results, the record bytes in
/// them, and whether any partition had an error.
async fn read(shard: &Shard, req: &FetchRequest) -> (Vec<TopicResult>, usize, bool) {
    let mut remaining = if req.max_bytes <= 0 {
        usize::MAX
    } else {
        req.max_bytes as usize
    };
    let mut total = 0usize;
    let mut errors = false;
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in &req.topics {
        let name = topic.topic.0.as_str();
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
            let Some(partition) = shard.partition(name, fp.partition) else {
                p.error_code = ErrorCode::UnknownTopicOrPartition.code();
                errors = true;
                partitions.push(p);
                continue;
            };
            let hw = partition.next_offset() as i64;
            p.high_watermark = hw;
            p.last_stable_offset = hw;
            p.log_start_offset = partition.log_start() as i64;
            let limit = (fp.partition_max_bytes.max(0) as usize).min(remaining);
            if limit > 0 || total == 0 {
                let offset = u64::try_from(fp.fetch_offset).unwrap_or(u64::MAX);
                match partition.read(offset, limit.max(1)).await {
                    Ok(records) => {
                        total += records.len();
                        remaining = remaining.saturating_sub(records.len());
                        p.records = records;
                    }
                    Err(e) => {
                        p.error_code = ErrorCode::from(&e).code();
                        errors = true;
                    }
                }
            }
            partitions.push(p);
        }
        topics.push(TopicResult {
            name: topic.topic.0.clone().into_bytes(),
            partitions,
        });
    }
    (topics, total, errors)
}
