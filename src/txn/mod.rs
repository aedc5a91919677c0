//! Exactly-once: the producer ids idempotent producers are given
//! (`producer_ids`); the transaction coordinator comes next.
//!
//! Built on `shard` (its `Router` carries the calls); the per-partition
//! producer state that deduplicates retries lives with the log
//! (`log::producer_state`), on the partition's owner shard.

pub mod producer_ids;
