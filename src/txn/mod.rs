//! Exactly-once: the producer ids idempotent producers are given, and the
//! transaction coordinator of transactional producers.
//!
//! - `producer_ids`: ids never handed out twice, also across kill -9.
//! - `state`: one transactional id's state machine (no I/O).
//! - `store`: the `__transaction_state` record format (Kafka's schemas).
//! - `coordinator`: a shard's transactional ids, their log, their markers
//!   and the timeout timer.
//! - `calls`: each transaction request, as a call on the coordinator
//!   shard of its transactional id.
//!
//! Built on `group` (offsets committed in a transaction, and their
//! markers) and `shard` (markers on user partitions, its `Router`); the
//! per-partition producer state that deduplicates retries and tracks open
//! transactions lives with the log (`log::producer_state`).

pub mod calls;
pub mod coordinator;
pub mod producer_ids;
pub mod state;
pub mod store;
