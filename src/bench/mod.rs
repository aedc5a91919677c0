//! `strom bench`: a Kafka-protocol load generator with HDR latency
//! percentiles, usable against strom or any Kafka-API broker.
//!
//! N producer connections on one glommio executor, open-loop at a target
//! rate (latency is measured from each message's intended send time, so a
//! stalled broker cannot hide behind a slowed-down client — no coordinated
//! omission) or unbounded, with Kafka's batch.size and max.in.flight knobs;
//! optionally consumers tailing the topic for end-to-end latency. It
//! reports throughput and HDR latency percentiles, as text, `--json`, or
//! an `.hgrm` percentile distribution.
//!
//! A tool, not the broker: errors are `anyhow`.

pub mod client;
pub mod consumer;
pub mod producer;
pub mod report;

use anyhow::{bail, Context};
use client::KafkaClient;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::path::PathBuf;
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
    /// Produce requests in flight per connection (max.in.flight).
    #[arg(long, default_value_t = 5)]
    pub in_flight: usize,
    /// Consumer connections reading the topic while it is produced to,
    /// reporting end-to-end latency (send time is carried in each value).
    #[arg(long, default_value_t = 0)]
    pub consumers: usize,
    /// Consumers start at the log start instead of the log end.
    #[arg(long)]
    pub from_earliest: bool,
    /// Seconds at the start whose messages are not counted.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write the latency percentile distribution (HdrHistogram .hgrm text).
    #[arg(long)]
    pub hgrm: Option<PathBuf>,
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

/// Runs the benchmark on the calling thread (its own glommio executor).
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("strom-bench")
        .make()
        .map_err(|e| anyhow::anyhow!("starting the executor: {e}"))?;
    executor.run(async move {
        let partitions = ensure_topic(&args).await?;
        let epoch = Instant::now();
        let warm = epoch + Duration::from_secs_f64(args.warmup.max(0.0));
        let shared = consumer::Shared::new(epoch, warm)?;
        let consumers = consumer::start(&args, partitions, &shared).await?;
        if args.producers == 0 && (consumers.is_empty() || args.messages.is_none()) {
            bail!("--producers 0 needs --consumers and --messages (how many to read)");
        }
        let result = if args.producers == 0 {
            // Consume only: stop after --messages, or --duration plus the
            // drain grace.
            let until = Instant::now() + Duration::from_secs_f64(args.duration.max(0.0));
            shared
                .sent_total
                .set(Some((args.messages.unwrap_or(0), until)));
            producer::RunResult::empty()?
        } else {
            let result = producer::run(&args, partitions, epoch).await?;
            shared.sent_total.set(Some((result.sent, Instant::now())));
            result
        };
        let consumed = if consumers.is_empty() {
            None
        } else {
            for c in consumers {
                c.await?;
            }
            Some(shared.result())
        };
        report::print(&args, &result, consumed.as_ref())
    })
}

/// Makes sure the topic exists; returns its partition count.
async fn ensure_topic(args: &BenchArgs) -> anyhow::Result<i32> {
    let mut client = KafkaClient::connect(&args.bootstrap).await?;
    for attempt in 0..2 {
        let mut req = MetadataRequest::default();
        let mut t = MetadataRequestTopic::default();
        t.name = Some(TopicName(StrBytes::from_string(args.topic.clone())));
        req.topics = Some(vec![t]);
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
