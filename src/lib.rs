//! strom: a Kafka-compatible message broker, thread-per-core on io_uring.
//!
//! # Layout
//! - `net/`: listener, Kafka framing, one task per connection. Knows
//!   nothing of files.
//! - `protocol/`: the Kafka wire protocol edge — header decoding, the
//!   dispatch table, one file per API; typed errors become Kafka error codes.
//! - `shard/`: one executor's share of the broker — topic table, owned
//!   partitions, the signal that wakes long-polling fetches.
//! - `log/`: partition logs — RecordBatches in direct-I/O segment files,
//!   indexes, tail cache, group commit, recovery, retention. Knows nothing
//!   of the network.
//! - `metrics/`: per-shard latency histograms and counters, merged for
//!   `/metrics` (Prometheus text) and `strom stats`.
//! - `group/`: consumer groups — coordinator, rebalance state machine,
//!   committed offsets in the internal `__consumer_offsets` log.
//! - `config`: the broker's settings, by Kafka's names.
//! - `bench/`: `strom bench`, a Kafka-protocol load generator (a tool; it
//!   uses `net::frame` and `log::batch`, nothing depends on it).
//!
//! Dependencies point inward: net → protocol → shard → log. Still to come,
//! as DESIGN.md draws them: `txn/`,
//! `cluster/`.

pub mod bench;
pub mod broker;
pub mod config;
pub mod group;
pub mod log;
pub mod metrics;
pub mod net;
pub mod protocol;
pub mod shard;
