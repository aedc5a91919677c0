//! The producing side of `strom bench`: one task per producer connection,
//! open-loop when a rate is set.
//!
//! Message i of a producer with rate r is due at `start + i / r`; its
//! latency is `acknowledged - due`, so time a message spent waiting in the
//! client because the broker was slow counts against the broker, as it
//! would for a real application (no coordinated omission). Without a rate,
//! a message is due when its batch is built. A batch takes every due
//! message up to `--batch-size` bytes; batches go round-robin over the
//! partitions; up to `--in-flight` requests are outstanding per connection.

use super::client::KafkaClient;
use super::BenchArgs;
use crate::log::batch::build;
use anyhow::bail;
use hdrhistogram::Histogram;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::rc::Rc;
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
    /// From the end of the warmup to the last acknowledgement.
    pub elapsed: Duration,
    /// Acknowledgement latency of counted messages, microseconds.
    pub latency: Histogram<u64>,
}

impl RunResult {
    /// The result of a run that produced nothing (consume-only).
    pub fn empty() -> anyhow::Result<RunResult> {
        Ok(RunResult {
            sent: 0,
            acked: 0,
            errors: 0,
            bytes: 0,
            elapsed: Duration::ZERO,
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)?,
        })
    }
}

struct Shared {
    sent: Cell<u64>,
    acked: Cell<u64>,
    errors: Cell<u64>,
    bytes: Cell<u64>,
    latency: RefCell<Histogram<u64>>,
    last_ack: Cell<Option<Instant>>,
}

/// `epoch` is what send times in message values count from (shared with
/// the consumers).
pub async fn run(args: &BenchArgs, partitions: i32, epoch: Instant) -> anyhow::Result<RunResult> {
    let acks = args.acks()?;
    let producers = args.producers.max(1);
    let shared = Rc::new(Shared {
        sent: Cell::new(0),
        acked: Cell::new(0),
        errors: Cell::new(0),
        bytes: Cell::new(0),
        latency: RefCell::new(Histogram::new_with_bounds(1, 3_600_000_000, 3)?),
        last_ack: Cell::new(None),
    });
    let mut clients = Vec::with_capacity(producers);
    for _ in 0..producers {
        clients.push(KafkaClient::connect(&args.bootstrap).await?);
    }
    let start = Instant::now();
    let warm = start + Duration::from_secs_f64(args.warmup.max(0.0));
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| glommio::spawn_local(show_progress(shared.clone(), args.message_size, start)));
    let mut tasks = Vec::with_capacity(producers);
    for (p, client) in clients.into_iter().enumerate() {
        let plan = Plan {
            id: p,
            partitions,
            acks,
            quota: args
                .messages
                .map(|m| m / producers as u64 + u64::from((p as u64) < m % producers as u64)),
            until: start + Duration::from_secs_f64(args.duration.max(0.0)),
            interval: (args.rate > 0)
                .then(|| Duration::from_secs_f64(producers as f64 / args.rate as f64)),
            per_batch: (args.batch_size / args.message_size.max(1)).max(1),
            in_flight: args.in_flight.max(1),
            message_size: args.message_size,
            topic: args.topic.clone(),
            start,
            warm,
            epoch,
        };
        tasks.push(glommio::spawn_local(produce(client, plan, shared.clone())));
    }
    for t in tasks {
        t.await?;
    }
    if let Some(p) = progress {
        p.cancel().await;
        eprintln!();
    }
    let end = shared.last_ack.get().unwrap_or_else(Instant::now);
    let latency = shared.latency.borrow().clone();
    Ok(RunResult {
        sent: shared.sent.get(),
        acked: shared.acked.get(),
        errors: shared.errors.get(),
        bytes: shared.bytes.get(),
        elapsed: end.saturating_duration_since(warm.min(end)),
        latency,
    })
}

struct Plan {
    id: usize,
    partitions: i32,
    acks: i16,
    quota: Option<u64>,
    until: Instant,
    interval: Option<Duration>,
    per_batch: usize,
    in_flight: usize,
    message_size: usize,
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

    /// How many messages, from `next`, are due now (at most a batch).
    fn due(&self, next: u64, now: Instant) -> usize {
        let cap = self.quota.map_or(self.per_batch as u64, |q| {
            (q - next).min(self.per_batch as u64)
        }) as usize;
        match self.interval {
            None => cap,
            Some(_) => (0..cap)
                .take_while(|&j| self.due_at(next + j as u64).is_some_and(|t| t <= now))
                .count(),
        }
    }
}

async fn produce(mut client: KafkaClient, plan: Plan, shared: Rc<Shared>) -> anyhow::Result<()> {
    let mut next = 0u64;
    let mut batches = 0usize;
    let mut in_flight: VecDeque<(i32, Vec<Instant>)> = VecDeque::new();
    loop {
        let now = Instant::now();
        let sending = !plan.sending_done(next, now);
        if sending && in_flight.len() < plan.in_flight {
            let due = plan.due(next, now);
            if due > 0 {
                let intended: Vec<Instant> = (0..due)
                    .map(|j| plan.due_at(next + j as u64).unwrap_or(now))
                    .collect();
                let partition = ((plan.id + batches) % plan.partitions as usize) as i32;
                let request = produce_request(&plan, partition, &intended);
                let correlation = client
                    .send(ApiKey::Produce, PRODUCE_VERSION, &request)
                    .await?;
                next += due as u64;
                batches += 1;
                shared.sent.set(shared.sent.get() + due as u64);
                if plan.acks == 0 {
                    acknowledge(&shared, &plan, &intended, Instant::now());
                } else {
                    in_flight.push_back((correlation, intended));
                }
                continue;
            }
            if in_flight.is_empty() {
                if let Some(t) = plan.due_at(next) {
                    glommio::timer::sleep(t.saturating_duration_since(now)).await;
                }
                continue;
            }
        } else if in_flight.is_empty() {
            return Ok(());
        }
        let (correlation, intended) = in_flight.pop_front().expect("a request in flight");
        let response: ProduceResponse = client
            .receive(ApiKey::Produce, PRODUCE_VERSION, correlation)
            .await?;
        let failed = response
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.error_code != 0);
        if let Some(p) = failed {
            shared
                .errors
                .set(shared.errors.get() + intended.len() as u64);
            if shared.errors.get() == intended.len() as u64 {
                eprintln!(
                    "produce error code {} (first of possibly many)",
                    p.error_code
                );
            }
            if p.error_code == 3 {
                bail!(
                    "topic {} or its partition {} is unknown",
                    plan.topic,
                    p.index
                );
            }
            continue;
        }
        acknowledge(&shared, &plan, &intended, Instant::now());
    }
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
        .bytes
        .set(shared.bytes.get() + counted * plan.message_size as u64);
    shared.last_ack.set(Some(at));
}

/// A request with one batch: a message per intended send time, each value
/// starting with that time in microseconds since the epoch (big-endian),
/// for the consumers' end-to-end latency.
fn produce_request(plan: &Plan, partition: i32, intended: &[Instant]) -> ProduceRequest {
    let now_ms = crate::log::partition::now_ms();
    let size = plan.message_size;
    let mut values = vec![b'x'; size * intended.len()];
    if size >= 8 {
        for (chunk, t) in values.chunks_exact_mut(size).zip(intended) {
            let stamp = t.saturating_duration_since(plan.epoch).as_micros() as u64;
            chunk[..8].copy_from_slice(&stamp.to_be_bytes());
        }
    }
    let records: Vec<build::Record<'_>> = values
        .chunks(size.max(1))
        .take(intended.len())
        .map(|value| build::Record {
            key: None,
            value: if size == 0 { &[] } else { value },
            timestamp_delta: 0,
        })
        .collect();
    let mut data = PartitionProduceData::default();
    data.index = partition;
    data.records = Some(build::batch(now_ms, &records));
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_string(plan.topic.clone()));
    topic.partition_data = vec![data];
    let mut request = ProduceRequest::default();
    request.acks = plan.acks;
    request.timeout_ms = 30_000;
    request.topic_data = vec![topic];
    request
}

/// A live line on the terminal: messages, rate, MB/s, p99 so far.
async fn show_progress(shared: Rc<Shared>, message_size: usize, start: Instant) {
    let mut last = (Instant::now(), 0u64);
    loop {
        glommio::timer::sleep(Duration::from_secs(1)).await;
        let now = Instant::now();
        let acked = shared.acked.get();
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
