//! The partition log: Kafka RecordBatches in direct-I/O segment files.
//!
//! Knows nothing of the network. A `Partition` is owned by one shard and
//! used from that shard's tasks only; nothing here is `Send`.
//!
//! - `offset`: `Offset`, `LeaderEpoch`, `ProducerId`: what a log counts.
//! - `batch`: RecordBatch v2 view, validation, offset assignment.
//! - `control`: transaction markers (control batches).
//! - `segment`: one `.log` with its `.index` / `.timeindex`; batch scanning.
//! - `appender`: the O_DIRECT write path of the active segment.
//! - `device_flush`: one fdatasync shared by a shard's pure-overwrite flushes.
//! - `fault`: storage failures a test injects (`--fail-io`).
//! - `index`, `time_index`: the sparse indexes, Kafka's file formats.
//! - `txn_index`: each segment's aborted transactions (`.txnindex`).
//! - `tail_cache`: recent batches in memory for consumers at the tail.
//! - `producer_state`: idempotent producers' last batches (deduplication).
//! - `partition`: append / flush / roll, the positions a log keeps.
//! - `reader`: reads for fetches, the log's own reads, time lookup.
//! - `read_buffer`: pooled blocks cold fetch reads are copied into.
//! - `read_ahead`: the cold read started for a consumer's next fetch.
//! - `retention`: deleting whole segments from the front.
//! - `housekeeping`: `flush.ms` and retention, a timer per partition.
//! - `state_log`: an internal keyed log a coordinator owns (groups,
//!   transactions): placement by key, replay, compaction.
//! - `fields`: the field encodings of internal-log records.
//! - `recovery`: truncating torn tails and rebuilding indexes on open.
//! - `log_dir`: the data directory and the one way to open a partition.
//! - `topic_partition`: `PartitionId` and `TopicPartition`, the key of a
//!   partition everywhere.
//! - `append_signal`: wakes readers when any partition of a shard grows.
//! - `io_probe`: the glommio io-poll pitfall, handled once per thread.

pub mod append_signal;
pub mod appender;
pub mod batch;
pub mod config;
pub mod control;
pub mod device_flush;
pub mod error;
pub mod fault;
pub mod fields;
pub mod housekeeping;
pub mod index;
pub mod io_probe;
pub mod log_dir;
pub mod offset;
pub mod partition;
pub mod producer_snapshot;
pub mod producer_state;
pub mod read_ahead;
pub mod read_buffer;
pub mod reader;
pub mod recovery;
pub mod retention;
pub mod segment;
pub mod state_log;
pub mod tail_cache;
pub mod time_index;
pub mod topic_partition;
pub mod txn_index;

pub use append_signal::AppendSignal;
pub use batch::{BatchError, RecordBatch};
pub use config::{ColdReads, LogConfig};
pub use device_flush::Device;
pub use error::IoFailure;
pub use error::{LogError, Result};
pub use log_dir::LogDir;
pub use offset::{LeaderEpoch, Offset, ProducerEpoch, ProducerId};
pub use partition::{AppendInfo, Appended, Durability, Flushed, Partition};
pub use reader::ReadChunk;
pub use segment::FileSlice;
pub use topic_partition::{PartitionId, TopicPartition};
