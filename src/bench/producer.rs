//! The producing side of `strom bench`: one task pair per producer
//! connection — a sender and an acknowledgement reader — open-loop when a
//! rate is set.
//!
//! Message i of a producer with rate r is due at `start + i / r`; its
//! latency is `acknowledged - due`, so time a message spent waiting in the
//! client because the broker was slow counts against the broker, as it
//! would for a real application (no coordinated omission). Without a rate,
//! a message is due when its batch is built. A batch takes every due
//! message up to `--batch-size` bytes, or waits up to `--linger-ms` for
//! more; unkeyed batches go round-robin over the partitions, keyed
//! messages to their key's partition (Kafka's murmur2). Up to
//! `--in-flight` requests are outstanding per connection; the sender never
//! waits for an acknowledgement unless that many are.

use super::client::{KafkaClient, ResponseReader};
use super::latency_histogram;
use super::partitioner::partition_for;
use super::transaction::BenchTxn;
use super::{BenchArgs, Totals};
use crate::log::batch::build;
use crate::log::{ProducerEpoch, ProducerId};
use anyhow::bail;
use glommio::channels::local_channel::{self, LocalReceiver};
use glommio::sync::{Semaphore, StaticPermit};
use hdrhistogram::Histogram;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Produce v7: every broker since Kafka 2.1 speaks it, and it carries
/// RecordBatch v2 unchanged.
const PRODUCE_VERSION: i16 = 7;

pub struct RunResult {
    pub sent: u64,
    pub acked: u64,
    pub errors: u64,
    /// Value bytes of the counted (post-warmup) acknowledged messages.
    pub bytes: u64,
    /// When the last acknowledgement arrived.
    pub last_ack: Option<Instant>,
    /// Acknowledgement latency of counted messages, microseconds.
    pub latency: Histogram<u64>,
}

impl RunResult {
    /// The result of a run that produced nothing (consume-only).
    pub fn empty() -> RunResult {
        RunResult {
            sent: 0,
            acked: 0,
            errors: 0,
            bytes: 0,
            last_ack: None,
            latency: latency_histogram(),
        }
    }

    /// Adds another shard's result.
    pub fn merge(&mut self, other: RunResult) {
        self.sent += other.sent;
        self.acked += other.acked;
        self.errors += other.errors;
        self.bytes += other.bytes;
        self.last_ack = self.last_ack.max(other.last_ack);
        let _ = self.latency.add(&other.latency);
    }
}

/// This shard's producers' running totals.
struct Shared {
    sent: Cell<u64>,
    acked: Cell<u64>,
    errors: Cell<u64>,
    bytes: Cell<u64>,
    latency: RefCell<Histogram<u64>>,
    last_ack: Cell<Option<Instant>>,
    totals: Arc<Totals>,
}

/// What one shard of the bench produces: which producer connections it
/// runs (of `args.producers`), from when, and the clock of send stamps.
pub struct ShardPlan {
    pub producer_ids: Vec<usize>,
    pub partitions: i32,
    pub start: Instant,
    pub warm: Instant,
    pub epoch: Instant,
    /// Show the live progress line (one shard does).
    pub progress: bool,
}

pub async fn run(
    args: &BenchArgs,
    shard: ShardPlan,
    totals: Arc<Totals>,
) -> anyhow::Result<RunResult> {
    let acks = args.acks()?;
    let producers = args.producers.max(1);
    let shared = Rc::new(Shared {
        sent: Cell::new(0),
        acked: Cell::new(0),
        errors: Cell::new(0),
        bytes: Cell::new(0),
        latency: RefCell::new(latency_histogram()),
        last_ack: Cell::new(None),
        totals,
    });
    let mut clients = Vec::with_capacity(shard.producer_ids.len());
    for &p in &shard.producer_ids {
        let mut client = KafkaClient::connect(&args.bootstrap).await?;
        let (producer, txn) = match (&args.transactional_id, args.idempotent) {
            (Some(id), _) => {
                let interval = Duration::from_millis(args.txn_interval_ms);
                let id = format!("{id}-{p}");
                let txn =
                    BenchTxn::init(&args.bootstrap, id, &args.topic, shard.partitions, interval)
                        .await?;
                (Some((txn.producer, txn.epoch)), Some(txn))
            }
            (None, true) => (
                Some((init_producer_id(&mut client).await?, ProducerEpoch(0))),
                None,
            ),
            (None, false) => (None, None),
        };
        clients.push((client, producer, txn));
    }
    let start = shard.start;
    let progress = shard
        .progress
        .then(|| glommio::spawn_local(show_progress(shared.clone(), args.message_size, start)));
    let mut tasks = Vec::with_capacity(clients.len());
    for (&p, (client, producer, txn)) in shard.producer_ids.iter().zip(clients) {
        let plan = Plan {
            id: p,
            producer,
            transactional: txn.is_some(),
            sequences: RefCell::new(BTreeMap::new()),
            producers,
            partitions: shard.partitions,
            acks,
            quota: args
                .messages
                .map(|m| m / producers as u64 + u64::from((p as u64) < m % producers as u64)),
            until: start + Duration::from_secs_f64(args.duration.max(0.0)),
            interval: (args.rate > 0)
                .then(|| Duration::from_secs_f64(producers as f64 / args.rate as f64)),
            per_batch: (args.batch_size / args.message_size.max(1)).max(1),
            linger: Duration::from_secs_f64(args.linger_ms.max(0.0) / 1000.0),
            in_flight: args.in_flight.max(1),
            message_size: args.message_size,
            keys: args.keys,
            compression: args.compression,
            topic: args.topic.clone(),
            start,
            warm: shard.warm,
            epoch: shard.epoch,
        };
        tasks.push(glommio::spawn_local(produce(
            client,
            plan,
            txn,
            shared.clone(),
        )));
    }
    for t in tasks {
        t.await?;
    }
    if let Some(p) = progress {
        p.cancel().await;
        eprintln!();
    }
    let latency = shared.latency.borrow().clone();
    Ok(RunResult {
        sent: shared.sent.get(),
        acked: shared.acked.get(),
        errors: shared.errors.get(),
        bytes: shared.bytes.get(),
        last_ack: shared.last_ack.get(),
        latency,
    })
}

struct Plan {
    id: usize,
    /// The producer id and epoch of an idempotent or transactional
    /// producer.
    producer: Option<(ProducerId, ProducerEpoch)>,
    /// Its batches are transactional.
    transactional: bool,
    /// Its next sequence per partition.
    sequences: RefCell<BTreeMap<i32, i32>>,
    producers: usize,
    partitions: i32,
    acks: i16,
    quota: Option<u64>,
    until: Instant,
    interval: Option<Duration>,
    per_batch: usize,
    linger: Duration,
    in_flight: usize,
    message_size: usize,
    keys: u64,
    compression: super::compression::Compression,
    topic: String,
    start: Instant,
    warm: Instant,
    epoch: Instant,
}

impl Plan {
    fn due_at(&self, i: u64) -> Option<Instant> {
        self.interval.map(|d| self.start + d.mul_f64(i as f64))
    }

    fn sending_done(&self, next: u64, now: Instant) -> bool {
        match self.quota {
            Some(q) => next >= q,
            None => now >= self.until,
        }
    }

    /// How many messages may go in the batch starting at `next`.
    fn cap(&self, next: u64) -> usize {
        self.quota.map_or(self.per_batch as u64, |q| {
            (q - next).min(self.per_batch as u64)
        }) as usize
    }

    /// How many messages, from `next`, are due now (at most a batch).
    fn due(&self, next: u64, now: Instant) -> usize {
        let cap = self.cap(next);
        match self.interval {
            None => cap,
            Some(_) => (0..cap)
                .take_while(|&j| self.due_at(next + j as u64).is_some_and(|t| t <= now))
                .count(),
        }
    }

    /// When to look again if `due` messages from `next` do not make a
    /// batch yet: None to send now, else when the batch would be full or
    /// its oldest message has lingered long enough.
    fn wait_until(&self, next: u64, due: usize, now: Instant) -> Option<Instant> {
        let cap = self.cap(next);
        let oldest = self.due_at(next)?;
        if due == 0 {
            return Some(oldest);
        }
        if due >= cap || self.linger.is_zero() || self.sending_done(next + due as u64, now) {
            return None;
        }
        let lingered = oldest + self.linger;
        let full = self.due_at(next + cap as u64 - 1).unwrap_or(lingered);
        let until = lingered.min(full);
        (until > now).then_some(until)
    }

    /// The key of this producer's message `i`: keys are spread evenly over
    /// every producer's messages.
    fn key(&self, i: u64) -> Option<String> {
        (self.keys > 0).then(|| {
            format!(
                "key-{}",
                (self.id as u64 + i * self.producers as u64) % self.keys
            )
        })
    }
}

/// A request waiting for its acknowledgement.
struct Pending {
    correlation: i32,
    intended: Vec<Instant>,
    _slot: StaticPermit,
}

async fn produce(
    client: KafkaClient,
    plan: Plan,
    mut txn: Option<BenchTxn>,
    shared: Rc<Shared>,
) -> anyhow::Result<()> {
    let plan = Rc::new(plan);
    let (mut writer, reader) = client.split();
    let slots = Rc::new(Semaphore::new(plan.in_flight as u64));
    let (pending, acks) = local_channel::new_unbounded();
    let receiving = (plan.acks != 0)
        .then(|| glommio::spawn_local(receive_acks(reader, acks, plan.clone(), shared.clone())));
    let mut next = 0u64;
    let mut batches = 0usize;
    // Waits for every request in flight, then commits.
    async fn commit(txn: &mut BenchTxn, slots: &Semaphore, all: u64) -> anyhow::Result<()> {
        let drained = slots.acquire_permit(all).await;
        let _drained = drained.map_err(|e| anyhow::anyhow!("in-flight slots: {e}"))?;
        txn.commit().await
    }
    let all_slots = plan.in_flight as u64;
    let sending = async {
        loop {
            if let Some(t) = txn.as_mut().filter(|t| t.commit_due(Instant::now())) {
                commit(t, &slots, all_slots).await?;
            }
            let slot = slots
                .acquire_static_permit(1)
                .await
                .map_err(|e| anyhow::anyhow!("in-flight slots: {e}"))?;
            let now = loop {
                let now = Instant::now();
                if plan.sending_done(next, now) {
                    return Ok::<(), anyhow::Error>(());
                }
                let due = plan.due(next, now);
                match plan.wait_until(next, due, now) {
                    Some(t) => glommio::timer::sleep(t.saturating_duration_since(now)).await,
                    None => break now,
                }
            };
            if let Some(t) = txn.as_mut().filter(|t| !t.is_open()) {
                t.begin().await?;
            }
            let due = plan.due(next, now).max(1);
            let intended: Vec<Instant> = (0..due)
                .map(|j| plan.due_at(next + j as u64).unwrap_or(now))
                .collect();
            let request = produce_request(&plan, next, batches, &intended)?;
            let correlation = writer
                .send(ApiKey::Produce, PRODUCE_VERSION, &request)
                .await?;
            next += due as u64;
            batches += 1;
            shared.sent.set(shared.sent.get() + due as u64);
            shared.totals.sent.fetch_add(due as u64, Ordering::Relaxed);
            if plan.acks == 0 {
                acknowledge(&shared, &plan, &intended, Instant::now());
            } else {
                let _ = pending.try_send(Pending {
                    correlation,
                    intended,
                    _slot: slot,
                });
            }
        }
    };
    let mut sent = sending.await;
    if let Some(t) = txn.as_mut().filter(|t| t.is_open()) {
        if sent.is_ok() {
            sent = commit(t, &slots, all_slots).await;
        }
    }
    drop(pending);
    if let Some(r) = receiving {
        r.await?;
    }
    sent
}

/// Reads acknowledgements in request order and times each message.
async fn receive_acks(
    mut reader: ResponseReader,
    acks: LocalReceiver<Pending>,
    plan: Rc<Plan>,
    shared: Rc<Shared>,
) -> anyhow::Result<()> {
    while let Some(p) = acks.recv().await {
        let response: ProduceResponse = reader
            .receive(ApiKey::Produce, PRODUCE_VERSION, p.correlation)
            .await?;
        let failed = response
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .find(|r| r.error_code != 0);
        if let Some(r) = failed {
            let n = p.intended.len() as u64;
            shared.errors.set(shared.errors.get() + n);
            if shared.errors.get() == n {
                eprintln!(
                    "produce error code {} (first of possibly many)",
                    r.error_code
                );
            }
            if r.error_code == 3 {
                bail!(
                    "topic {} or its partition {} is unknown",
                    plan.topic,
                    r.index
                );
            }
            continue;
        }
        acknowledge(&shared, &plan, &p.intended, Instant::now());
    }
    Ok(())
}

fn acknowledge(shared: &Shared, plan: &Plan, intended: &[Instant], at: Instant) {
    let mut latency = shared.latency.borrow_mut();
    let mut counted = 0u64;
    for &t in intended {
        if t >= plan.warm {
            latency.saturating_record(at.saturating_duration_since(t).as_micros().max(1) as u64);
            counted += 1;
        }
    }
    shared.acked.set(shared.acked.get() + intended.len() as u64);
    shared
        .totals
        .acked
        .fetch_add(intended.len() as u64, Ordering::Relaxed);
    shared
        .bytes
        .set(shared.bytes.get() + counted * plan.message_size as u64);
    shared.last_ack.set(Some(at));
}

/// A request for messages `first..first + intended.len()`, each value
/// starting with its intended send time in microseconds since the epoch
/// (big-endian), for the consumers' end-to-end latency. Unkeyed: one batch
/// to the next partition round-robin; keyed: a batch per key partition.
fn produce_request(
    plan: &Plan,
    first: u64,
    batch_number: usize,
    intended: &[Instant],
) -> anyhow::Result<ProduceRequest> {
    let now_ms = crate::log::partition::now_ms();
    let size = plan.message_size;
    let mut values = vec![b'x'; size * intended.len()];
    if size >= 8 {
        for (chunk, t) in values.chunks_exact_mut(size).zip(intended) {
            let stamp = t.saturating_duration_since(plan.epoch).as_micros() as u64;
            chunk[..8].copy_from_slice(&stamp.to_be_bytes());
        }
    }
    let keys: Vec<Option<String>> = (0..intended.len() as u64)
        .map(|j| plan.key(first + j))
        .collect();
    let round_robin = ((plan.id + batch_number) % plan.partitions.max(1) as usize) as i32;
    let mut by_partition: BTreeMap<i32, Vec<build::Record<'_>>> = BTreeMap::new();
    for (j, key) in keys.iter().enumerate() {
        let value = if size == 0 {
            &[][..]
        } else {
            &values[j * size..(j + 1) * size]
        };
        let key = key.as_deref().map(str::as_bytes);
        let partition = key.map_or(round_robin, |k| partition_for(k, plan.partitions));
        by_partition
            .entry(partition)
            .or_default()
            .push(build::Record {
                key,
                value,
                timestamp_delta: 0,
            });
    }
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_string(plan.topic.clone()));
    for (partition, records) in by_partition {
        let mut data = PartitionProduceData::default();
        data.index = partition;
        let count = records.len();
        let mut batch = plan.compression.batch(now_ms, &records)?;
        if let Some((producer, epoch)) = plan.producer {
            let mut sequences = plan.sequences.borrow_mut();
            let seq = sequences.entry(partition).or_insert(0);
            batch = match plan.transactional {
                true => build::transactional(&batch, producer, epoch, *seq),
                false => build::with_producer(&batch, producer, epoch, *seq),
            };
            *seq = seq.wrapping_add(count as i32) & i32::MAX;
        }
        data.records = Some(batch);
        topic.partition_data.push(data);
    }
    let mut request = ProduceRequest::default();
    request.acks = plan.acks;
    request.timeout_ms = 30_000;
    request.topic_data = vec![topic];
    Ok(request)
}

/// A producer id for an idempotent producer, as librdkafka asks for one.
async fn init_producer_id(client: &mut KafkaClient) -> anyhow::Result<ProducerId> {
    let mut request = InitProducerIdRequest::default();
    request.transactional_id = None;
    request.transaction_timeout_ms = -1;
    let response: InitProducerIdResponse = client.call(ApiKey::InitProducerId, 4, &request).await?;
    if response.error_code != 0 {
        bail!("InitProducerId answered error code {}", response.error_code);
    }
    Ok(ProducerId(response.producer_id.0))
}

/// A live line on the terminal: messages, rate, MB/s over every bench
/// shard; p99 so far of this shard's producers.
async fn show_progress(shared: Rc<Shared>, message_size: usize, start: Instant) {
    let mut last = (Instant::now(), 0u64);
    loop {
        glommio::timer::sleep(Duration::from_secs(1)).await;
        let now = Instant::now();
        let acked = shared.totals.acked.load(Ordering::Relaxed);
        let secs = now.duration_since(last.0).as_secs_f64();
        let rate = (acked - last.1) as f64 / secs;
        let p99 = shared.latency.borrow().value_at_quantile(0.99) as f64 / 1000.0;
        eprint!(
            "\r{:>6.1}s  {acked:>10} msgs  {rate:>9.0} msg/s  {:>8.1} MB/s  p99 {p99:>8.2} ms   ",
            now.duration_since(start).as_secs_f64(),
            rate * message_size as f64 / 1e6
        );
        last = (now, acked);
    }
}
