//! The partition log: Kafka RecordBatches in direct-I/O segment files.
//!
//! Knows nothing of the network. A `Partition` is owned by one shard and
//! used from that shard's tasks only; nothing here is `Send`.
//!
//! - `batch`: RecordBatch v2 view, validation, offset assignment.
//! - `segment`: one `.log` with its `.index` / `.timeindex`; batch scanning.
//! - `appender`: the O_DIRECT write path of the active segment.
//! - `index`, `time_index`: the sparse indexes, Kafka's file formats.
//! - `tail_cache`: recent batches in memory for consumers at the tail.
//! - `partition`: append / read / flush / roll / retention / time lookup.
//! - `housekeeping`: `flush.ms` and retention, a timer per partition.
//! - `recovery`: truncating torn tails and rebuilding indexes on open.
//! - `log_dir`: where a partition lives in the data directory.
//! - `io_probe`: the glommio io-poll pitfall, handled once per thread.

pub mod appender;
pub mod batch;
pub mod config;
pub mod error;
pub mod housekeeping;
pub mod index;
pub mod io_probe;
pub mod log_dir;
pub mod partition;
pub mod recovery;
pub mod segment;
pub mod tail_cache;
pub mod time_index;

pub use batch::{BatchError, RecordBatch};
pub use config::{ColdReads, LogConfig};
pub use error::{LogError, Result};
pub use partition::{AppendInfo, Partition, ReadChunk};
pub use segment::FileSlice;
