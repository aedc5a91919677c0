//! The consuming side of `strom bench`: consumer connections that fetch the
//! bench topic's partitions (split round-robin between them) and measure
//! end-to-end latency — from each message's intended send time, which the
//! producer writes into the first 8 bytes of its value, to the moment the
//! consumer decodes it.

use super::client::KafkaClient;
use super::latency_histogram;
use super::{BenchArgs, Totals};
use crate::log::RecordBatch;
use bytes::Bytes;
use hdrhistogram::Histogram;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Fetch v11: sessionless, topic names (not ids), every broker since 2.3.
const FETCH_VERSION: i16 = 11;
/// How long consumers keep reading after the producers finished.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

pub struct ConsumeResult {
    pub consumed: u64,
    pub bytes: u64,
    pub first: Option<Instant>,
    pub last: Option<Instant>,
    /// End-to-end latency, microseconds.
    pub latency: Histogram<u64>,
}

impl ConsumeResult {
    /// Adds another shard's result.
    pub fn merge(&mut self, other: ConsumeResult) {
        self.consumed += other.consumed;
        self.bytes += other.bytes;
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = self.last.max(other.last);
        let _ = self.latency.add(&other.latency);
    }

    /// First to last fetched message.
    pub fn elapsed(&self) -> Duration {
        match (self.first, self.last) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        }
    }
}

/// What this shard's consumers share: the epoch of the send times in
/// values, the warm-up end, the totals of every bench shard (to know when
/// everything sent was consumed), and this shard's counts.
pub struct Shared {
    pub start: Instant,
    pub warm: Instant,
    pub totals: Arc<Totals>,
    consumed: Cell<u64>,
    bytes: Cell<u64>,
    first: Cell<Option<Instant>>,
    last: Cell<Option<Instant>>,
    latency: RefCell<Histogram<u64>>,
}

impl Shared {
    pub fn new(start: Instant, warm: Instant, totals: Arc<Totals>) -> Rc<Shared> {
        Rc::new(Shared {
            start,
            warm,
            totals,
            consumed: Cell::new(0),
            bytes: Cell::new(0),
            first: Cell::new(None),
            last: Cell::new(None),
            latency: RefCell::new(latency_histogram()),
        })
    }

    pub fn result(&self) -> ConsumeResult {
        ConsumeResult {
            consumed: self.consumed.get(),
            bytes: self.bytes.get(),
            first: self.first.get(),
            last: self.last.get(),
            latency: self.latency.borrow().clone(),
        }
    }
}

/// Connects the consumers and finds where each partition starts (the log
/// end, or its start with `--from-earliest`); returns one task per consumer.
pub async fn start(
    args: &BenchArgs,
    consumer_ids: &[usize],
    partitions: i32,
    shared: &Rc<Shared>,
) -> anyhow::Result<Vec<glommio::Task<anyhow::Result<()>>>> {
    let mut tasks = Vec::with_capacity(consumer_ids.len());
    for &id in consumer_ids {
        let mine: Vec<i32> = (0..partitions)
            .filter(|p| *p as usize % args.consumers == id)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut client = KafkaClient::connect(&args.bootstrap).await?;
        let offsets = start_offsets(&mut client, &args.topic, &mine, args.from_earliest).await?;
        let (topic, shared) = (args.topic.clone(), shared.clone());
        tasks.push(glommio::spawn_local(consume(
            client, topic, offsets, shared,
        )));
    }
    Ok(tasks)
}

pub(super) async fn start_offsets(
    client: &mut KafkaClient,
    topic: &str,
    partitions: &[i32],
    earliest: bool,
) -> anyhow::Result<Vec<(i32, i64)>> {
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = partitions
        .iter()
        .map(|&p| {
            let mut lp = ListOffsetsPartition::default();
            lp.partition_index = p;
            lp.timestamp = if earliest { -2 } else { -1 };
            lp
        })
        .collect();
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics = vec![t];
    let r: ListOffsetsResponse = client.call(ApiKey::ListOffsets, 1, &req).await?;
    Ok(r.topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| (p.partition_index, p.offset.max(0)))
        .collect())
}

async fn consume(
    mut client: KafkaClient,
    topic: String,
    mut offsets: Vec<(i32, i64)>,
    shared: Rc<Shared>,
) -> anyhow::Result<()> {
    while !shared.totals.all_consumed(DRAIN_GRACE) {
        fetch_once(&mut client, &topic, &mut offsets, &shared).await?;
    }
    Ok(())
}

/// One Fetch of `offsets`' partitions; accounts for what came and moves
/// the offsets on. Returns the partitions that returned records.
pub(super) async fn fetch_once(
    client: &mut KafkaClient,
    topic: &str,
    offsets: &mut [(i32, i64)],
    shared: &Shared,
) -> anyhow::Result<Vec<i32>> {
    let response: FetchResponse = client
        .call(ApiKey::Fetch, FETCH_VERSION, &fetch_request(topic, offsets))
        .await?;
    let now = Instant::now();
    let mut with_data = Vec::new();
    for t in &response.responses {
        for p in &t.partitions {
            let Some(slot) = offsets.iter_mut().find(|(i, _)| *i == p.partition_index) else {
                continue;
            };
            if p.error_code != 0 {
                anyhow::bail!(
                    "fetch of partition {} failed with error code {}",
                    p.partition_index,
                    p.error_code
                );
            }
            if let Some(records) = &p.records {
                let before = slot.1;
                slot.1 = take(records.clone(), slot.1, now, shared);
                if slot.1 > before {
                    with_data.push(p.partition_index);
                }
            }
        }
    }
    Ok(with_data)
}

/// Accounts for every record at or after `offset`; returns the next offset.
fn take(mut records: Bytes, offset: i64, now: Instant, shared: &Shared) -> i64 {
    let mut latency = shared.latency.borrow_mut();
    let before = shared.consumed.get();
    // Each record at or after `offset`: its end-to-end latency, counted.
    let mut account = |at: i64, value: &[u8]| {
        if at < offset {
            return;
        }
        if let Some(stamp) = value.get(..8) {
            let intended = shared.start
                + Duration::from_micros(u64::from_be_bytes(stamp.try_into().expect("8 bytes")));
            if intended >= shared.warm {
                latency.saturating_record(
                    now.saturating_duration_since(intended).as_micros().max(1) as u64,
                );
            }
        }
        shared.consumed.set(shared.consumed.get() + 1);
        shared.bytes.set(shared.bytes.get() + value.len() as u64);
    };
    let mut next = offset;
    // A broker may end a response with a partial batch: stop there.
    while let Ok(batch) = RecordBatch::split_first(&mut records) {
        if batch.compression() == 0 {
            // Read in place: no copy and no allocation per record.
            for r in batch.records() {
                account(
                    batch.base_offset() + i64::from(r.offset_delta),
                    r.value.unwrap_or_default(),
                );
            }
        } else {
            // Compressed: decoded by the kafka-protocol codecs, as a
            // client would.
            let mut raw = batch.as_bytes().clone();
            match RecordBatchDecoder::decode(&mut raw) {
                Ok(set) => {
                    for r in &set.records {
                        account(r.offset, r.value.as_deref().unwrap_or_default());
                    }
                }
                Err(e) => tracing::warn!(
                    "undecodable compressed batch at {}: {e}",
                    batch.base_offset()
                ),
            }
        }
        next = next.max(batch.last_offset() + 1);
        shared.first.set(shared.first.get().or(Some(now)));
        shared.last.set(Some(now));
    }
    let taken = shared.consumed.get() - before;
    shared.totals.consumed.fetch_add(taken, Ordering::Relaxed);
    next
}

fn fetch_request(topic: &str, offsets: &[(i32, i64)]) -> FetchRequest {
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = offsets
        .iter()
        .map(|&(p, o)| {
            let mut fp = FetchPartition::default();
            fp.partition = p;
            fp.fetch_offset = o;
            fp.partition_max_bytes = 1 << 20;
            fp.log_start_offset = -1;
            fp.current_leader_epoch = -1;
            fp
        })
        .collect();
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = 100;
    req.min_bytes = 1;
    req.max_bytes = 50 << 20;
    req.session_epoch = -1;
    req.topics = vec![t];
    req
}
