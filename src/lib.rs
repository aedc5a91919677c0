//! strom: a Kafka-compatible message broker, thread-per-core on io_uring.
//!
//! # Layout
//! - `log/`: partition logs — RecordBatches in direct-I/O segment files,
//!   indexes, tail cache, group commit, recovery, retention. Knows nothing
//!   of the network.
//! - `protocol/`: the Kafka wire protocol edge; today the error codes typed
//!   errors map to.
//!
//! Still to come, as DESIGN.md draws them: `shard/` (executors, mesh,
//! routing), `net/` (listener, framing, sendfile), `group/`, `txn/`,
//! `cluster/`, `metrics/`, `bench/`.

pub mod log;
pub mod protocol;
