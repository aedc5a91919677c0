//! The owner side of the data path: the calls a shard runs for partitions
//! it owns — append, read, list offsets, watch for appends, and a copy of
//! its measurements. Each call is its own type with its own reply
//! (`router::Call`); `fan_out` is the side that sends them.
//!
//! Runs on the owning shard only; every item of a call names a partition
//! this shard owns (the caller bucketed them with `ownership::owner`), and
//! one whose partition is not open gets UNKNOWN_TOPIC_OR_PARTITION.

use super::router::Call;
use super::{Shard, ShardError};
use crate::log::control::TxnEnd;
use crate::log::partition::now_ms;
use crate::log::producer_snapshot::SnapshotEntry;
use crate::log::{
    Appended, Device, Durability, Flushed, IoFailure, LogError, Offset, Partition, ProducerEpoch,
    ProducerId, ReadChunk, RecordBatch, TopicPartition,
};
use crate::metrics::{Snapshot, Stage};
use bytes::Bytes;
use futures_lite::future;
use futures_util::future::join_all;
use std::rc::Rc;
use std::time::Instant;

/// Appends each item's record set (a produce request's share for this
/// shard), as durable as `durability` says before the reply — except
/// where `caller_flushes` lets a pure overwrite leave its fdatasync to the
/// caller (`Partition::flush_or_defer`).
pub struct Produce {
    pub durability: Durability,
    pub items: Vec<(TopicPartition, Bytes)>,
    /// The device the caller fdatasyncs after the reply, if it does.
    pub caller_flushes: Option<Device>,
}

/// Where one produced record set went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    pub base_offset: Offset,
    pub log_start: Offset,
    /// Set for an idempotent producer's retry (see `AppendInfo`).
    pub log_append_time: Option<i64>,
    /// Written, and durable only once the caller's device flush succeeds.
    pub awaits_device_flush: bool,
}

impl Call<Shard> for Produce {
    type Reply = Vec<Result<Produced, ShardError>>;

    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        // Appends one after the other, in request order, so they keep the
        // order of the requests that carry them; then the durability waits
        // of all of them at once, so several partitions' fdatasyncs
        // (acks=all) overlap.
        let mut appended = Vec::with_capacity(self.items.len());
        for (tp, records) in self.items {
            appended.push(shard.append(tp, records, self.durability).await);
        }
        let caller_flushes = self.caller_flushes;
        let settles = appended.into_iter().map(|a| async move {
            let (partition, appended) = a?;
            let (info, flushed) = partition.settle_or_defer(appended, caller_flushes).await?;
            let awaits_device_flush = flushed == Flushed::AwaitsDeviceFlush;
            if self.durability == Durability::Synced && !awaits_device_flush {
                shard.metrics.record(Stage::FsyncWait, info.sync_wait);
            }
            Ok(Produced {
                base_offset: info.base_offset,
                log_start: partition.log_start(),
                log_append_time: info.retried_timestamp,
                awaits_device_flush,
            })
        });
        join_all(settles).await
    }
}

/// The caller's fdatasync that was to make these partitions' writes
/// durable (`Produced::awaits_device_flush`) failed: they go offline.
pub struct CoveringFlushFailed {
    pub items: Vec<(TopicPartition, ())>,
    pub failure: IoFailure,
}

impl Call<Shard> for CoveringFlushFailed {
    type Reply = Vec<Result<(), ShardError>>;

    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        let failure = self.failure;
        (self.items.into_iter())
            .map(|(tp, ())| {
                shard.owned(&tp)?.covering_flush_failed(failure.clone());
                Ok(())
            })
            .collect()
    }
}

/// Where to read one partition from: Kafka's fetch offset and partition
/// byte limit, and whether only committed records are wanted
/// (`isolation.level=read_committed`).
#[derive(Debug, Clone, Copy)]
pub struct ReadRange {
    pub offset: Offset,
    pub max_bytes: usize,
    pub committed: bool,
}

/// Reads each item, in order, and at most `budget` bytes over all items
/// (beyond the first batch of each item read): a fetch's `max_bytes`, as
/// Kafka applies it.
pub struct Read {
    pub items: Vec<(TopicPartition, ReadRange)>,
    pub budget: usize,
}

/// One partition's share of a fetch.
pub struct Fetched {
    pub high_watermark: Offset,
    pub last_stable: Offset,
    pub log_start: Offset,
    pub chunk: ReadChunk,
    /// For a read_committed read: the aborted transactions (producer,
    /// first offset) that may have records in `chunk`.
    pub aborted: Vec<(ProducerId, Offset)>,
}

pub struct ReadReply {
    /// The shard's append generation before it read (see `WatchAppends`).
    pub generation: u64,
    pub items: Vec<Result<Fetched, ShardError>>,
}

impl Call<Shard> for Read {
    type Reply = ReadReply;

    async fn run(self, shard: &Rc<Shard>) -> ReadReply {
        let generation = shard.log_dir.appended().generation();
        // What is read is held in memory until the answer is sent (cold
        // reads too), so the fetch's budget bounds it here, not only when
        // the response is cut to size. When every item's limit fits in it
        // (a consumer's usual fetch) the cold reads go to the disk at once.
        let asked = self.items.iter().map(|(_, r)| r.max_bytes);
        if asked.fold(0usize, usize::saturating_add) <= self.budget {
            let reads = self.items.iter().map(|(tp, r)| shard.read_owned(tp, *r));
            let items = join_all(reads).await;
            return ReadReply { generation, items };
        }
        let mut items = Vec::with_capacity(self.items.len());
        let mut budget = self.budget;
        for (tp, range) in self.items {
            let range = ReadRange {
                max_bytes: range.max_bytes.min(budget),
                ..range
            };
            let read = shard.read_owned(&tp, range).await;
            if let Ok(fetched) = &read {
                budget = budget.saturating_sub(fetched.chunk.len());
            }
            items.push(read);
        }
        ReadReply { generation, items }
    }
}

/// ListOffsets: what a client asks a partition's offset for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetQuery {
    /// The log start offset (Kafka's timestamp -2).
    Earliest,
    /// The log end offset (Kafka's timestamp -1).
    Latest,
    /// The last stable offset (timestamp -1 with read_committed).
    LastStable,
    /// The first record with a timestamp at or after this one.
    AtTime(i64),
}

/// An offset ListOffsets found, and the timestamp of its record (-1 for
/// earliest and latest, as Kafka answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAt {
    pub offset: Offset,
    pub timestamp: i64,
}

pub struct ListOffsets {
    pub items: Vec<(TopicPartition, OffsetQuery)>,
}

impl Call<Shard> for ListOffsets {
    /// `None`: no record is that new.
    type Reply = Vec<Result<Option<OffsetAt>, ShardError>>;

    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        let mut out = Vec::with_capacity(self.items.len());
        for (tp, query) in self.items {
            out.push(shard.list_offset_owned(&tp, query).await);
        }
        out
    }
}

/// Resolves once this shard appended anything after `seen` (its append
/// generation) or at `deadline`: wakes long-polling fetches elsewhere.
pub struct WatchAppends {
    pub seen: u64,
    pub deadline: Instant,
}

impl Call<Shard> for WatchAppends {
    type Reply = ();

    async fn run(self, shard: &Rc<Shard>) {
        let wait = self.deadline.saturating_duration_since(Instant::now());
        let appended = shard.log_dir.appended();
        future::or(appended.changed(self.seen), async {
            glommio::timer::sleep(wait).await;
        })
        .await;
    }
}

/// DeleteRecords: each partition's log starts at the offset given (`None`:
/// at its high watermark) from now on, durably.
pub struct DeleteRecords {
    pub items: Vec<(TopicPartition, Option<Offset>)>,
}

impl Call<Shard> for DeleteRecords {
    /// Each partition's log start after it (Kafka's low watermark).
    type Reply = Vec<Result<Offset, ShardError>>;

    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        let mut out = Vec::with_capacity(self.items.len());
        for (tp, before) in self.items {
            let deleted = async {
                let partition = shard.owned(&tp)?;
                Ok(partition.delete_records_before(before).await?)
            };
            out.push(deleted.await);
        }
        out
    }
}

/// DescribeProducers: each partition's idempotent producers.
pub struct DescribeProducers {
    pub items: Vec<(TopicPartition, ())>,
}

impl Call<Shard> for DescribeProducers {
    type Reply = Vec<Result<Vec<SnapshotEntry>, ShardError>>;

    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        let described = |(tp, ()): (TopicPartition, ())| Ok(shard.owned(&tp)?.producers());
        self.items.into_iter().map(described).collect()
    }
}

/// The transaction coordinator put each partition in a producer's
/// transaction at an epoch: its first transactional batch there may open
/// the transaction (KIP-890 verification).
pub struct ExpectTransaction {
    pub items: Vec<(TopicPartition, (ProducerId, ProducerEpoch))>,
}

impl Call<Shard> for ExpectTransaction {
    type Reply = Vec<Result<(), ShardError>>;

    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        let expect = |(tp, (producer, epoch)): (TopicPartition, (ProducerId, ProducerEpoch))| {
            shard.owned(&tp)?.expect_transaction(producer, epoch);
            Ok(())
        };
        self.items.into_iter().map(expect).collect()
    }
}

/// Writes the marker ending a transaction on each partition, durable
/// before the reply; the partitions' writes overlap.
pub struct WriteMarkers {
    pub items: Vec<(TopicPartition, TxnEnd)>,
}

impl Call<Shard> for WriteMarkers {
    type Reply = Vec<Result<Offset, ShardError>>;

    async fn run(self, shard: &Rc<Shard>) -> Self::Reply {
        let writes = self.items.into_iter().map(|(tp, end)| async move {
            let partition = shard.owned(&tp)?;
            let written =
                partition.append_marker(end.producer, end.epoch, end.marker, end.coordinator_epoch);
            Ok(written.await?)
        });
        join_all(writes).await
    }
}

/// A copy of the shard's measurements (for `/metrics`).
pub struct TakeMetrics;

impl Call<Shard> for TakeMetrics {
    type Reply = Box<Snapshot>;

    async fn run(self, shard: &Rc<Shard>) -> Box<Snapshot> {
        Box::new(shard.metrics_snapshot())
    }
}

impl Shard {
    /// Appends one record set to a partition this shard owns; its
    /// durability is the caller's to settle.
    async fn append(
        &self,
        tp: TopicPartition,
        records: Bytes,
        durability: Durability,
    ) -> Result<(Rc<Partition>, Appended), ShardError> {
        let partition = self.owned(&tp)?;
        if self.config.crash_on_produce_to.as_deref() == Some(tp.topic.as_str()) {
            panic!(
                "--crash-on-produce-to {}: a test asked this shard to fail",
                tp.topic
            );
        }
        let batches = RecordBatch::split_all(records).map_err(LogError::from)?;
        let started = Instant::now();
        let appended = partition
            .append_readable(batches, now_ms(), durability)
            .await?;
        self.metrics.since(Stage::Append, started);
        Ok((partition, appended))
    }

    async fn read_owned(
        &self,
        tp: &TopicPartition,
        range: ReadRange,
    ) -> Result<Fetched, ShardError> {
        let partition = self.owned(tp)?;
        let high_watermark = partition.next_offset();
        let log_start = partition.log_start();
        if range.committed {
            let read = partition
                .read_committed(range.offset, range.max_bytes)
                .await?;
            return Ok(Fetched {
                high_watermark,
                last_stable: read.last_stable,
                log_start,
                chunk: read.chunk,
                aborted: read.aborted,
            });
        }
        let last_stable = partition.last_stable_offset();
        let chunk = partition.read(range.offset, range.max_bytes).await?;
        Ok(Fetched {
            high_watermark,
            last_stable,
            log_start,
            chunk,
            aborted: Vec::new(),
        })
    }

    async fn list_offset_owned(
        &self,
        tp: &TopicPartition,
        query: OffsetQuery,
    ) -> Result<Option<OffsetAt>, ShardError> {
        let partition = self.owned(tp)?;
        let at = |offset| OffsetAt {
            offset,
            timestamp: -1,
        };
        Ok(match query {
            OffsetQuery::Latest => Some(at(partition.next_offset())),
            OffsetQuery::LastStable => Some(at(partition.last_stable_offset())),
            OffsetQuery::Earliest => Some(at(partition.log_start())),
            OffsetQuery::AtTime(ts) => partition
                .offset_for_timestamp(ts)
                .await?
                .map(|(offset, timestamp)| OffsetAt { offset, timestamp }),
        })
    }

    /// An open partition this shard owns, or UNKNOWN_TOPIC_OR_PARTITION.
    fn owned(&self, tp: &TopicPartition) -> Result<Rc<Partition>, ShardError> {
        self.partition(tp)
            .ok_or_else(|| ShardError::UnknownPartition(tp.clone()))
    }
}
