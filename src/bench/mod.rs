//! `strom bench`: a Kafka-protocol load generator with HDR latency
//! percentiles, usable against strom or any Kafka-API broker.
//!
//! Shard-per-core like the broker: `--shards` glommio executors, each
//! running its share of the producer and consumer connections with its
//! own histograms, merged at the end; the shards share only atomic totals
//! (for the progress line and for knowing when everything sent was
//! consumed). Producers are open-loop at a target rate (latency is
//! measured from each message's intended send time, so a stalled broker
//! cannot hide behind a slowed-down client — no coordinated omission) or
//! unbounded, with Kafka's batch.size, linger.ms, max.in.flight,
//! compression and keyed partitioning; consumers tail the topic for
//! end-to-end latency. Reports: text, `--json`, an `.hgrm` percentile
//! distribution, an SVG percentile plot.
//!
//! A tool, not the broker: errors are `anyhow`.

pub mod client;
pub mod compression;
pub mod consumer;
pub mod group;
pub mod partitioner;
pub mod plot;
pub mod producer;
pub mod report;
pub mod transaction;

use anyhow::{bail, Context};
use client::KafkaClient;
use hdrhistogram::Histogram;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// A broker to bootstrap from (strom or any Kafka-API broker).
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Topic to produce to; created with --partitions if missing.
    #[arg(long, default_value = "strom-bench")]
    pub topic: String,
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// Bytes of each message's value.
    #[arg(long, default_value_t = 1024)]
    pub message_size: usize,
    /// 0, 1 or all.
    #[arg(long, default_value = "1")]
    pub acks: String,
    /// Messages per second over all producers; 0 means as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Stop after this many messages (default: run for --duration).
    #[arg(long)]
    pub messages: Option<u64>,
    /// Seconds to run when --messages is not given.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Producer connections; 0 only consumes (`--consumers`, usually with
    /// `--from-earliest` and `--messages N`: read N messages, measuring
    /// fetch throughput without producing).
    #[arg(long, default_value_t = 4)]
    pub producers: usize,
    /// Bytes per batch (Kafka's batch.size): a batch holds at most this
    /// many bytes of values, and at least one message.
    #[arg(long, default_value_t = 16384)]
    pub batch_size: usize,
    /// Milliseconds a batch waits for more messages before it is sent
    /// partly full (Kafka's linger.ms; matters with --rate).
    #[arg(long, default_value_t = 0.0)]
    pub linger_ms: f64,
    /// Produce requests in flight per connection (max.in.flight).
    #[arg(long, default_value_t = 5)]
    pub in_flight: usize,
    /// Distinct message keys (0: unkeyed, batches round-robin over
    /// partitions); keyed messages go to murmur2(key) % partitions, as
    /// Kafka's default partitioner sends them.
    #[arg(long, default_value_t = 0)]
    pub keys: u64,
    /// Batch compression, as a producer's compression.type.
    #[arg(long, value_enum, default_value_t = compression::Compression::None)]
    pub compression: compression::Compression,
    /// Idempotent producers, as `enable.idempotence=true`: each connection
    /// asks for a producer id (InitProducerId) and numbers its batches per
    /// partition, so the broker checks and deduplicates them.
    #[arg(long)]
    pub idempotent: bool,
    /// Transactional producers: producer connection n uses transactional
    /// id `<ID>-n` and commits every `--txn-interval-ms`.
    #[arg(long, value_name = "ID")]
    pub transactional_id: Option<String>,
    /// With --transactional-id: how long each transaction runs before it
    /// is committed.
    #[arg(long, default_value_t = 100)]
    pub txn_interval_ms: u64,
    /// Executors the bench runs on, each with its share of producers and
    /// consumers (one per core, as the broker).
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Consumer connections reading the topic while it is produced to,
    /// reporting end-to-end latency (send time is carried in each value).
    #[arg(long, default_value_t = 0)]
    pub consumers: usize,
    /// Consumers start at the log start instead of the log end.
    #[arg(long)]
    pub from_earliest: bool,
    /// The consumers are members of this consumer group (range
    /// assignment, committed offsets) instead of splitting partitions
    /// among themselves. Needs `--shards 1`.
    #[arg(long)]
    pub group: Option<String>,
    /// With --group: member 0 leaves the group this many seconds after
    /// the group formed (when producing starts);
    /// the report gives the rebalance time (its LeaveGroup to all of its
    /// partitions read by the other members).
    #[arg(long)]
    pub leave_after: Option<f64>,
    /// Seconds at the start whose messages are not counted.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write the latency percentile distribution (HdrHistogram .hgrm text).
    #[arg(long)]
    pub hgrm: Option<PathBuf>,
    /// Write an SVG plot of latency by percentile (log axis).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// A latency histogram of the bench, in microseconds up to an hour.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// What the bench's shards share.
#[derive(Default)]
pub struct Totals {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub consumed: AtomicU64,
    /// Shards still producing.
    pub producing: AtomicUsize,
    /// When producing ended (set by the last shard to finish).
    pub produced_at: Mutex<Option<Instant>>,
    /// Shards whose consumers are positioned.
    ready: AtomicUsize,
    /// When producers start: set by the last shard to be ready.
    go: Mutex<Option<Instant>>,
}

impl Totals {
    /// Producing is over and everything sent was consumed, or `grace` has
    /// passed since producing ended.
    pub fn all_consumed(&self, grace: Duration) -> bool {
        if self.producing.load(Ordering::Acquire) > 0 {
            return false;
        }
        let ended = *self.produced_at.lock().unwrap_or_else(|e| e.into_inner());
        self.consumed.load(Ordering::Relaxed) >= self.sent.load(Ordering::Relaxed)
            || ended.is_some_and(|t| t.elapsed() > grace)
    }

    /// Waits until every shard's consumers are positioned (so none misses
    /// the first messages), then returns the common start of producing.
    async fn all_ready(&self, shards: usize) -> Instant {
        if self.ready.fetch_add(1, Ordering::AcqRel) + 1 == shards {
            *self.go.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        loop {
            if let Some(t) = *self.go.lock().unwrap_or_else(|e| e.into_inner()) {
                return t;
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    }

    fn finish_producing(&self) {
        if self.producing.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.produced_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
    }
}

impl BenchArgs {
    pub fn acks(&self) -> anyhow::Result<i16> {
        Ok(match self.acks.as_str() {
            "0" => 0,
            "1" => 1,
            "all" | "-1" => -1,
            other => bail!("--acks must be 0, 1 or all, not {other}"),
        })
    }
}

/// Runs the benchmark on `--shards` executors and reports.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let shards = args.shards.max(1);
    if args.group.is_some() && shards > 1 {
        bail!("--group runs on one bench shard: drop --shards");
    }
    if args.producers == 0 && (args.consumers == 0 || args.messages.is_none()) {
        bail!("--producers 0 needs --consumers and --messages (how many to read)");
    }
    let partitions = on_executor("strom-bench-setup", {
        let args = args.clone();
        move || async move { ensure_topic(&args).await }
    })?;
    let epoch = Instant::now();
    let warm = epoch + Duration::from_secs_f64(args.warmup.max(0.0));
    let totals = Arc::new(Totals::default());
    if args.producers == 0 {
        totals
            .sent
            .store(args.messages.unwrap_or(0), Ordering::Relaxed);
        *totals.produced_at.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(epoch + Duration::from_secs_f64(args.duration.max(0.0)));
    } else {
        totals.producing.store(shards, Ordering::Release);
    }
    let mut handles = Vec::with_capacity(shards);
    for shard in 0..shards {
        let (args, totals) = (args.clone(), totals.clone());
        let mine = move |n: usize| (0..n).filter(|i| i % shards == shard).collect::<Vec<_>>();
        let mut plan = producer::ShardPlan {
            producer_ids: mine(args.producers),
            partitions,
            start: epoch,
            warm,
            epoch,
            progress: shard == 0 && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        };
        let consumer_ids = mine(args.consumers);
        let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .name(&format!("strom-bench-{shard}"))
            .spawn(move || async move {
                let shared = consumer::Shared::new(epoch, warm, totals.clone());
                let rebalance = Rc::new(group::Rebalance::default());
                let consumers = match &args.group {
                    Some(g) => {
                        group::start(&args, g, partitions, &consumer_ids, &shared, &rebalance).await
                    }
                    None => consumer::start(&args, &consumer_ids, partitions, &shared).await,
                };
                // Every shard arrives, even a failed one, so none waits forever.
                plan.start = totals.all_ready(shards).await;
                let consumers = consumers?;
                let produced = if args.producers == 0 {
                    producer::RunResult::empty()
                } else {
                    let r = producer::run(&args, plan, totals.clone()).await;
                    totals.finish_producing();
                    r?
                };
                for c in consumers {
                    c.await?;
                }
                Ok::<_, anyhow::Error>((produced, shared.result(), rebalance.millis()))
            })
            .map_err(|e| anyhow::anyhow!("starting bench shard {shard}: {e}"))?;
        handles.push(handle);
    }
    let mut produced = producer::RunResult::empty();
    let mut consumed: Option<consumer::ConsumeResult> = None;
    let mut rebalance_ms = None;
    for (shard, handle) in handles.into_iter().enumerate() {
        let (p, c, r) = handle
            .join()
            .map_err(|e| anyhow::anyhow!("bench shard {shard}: {e}"))??;
        produced.merge(p);
        rebalance_ms = rebalance_ms.or(r);
        match &mut consumed {
            Some(all) => all.merge(c),
            None => consumed = Some(c),
        }
    }
    let consumed = consumed.filter(|_| args.consumers > 0);
    report::print(&args, &produced, warm, consumed.as_ref(), rebalance_ms)
}

/// Runs one future on a fresh executor thread and returns its output.
fn on_executor<T, F, G>(name: &str, make: G) -> anyhow::Result<T>
where
    G: FnOnce() -> F + Send + 'static,
    F: std::future::Future<Output = anyhow::Result<T>> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name(name)
        .spawn(make)
        .map_err(|e| anyhow::anyhow!("starting the executor: {e}"))?
        .join()
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?
}

/// Makes sure the topic exists; returns its partition count.
async fn ensure_topic(args: &BenchArgs) -> anyhow::Result<i32> {
    let mut client = KafkaClient::connect(&args.bootstrap).await?;
    for attempt in 0..2 {
        let mut req = MetadataRequest::default();
        let mut t = MetadataRequestTopic::default();
        t.name = Some(TopicName(StrBytes::from_string(args.topic.clone())));
        req.topics = Some(vec![t]);
        // Not auto-created: that would give it the broker's default
        // partition count instead of --partitions.
        req.allow_auto_topic_creation = false;
        let md: MetadataResponse = client.call(ApiKey::Metadata, 4, &req).await?;
        let topic = md.topics.first().context("metadata names no topic")?;
        if topic.error_code == 0 && !topic.partitions.is_empty() {
            return Ok(topic.partitions.len() as i32);
        }
        if attempt == 0 {
            let mut create = CreateTopicsRequest::default();
            let mut t = CreatableTopic::default();
            t.name = TopicName(StrBytes::from_string(args.topic.clone()));
            t.num_partitions = args.partitions;
            t.replication_factor = -1;
            create.topics = vec![t];
            create.timeout_ms = 30_000;
            let r: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 4, &create).await?;
            let code = r.topics.first().map_or(0, |t| t.error_code);
            // 36: TOPIC_ALREADY_EXISTS (a race with another creator).
            if code != 0 && code != 36 {
                bail!("creating topic {}: error code {code}", args.topic);
            }
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
    }
    bail!("topic {} has no partitions", args.topic)
}
