//! strom: a Kafka-compatible message broker, thread-per-core on io_uring.
//!
//! # Layout
//! - `net/`: listener, Kafka framing, one task per connection, `/metrics`
//!   over HTTP. Knows nothing of files.
//! - `protocol/`: the Kafka wire protocol edge — header decoding, the
//!   dispatch table, one file per API; wire integers become strom's types
//!   (checked, in `wire`) and typed errors become Kafka error codes, here
//!   and nowhere else.
//! - `broker`: what one shard runs of the broker — its `Shard` and the
//!   coordinators built on it — and the channel meshes they call peers on.
//! - `group/`: consumer groups — the coordinator, one `Call` per group
//!   request (`calls`), the rebalance state machine, committed offsets in
//!   the internal `__consumer_offsets` log. Built on `shard`.
//! - `shard/`: one executor's share of the data — topic table copy, owned
//!   partitions, and `Router<T>`, the one typed way to run work on another
//!   shard: `fan_out` is the side that accepted a request, `owner_calls`
//!   what the owner runs.
//! - `log/`: partition logs — `Offset`s, RecordBatches in direct-I/O
//!   segment files, indexes, tail cache, durability (`Durability`, group
//!   commit), recovery, retention, and `LogDir`, the one way to open a
//!   partition. Knows nothing of the network.
//! - `txn/`: exactly-once — producer ids for idempotent producers (the
//!   transaction coordinator comes next). Built on `shard`.
//! - `metrics/`: per-shard latency histograms and counters, merged for
//!   `/metrics` (Prometheus text) and `strom stats`.
//! - `config`: the broker's settings, by Kafka's names.
//! - `bench/`: `strom bench`, a Kafka-protocol load generator (a tool; it
//!   uses `net::frame` and `log::batch`, nothing depends on it).
//!
//! Dependencies point inward, with no cycle:
//! net → protocol → broker → {group, txn} → shard → config → log, and
//! `metrics` beside them all. Still to come, as DESIGN.md draws it:
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
pub mod txn;
