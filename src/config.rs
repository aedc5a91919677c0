//! `BrokerConfig`: the settings of one broker, from `strom serve` flags,
//! with Kafka's config names where Kafka has one. One copy, shared
//! read-only by every shard.

use crate::log::LogConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Where every shard listens (SO_REUSEPORT spreads connections).
    pub listen: SocketAddr,
    /// `advertised.listeners`: the host and port clients are told to use.
    pub advertised_host: String,
    pub advertised_port: u16,
    pub data_dir: PathBuf,
    /// Executors, one per core.
    pub shards: usize,
    /// `broker.id` / `node.id`.
    pub node_id: i32,
    pub cluster_id: String,
    /// `num.partitions`: partitions of topics created without a count.
    pub num_partitions: u32,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `socket.request.max.bytes`: larger frames close the connection.
    /// Kafka's default, 100 MiB.
    pub socket_request_max_bytes: usize,
    /// `fetch.max.bytes`: the most a fetch response carries, whatever the
    /// client asks (Kafka's default, 55 MiB; at least 1024). Cold reads
    /// hold at most this much in memory per fetch and owner shard.
    pub fetch_max_bytes: usize,
    /// `max.broker.partitions` (KIP-578): partitions this broker holds at
    /// most, counted over the topic table; CreateTopics and
    /// CreatePartitions past it are refused. The file descriptors left
    /// bound it too (`shard::partition_budget`). Default: no limit but
    /// that.
    pub max_broker_partitions: u64,
    /// Broker-wide defaults of every topic's log (`log.segment.bytes`, ...).
    pub log: LogConfig,
    /// strom (`connection.pipeline.depth`): requests of one connection
    /// handled at once, answers still in order. 1 is Kafka's one-at-a-time;
    /// 8 covers librdkafka's default of 5 produce requests in flight, which
    /// then share fdatasyncs (tuning.md).
    pub pipeline_depth: usize,
    /// strom (`metrics.listen`): where `/metrics` is served; None turns it
    /// off. Default 127.0.0.1:9644.
    pub metrics_listen: Option<SocketAddr>,
    /// `socket.send.buffer.bytes` / `socket.receive.buffer.bytes`: SO_SNDBUF
    /// and SO_RCVBUF of client connections; -1 leaves the kernel's
    /// autotuning (strom's default; Kafka's is 102400 — tuning.md).
    pub socket_send_buffer_bytes: i32,
    pub socket_receive_buffer_bytes: i32,
    /// strom (`shard.spin.before.park.us`): how long an idle shard polls
    /// before it parks. Parking costs a membarrier (IPIs to every core the
    /// broker runs on) and an eventfd wake-up from whoever sends next;
    /// spinning costs the core (tuning.md). 0: park at once.
    pub spin_before_park_us: u64,
    /// strom (`shard.blocking.threads`): threads per shard for blocking
    /// work — `sendfile` of cold reads, deleting files — unpinned. glommio's
    /// default is one, pinned to the shard's core, which serialises every
    /// cold fetch of a shard behind one disk read (tuning.md).
    pub blocking_threads: usize,
    /// strom (`shard.io.memory.bytes`): glommio's registered I/O buffer
    /// arena per shard; locked memory, so RLIMIT_MEMLOCK must cover
    /// shards x this or glommio falls back to unregistered buffers
    /// (tuning.md). 32 MiB: write buffers plus each partition's cold read
    /// and read-ahead (glommio's 10 MiB made cold reads fall back to
    /// freshly mapped memory).
    pub io_memory_bytes: usize,
    /// Consumer groups (`group.*`, `offsets.*`).
    pub group: GroupConfig,
    /// Transactions (`transaction.*`).
    pub txn: TxnConfig,
    /// Test hook (hidden flag `--crash-on-produce-to`): a produce to this
    /// topic panics on its owner shard, so tests can prove a panic stops
    /// the whole broker and a restart recovers everything acknowledged.
    pub crash_on_produce_to: Option<String>,
}

/// The group settings, by Kafka's broker config names.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms` (Kafka: 6000).
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms` (Kafka: 1800000).
    pub max_session_timeout: Duration,
    /// `group.initial.rebalance.delay.ms` (Kafka: 3000).
    pub initial_rebalance_delay: Duration,
    /// `offsets.topic.num.partitions`: fixed once a data dir has groups.
    /// (Kafka: 50; strom: 8 — each is a log with its own buffers.)
    pub offsets_partitions: u32,
    /// `offsets.retention.minutes` (Kafka: 7 days): offsets of an empty
    /// group older than this are dropped.
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms` (Kafka: 600000).
    pub offsets_retention_check_interval: Duration,
    /// `offset.metadata.max.bytes` (Kafka: 4096).
    pub offset_metadata_max_bytes: usize,
    /// `offsets.topic.segment.bytes` (Kafka: 104857600). A partition of
    /// the offsets log holding more than twice this is rewritten as a
    /// snapshot of its live records and its older segments deleted.
    pub offsets_segment_bytes: u64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout: Duration::from_millis(6_000),
            max_session_timeout: Duration::from_millis(1_800_000),
            initial_rebalance_delay: Duration::from_millis(3_000),
            offsets_partitions: 8,
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            offsets_retention_check_interval: Duration::from_millis(600_000),
            offset_metadata_max_bytes: 4096,
            offsets_segment_bytes: 100 << 20,
        }
    }
}

/// The transaction coordinator's settings, by Kafka's broker config
/// names.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms` (Kafka: 900000): a producer asking for
    /// a longer `transaction.timeout.ms` gets INVALID_TRANSACTION_TIMEOUT.
    pub max_timeout_ms: i32,
    /// `transaction.state.log.num.partitions`: fixed once a data dir has
    /// transactions. (Kafka: 50; strom: 8, as for the offsets log.)
    pub partitions: u32,
    /// `transaction.state.log.segment.bytes` (Kafka: 104857600); a
    /// partition holding twice this is compacted.
    pub segment_bytes: u64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`
    /// (Kafka: 10000): how often open transactions are checked against
    /// their timeout.
    pub abort_timed_out_interval: Duration,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: 900_000,
            partitions: 8,
            segment_bytes: 100 << 20,
            abort_timed_out_interval: Duration::from_millis(10_000),
        }
    }
}

/// Where `/metrics` is served unless told otherwise.
pub const METRICS_LISTEN_DEFAULT: &str = "127.0.0.1:9644";

impl BrokerConfig {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> BrokerConfig {
        BrokerConfig {
            listen,
            advertised_host: listen.ip().to_string(),
            advertised_port: listen.port(),
            data_dir,
            shards: 1,
            node_id: 0,
            cluster_id: "strom-cluster".to_string(),
            num_partitions: 1,
            auto_create_topics: true,
            socket_request_max_bytes: 100 << 20,
            fetch_max_bytes: 55 << 20,
            max_broker_partitions: i32::MAX.unsigned_abs().into(),
            log: LogConfig::default(),
            pipeline_depth: 8,
            metrics_listen: METRICS_LISTEN_DEFAULT.parse().ok(),
            socket_send_buffer_bytes: -1,
            socket_receive_buffer_bytes: -1,
            spin_before_park_us: 0,
            blocking_threads: 4,
            io_memory_bytes: 32 << 20,
            group: GroupConfig::default(),
            txn: TxnConfig::default(),
            crash_on_produce_to: None,
        }
    }
}

/// A setting strom refuses at startup.
#[derive(Debug, thiserror::Error)]
pub enum BrokerConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(String),
    #[error("{key} = {value}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

/// Broker-level names of the log settings and the topic config each one
/// defaults, with a multiplier to milliseconds where Kafka has hour and
/// minute variants.
const LOG_KEYS: &[(&str, &str, i64)] = &[
    ("log.segment.bytes", "segment.bytes", 1),
    ("log.roll.ms", "segment.ms", 1),
    ("log.roll.hours", "segment.ms", 3_600_000),
    ("log.retention.ms", "retention.ms", 1),
    ("log.retention.minutes", "retention.ms", 60_000),
    ("log.retention.hours", "retention.ms", 3_600_000),
    ("log.retention.bytes", "retention.bytes", 1),
    ("log.index.interval.bytes", "index.interval.bytes", 1),
    ("log.index.size.max.bytes", "segment.index.bytes", 1),
    ("message.max.bytes", "max.message.bytes", 1),
    ("log.flush.interval.messages", "flush.messages", 1),
    ("log.flush.interval.ms", "flush.ms", 1),
    ("log.preallocate", "preallocate", 1),
];

impl BrokerConfig {
    /// Applies a TOML file of Kafka broker settings. Keys may be written
    /// flat (`"log.segment.bytes" = 1048576`) or as TOML dotted keys and
    /// tables (`log.segment.bytes = 1048576`); both mean Kafka's name.
    /// Unknown keys are logged and ignored, as Kafka does.
    pub fn apply_file(&mut self, path: &std::path::Path) -> Result<(), BrokerConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| BrokerConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.apply_toml(&text)
    }

    pub fn apply_toml(&mut self, text: &str) -> Result<(), BrokerConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| BrokerConfigError::Parse(e.to_string()))?;
        let mut flat = Vec::new();
        flatten("", &toml::Value::Table(table), &mut flat);
        // `listeners` also sets the advertised address, so an explicit
        // `advertised.listeners` must come after it.
        flat.sort_by_key(|(k, _)| k == "advertised.listeners");
        for (key, value) in flat {
            self.apply(&key, &value)?;
        }
        Ok(())
    }

    /// Applies one setting by Kafka's broker config name. Unknown names are
    /// logged and ignored, as Kafka does.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<(), BrokerConfigError> {
        let s = Setting { key, value };
        let known = self.apply_listeners(&s)?
            || self.apply_broker(&s)?
            || self.apply_group(&s)?
            || self.apply_txn(&s)?
            || self.apply_strom(&s)?
            || self.apply_log(&s)?;
        if !known {
            tracing::warn!(key, "ignoring unknown broker config");
        }
        Ok(())
    }

    /// `listeners`, `advertised.listeners`.
    fn apply_listeners(&mut self, s: &Setting<'_>) -> Result<bool, BrokerConfigError> {
        let addr = s.value.rsplit("://").next().unwrap_or(s.value);
        match s.key {
            "listeners" | "listen" => {
                self.listen = addr.parse().map_err(|_| s.invalid("not host:port"))?;
                self.advertised_host = self.listen.ip().to_string();
                self.advertised_port = self.listen.port();
            }
            "advertised.listeners" => {
                let (host, port) = addr
                    .rsplit_once(':')
                    .ok_or_else(|| s.invalid("not host:port"))?;
                self.advertised_host = host.to_string();
                self.advertised_port = port.parse().map_err(|_| s.invalid("bad port"))?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Kafka's broker-wide settings.
    fn apply_broker(&mut self, s: &Setting<'_>) -> Result<bool, BrokerConfigError> {
        match s.key {
            "log.dirs" | "log.dir" => self.data_dir = PathBuf::from(s.value),
            "broker.id" | "node.id" => self.node_id = s.clamped(-1, i64::from(i32::MAX))? as i32,
            "num.partitions" => self.num_partitions = s.clamped(1, i64::from(i32::MAX))? as u32,
            "default.replication.factor" if s.value == "1" => {}
            "default.replication.factor" => return Err(s.invalid("a single broker has 1 replica")),
            "auto.create.topics.enable" => {
                self.auto_create_topics = s.value.parse().map_err(|_| s.invalid("not a boolean"))?
            }
            "fetch.max.bytes" => self.fetch_max_bytes = s.clamped(1024, i64::MAX)? as usize,
            "max.broker.partitions" => self.max_broker_partitions = s.clamped(0, i64::MAX)? as u64,
            "socket.request.max.bytes" => {
                self.socket_request_max_bytes = s.clamped(64, i64::MAX)? as usize
            }
            "socket.send.buffer.bytes" => {
                self.socket_send_buffer_bytes = s.clamped(-1, i64::from(i32::MAX))? as i32
            }
            "socket.receive.buffer.bytes" => {
                self.socket_receive_buffer_bytes = s.clamped(-1, i64::from(i32::MAX))? as i32
            }
            "log.retention.check.interval.ms" => {
                self.log.retention_check_interval_ms = s.clamped(1, i64::MAX)?
            }
            "producer.id.expiration.ms" => {
                self.log.producer_id_expiration_ms = s.clamped(1, i64::MAX)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Consumer groups: `group.*`, `offsets.*`.
    fn apply_group(&mut self, s: &Setting<'_>) -> Result<bool, BrokerConfigError> {
        let g = &mut self.group;
        match s.key {
            "group.min.session.timeout.ms" => g.min_session_timeout = millis(s.number()?),
            "group.max.session.timeout.ms" => g.max_session_timeout = millis(s.number()?),
            "group.initial.rebalance.delay.ms" => g.initial_rebalance_delay = millis(s.number()?),
            "offsets.topic.num.partitions" => g.offsets_partitions = s.clamped(1, 1000)? as u32,
            "offsets.retention.minutes" => {
                g.offsets_retention = millis(s.number()?.saturating_mul(60_000))
            }
            "offsets.retention.check.interval.ms" => {
                g.offsets_retention_check_interval = millis(s.clamped(1, i64::MAX)?)
            }
            "offsets.topic.segment.bytes" => {
                // As topic segment.bytes: positions in a segment are u32.
                g.offsets_segment_bytes = s.clamped(4096, i64::from(i32::MAX))? as u64
            }
            "offset.metadata.max.bytes" => {
                g.offset_metadata_max_bytes = s.clamped(0, i64::MAX)? as usize
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Transactions: `transaction.*`.
    fn apply_txn(&mut self, s: &Setting<'_>) -> Result<bool, BrokerConfigError> {
        let t = &mut self.txn;
        match s.key {
            "transaction.max.timeout.ms" => {
                t.max_timeout_ms = s.clamped(1, i64::from(i32::MAX))? as i32
            }
            "transaction.state.log.num.partitions" => t.partitions = s.clamped(1, 1000)? as u32,
            "transaction.state.log.segment.bytes" => {
                t.segment_bytes = s.clamped(4096, i64::from(i32::MAX))? as u64
            }
            "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                t.abort_timed_out_interval = millis(s.clamped(1, i64::MAX)?)
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// strom's own knobs (tuning.md).
    fn apply_strom(&mut self, s: &Setting<'_>) -> Result<bool, BrokerConfigError> {
        match s.key {
            "shards" => self.shards = s.clamped(1, 1 << 16)? as usize,
            "connection.pipeline.depth" => self.pipeline_depth = s.clamped(1, 64)? as usize,
            "shard.io.memory.bytes" => self.io_memory_bytes = s.clamped(0, 1 << 40)? as usize,
            "shard.blocking.threads" => self.blocking_threads = s.clamped(1, 256)? as usize,
            "shard.spin.before.park.us" => {
                self.spin_before_park_us = s.clamped(0, 1_000_000)? as u64
            }
            "log.tail.cache.bytes" => self.log.tail_cache_bytes = s.clamped(0, 1 << 40)? as usize,
            "log.zero.ahead.bytes" => self.log.zero_ahead_bytes = s.clamped(0, 1 << 30)? as u64,
            "log.read.ahead.bytes" => self.log.read_ahead_bytes = s.clamped(0, 1 << 40)? as usize,
            "log.write.buffer.bytes" => {
                self.log.write_buffer_bytes = s.clamped(4096, 1 << 30)? as usize
            }
            "log.cold.reads" => {
                self.log.cold_reads = match s.value {
                    "direct" => crate::log::ColdReads::Direct,
                    "sendfile" => crate::log::ColdReads::Sendfile,
                    _ => return Err(s.invalid("direct or sendfile")),
                }
            }
            "metrics.listen" => {
                self.metrics_listen = match s.value {
                    "" | "none" | "off" => None,
                    addr => Some(
                        addr.parse()
                            .map_err(|_| s.invalid("not host:port or none"))?,
                    ),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The broker-wide defaults of topic configs (`log.segment.bytes`, ...).
    fn apply_log(&mut self, s: &Setting<'_>) -> Result<bool, BrokerConfigError> {
        let Some(&(_, topic_key, scale)) = LOG_KEYS.iter().find(|(k, _, _)| *k == s.key) else {
            return Ok(false);
        };
        let value = if scale == 1 {
            s.value.to_string()
        } else {
            s.number()?.saturating_mul(scale).to_string()
        };
        self.log
            .set(topic_key, &value)
            .map_err(|e| s.invalid(e.reason))?;
        Ok(true)
    }
}

/// One setting being applied: its Kafka name and its value as written.
struct Setting<'a> {
    key: &'a str,
    value: &'a str,
}

impl Setting<'_> {
    fn invalid(&self, reason: &str) -> BrokerConfigError {
        BrokerConfigError::Invalid {
            key: self.key.to_string(),
            value: self.value.to_string(),
            reason: reason.to_string(),
        }
    }

    fn number(&self) -> Result<i64, BrokerConfigError> {
        self.value
            .parse::<i64>()
            .map_err(|_| self.invalid("not an integer"))
    }

    /// The number, held to [low, high] (so the casts after it fit).
    fn clamped(&self, low: i64, high: i64) -> Result<i64, BrokerConfigError> {
        Ok(self.number()?.clamp(low, high))
    }
}

fn millis(ms: i64) -> std::time::Duration {
    std::time::Duration::from_millis(ms.max(0) as u64)
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        toml::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_files_use_kafka_broker_names_flat_or_dotted() {
        let mut c = BrokerConfig::new("127.0.0.1:9092".parse().unwrap(), "./data".into());
        c.apply_toml(
            r#"
            "num.partitions" = 6
            auto.create.topics.enable = false
            log.segment.bytes = 1048576
            log.retention.hours = 2
            "producer.id.expiration.ms" = 60000
            [socket.request.max]
            bytes = 1000000
            "#,
        )
        .unwrap();
        assert_eq!(c.num_partitions, 6);
        assert!(!c.auto_create_topics);
        assert_eq!(c.log.segment_bytes, 1 << 20);
        assert_eq!(c.log.retention_ms, 7_200_000);
        assert_eq!(c.log.producer_id_expiration_ms, 60_000);
        assert_eq!(c.socket_request_max_bytes, 1_000_000);
        c.apply_toml(
            "\"advertised.listeners\" = \"PLAINTEXT://broker.example:9093\"\nlisteners = \"PLAINTEXT://127.0.0.1:9999\"",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(
            (c.advertised_host.as_str(), c.advertised_port),
            ("broker.example", 9093)
        );
        assert!(c.apply_toml("default.replication.factor = 3").is_err());
        assert!(c.apply_toml("log.segment.bytes = \"big\"").is_err());
        assert!(c.apply_toml("not toml at all [").is_err());
    }

    #[test]
    fn strom_knobs_and_the_metrics_address() {
        let mut c = BrokerConfig::new("127.0.0.1:9092".parse().unwrap(), "./data".into());
        assert_eq!(c.metrics_listen, "127.0.0.1:9644".parse().ok());
        c.apply_toml(
            r#"
            "socket.send.buffer.bytes" = 102400
            "socket.receive.buffer.bytes" = -1
            "shard.io.memory.bytes" = 67108864
            "shard.blocking.threads" = 2
            "shard.spin.before.park.us" = 50
            "log.tail.cache.bytes" = 262144
            "log.zero.ahead.bytes" = 0
            "fetch.max.bytes" = 1048576
            "metrics.listen" = "127.0.0.1:19644"
            "#,
        )
        .unwrap();
        assert_eq!(c.socket_send_buffer_bytes, 102_400);
        assert_eq!(c.socket_receive_buffer_bytes, -1);
        assert_eq!(c.io_memory_bytes, 64 << 20);
        assert_eq!(c.blocking_threads, 2);
        assert_eq!(c.spin_before_park_us, 50);
        assert_eq!(c.log.tail_cache_bytes, 256 << 10);
        assert_eq!(c.log.zero_ahead_bytes, 0);
        assert_eq!(c.fetch_max_bytes, 1 << 20);
        assert_eq!(c.metrics_listen, "127.0.0.1:19644".parse().ok());
        c.apply("metrics.listen", "none").unwrap();
        assert_eq!(c.metrics_listen, None);
        assert!(c.apply("metrics.listen", "somewhere").is_err());
    }
}
