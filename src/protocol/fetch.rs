//! Fetch (1), v4–v12: whole batches from each requested partition, within
//! `max_bytes` and each `partition_max_bytes` (the first batch of the first
//! partition with data always goes, as KIP-74 says), long-polling up to
//! `max_wait_ms` until `min_bytes` are available; appends on this shard wake
//! the poll. Sessions (KIP-227) are answered sessionless (session id 0),
//! which every client accepts. Isolation levels are accepted; without
//! transactions the last stable offset is the high watermark.
//!
//! Today record bytes are copied into the response (cold reads with a
//! `pread` on a blocking thread); the zero-copy path (vectored writes of
//! cached batches, `sendfile` of file ranges) replaces this next.

use super::error_code::ErrorCode;
use crate::log::{LogError, ReadChunk};
use crate::shard::Shard;
use bytes::Bytes;
use futures_lite::future;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use std::time::{Duration, Instant};

/// The longest a fetch may wait, whatever the client asks (Kafka has no
/// cap; clients send 500 ms by default). Bounds a task's lifetime.
const FETCH_WAIT_MAX: Duration = Duration::from_secs(30);

pub async fn handle(shard: &Shard, req: FetchRequest, version: i16) -> FetchResponse {
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(FETCH_WAIT_MAX);
    let deadline = Instant::now() + wait;
    loop {
        let seen = shard.appended.generation();
        let (response, bytes, errors) = read(shard, &req, version).await;
        let now = Instant::now();
        if bytes >= req.min_bytes.max(1) as usize || errors || now >= deadline {
            return response;
        }
        future::or(shard.appended.changed(seen), async {
            glommio::timer::sleep(deadline - now).await;
        })
        .await;
    }
}

/// One pass over the requested partitions: the response, the record bytes
/// in it, and whether any partition had an error.
async fn read(shard: &Shard, req: &FetchRequest, version: i16) -> (FetchResponse, usize, bool) {
    let mut remaining = if req.max_bytes <= 0 {
        usize::MAX
    } else {
        req.max_bytes as usize
    };
    let mut total = 0usize;
    let mut errors = false;
    let mut r = FetchResponse::default();
    for topic in &req.topics {
        let mut t = FetchableTopicResponse::default();
        t.topic = topic.topic.clone();
        for fp in &topic.partitions {
            let mut p = PartitionData::default();
            p.partition_index = fp.partition;
            p.high_watermark = -1;
            p.last_stable_offset = -1;
            p.log_start_offset = -1;
            p.preferred_read_replica = (-1).into();
            p.aborted_transactions = Some(Vec::new());
            let Some(partition) = shard.partition(topic.topic.0.as_str(), fp.partition) else {
                p.error_code = ErrorCode::UnknownTopicOrPartition.code();
                errors = true;
                t.partitions.push(p);
                continue;
            };
            let hw = partition.next_offset() as i64;
            p.high_watermark = hw;
            p.last_stable_offset = hw;
            if version >= 5 {
                p.log_start_offset = partition.log_start() as i64;
            }
            let limit = (fp.partition_max_bytes.max(0) as usize).min(remaining);
            if limit == 0 && total > 0 {
                p.records = Some(Bytes::new());
                t.partitions.push(p);
                continue;
            }
            let offset = u64::try_from(fp.fetch_offset).unwrap_or(u64::MAX);
            match read_records(&partition, offset, limit.max(1)).await {
                Ok(records) => {
                    total += records.len();
                    remaining = remaining.saturating_sub(records.len());
                    p.records = Some(records);
                }
                Err(e) => {
                    p.error_code = ErrorCode::from(&e).code();
                    errors = true;
                }
            }
            t.partitions.push(p);
        }
        r.responses.push(t);
    }
    (r, total, errors)
}

async fn read_records(
    partition: &crate::log::Partition,
    offset: u64,
    max_bytes: usize,
) -> Result<Bytes, LogError> {
    let chunk = partition.read(offset, max_bytes).await?;
    match chunk {
        ReadChunk::Empty => Ok(Bytes::new()),
        ReadChunk::Cached(parts) => Ok(parts.concat().into()),
        ReadChunk::File(slice) => {
            let io = |e| LogError::Io {
                context: "reading a segment for fetch".into(),
                source: e,
            };
            let file = slice.file.try_clone().map_err(io)?;
            let bytes = glommio::executor()
                .spawn_blocking(move || {
                    use std::os::unix::fs::FileExt;
                    let mut out = vec![0u8; slice.len as usize];
                    file.read_exact_at(&mut out, slice.position).map(|()| out)
                })
                .await;
            bytes.map(Bytes::from).map_err(io)
        }
    }
}
