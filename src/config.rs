//! `BrokerConfig`: the settings of one broker, from `strom serve` flags,
//! with Kafka's config names where Kafka has one. One copy, shared
//! read-only by every shard.

use crate::log::LogConfig;
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// Broker-wide defaults of every topic's log (`log.segment.bytes`, ...).
    pub log: LogConfig,
}

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
            log: LogConfig::default(),
        }
    }
}
