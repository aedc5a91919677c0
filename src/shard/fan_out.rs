//! The caller side of the data path: what the shard that accepted a
//! request does with its partitions. Items are bucketed by owner shard
//! (`ByOwner`), each owner gets one call for all of its items — never one
//! per partition or per record — the calls run concurrently (the one for
//! this shard in place), and the per-item results come back in request
//! order. Items of partitions that do not exist are answered here,
//! UNKNOWN_TOPIC_OR_PARTITION, without a call.
//!
//! `owner_calls` is the other side: what each owner runs.

use super::owner_calls::{
    CoveringFlushFailed, DeleteRecords, DescribeProducers, ExpectTransaction, Fetched, ListOffsets,
    OffsetAt, OffsetQuery, Produce, Produced, Read, ReadRange, TakeMetrics, WatchAppends,
    WriteMarkers,
};
use super::ownership::ShardId;
use super::router::{Call, ShardGone};
use super::{Shard, ShardError};
use crate::log::control::TxnEnd;
use crate::log::producer_snapshot::SnapshotEntry;
use crate::log::{
    Durability, IoFailure, LogError, Offset, ProducerEpoch, ProducerId, TopicPartition,
};
use crate::metrics::Snapshot;
use crate::metrics::Stage;
use bytes::Bytes;
use futures_lite::future;
use futures_util::future::{join_all, select_all};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

/// The items of one request bucketed by owner shard.
type ByOwner<T> = BTreeMap<ShardId, Bucket<T>>;

/// One owner's items, with their positions in the request.
struct Bucket<T> {
    positions: Vec<usize>,
    items: Vec<(TopicPartition, T)>,
}

impl<T> Default for Bucket<T> {
    fn default() -> Self {
        Bucket {
            positions: Vec::new(),
            items: Vec::new(),
        }
    }
}

/// Per-item results of one request, filled in as owners answer.
struct Answers<R>(Vec<Option<Result<R, ShardError>>>);

impl<R> Answers<R> {
    fn new(n: usize) -> Answers<R> {
        Answers((0..n).map(|_| None).collect())
    }

    /// Puts one owner's per-item results (or its failure) at the items'
    /// positions.
    fn fill(
        &mut self,
        positions: Vec<usize>,
        results: Result<Vec<Result<R, ShardError>>, ShardGone>,
    ) {
        match results {
            Ok(results) => {
                for (i, r) in positions.into_iter().zip(results) {
                    self.0[i] = Some(r);
                }
            }
            Err(gone) => {
                for i in positions {
                    self.0[i] = Some(Err(gone.into()));
                }
            }
        }
    }

    fn into_vec(self) -> Vec<Result<R, ShardError>> {
        self.0
            .into_iter()
            .map(|r| r.expect("every item is answered by its owner or here"))
            .collect()
    }
}

impl Shard {
    /// Buckets items by owner; items of unknown partitions get their
    /// error in `answers` right away.
    fn by_owner<T, R>(
        &self,
        items: Vec<(TopicPartition, T)>,
        answers: &mut Answers<R>,
    ) -> ByOwner<T> {
        let mut by_owner: ByOwner<T> = BTreeMap::new();
        for (i, (tp, item)) in items.into_iter().enumerate() {
            match self.owner_of(&tp) {
                Some(owner) => {
                    let bucket = by_owner.entry(owner).or_default();
                    bucket.positions.push(i);
                    bucket.items.push((tp, item));
                }
                None => answers.0[i] = Some(Err(ShardError::UnknownPartition(tp))),
            }
        }
        by_owner
    }

    /// Sends each owner its items as one call (`make`) and returns the
    /// per-item results in request order; `unpack` turns an owner's reply
    /// into its items' results.
    async fn per_owner<T, R, C: Call<Shard>>(
        self: &Rc<Self>,
        items: Vec<(TopicPartition, T)>,
        make: impl Fn(Vec<(TopicPartition, T)>) -> C,
        mut unpack: impl FnMut(ShardId, C::Reply) -> Vec<Result<R, ShardError>>,
    ) -> Vec<Result<R, ShardError>> {
        let mut answers = Answers::new(items.len());
        let by_owner = self.by_owner(items, &mut answers);
        let mut positions = Vec::with_capacity(by_owner.len());
        let mut calls = Vec::with_capacity(by_owner.len());
        for (owner, bucket) in by_owner {
            positions.push((owner, bucket.positions));
            calls.push(self.router.call(self, owner, make(bucket.items)));
        }
        // The owners' calls run at once; each is first polled here, in
        // owner order (owners are few, and join_all polls a few futures in
        // order), which keeps every peer's send order (router.rs).
        let replies = join_all(calls).await;
        for ((owner, at), reply) in positions.into_iter().zip(replies) {
            answers.fill(at, reply.map(|r| unpack(owner, r)));
        }
        answers.into_vec()
    }

    /// Appends each item's records on its owner; in request order, where
    /// each went, or its error.
    pub async fn produce(
        self: &Rc<Self>,
        durability: Durability,
        items: Vec<(TopicPartition, Bytes)>,
    ) -> Vec<Result<Produced, ShardError>> {
        // acks=all: owners whose writes are pure overwrites of the device
        // leave their fdatasync to this shard, so a request that spans
        // shards pays one device flush, after every owner's writes.
        let caller_flushes = (durability == Durability::Synced).then(|| self.log_dir.device());
        let tps: Vec<TopicPartition> = match caller_flushes {
            Some(_) => items.iter().map(|(tp, _)| tp.clone()).collect(),
            None => Vec::new(),
        };
        let make = |items| Produce {
            durability,
            items,
            caller_flushes,
        };
        let mut produced = self.per_owner(items, make, |_, produced| produced).await;
        let owed =
            |r: &Result<Produced, ShardError>| r.as_ref().is_ok_and(|p| p.awaits_device_flush);
        if !produced.iter().any(owed) {
            return produced;
        }
        let started = Instant::now();
        let flushed = self.log_dir.flush_device().await;
        self.metrics.since(Stage::FsyncWait, started);
        if let Err(e) = flushed {
            let what = format!("fdatasync of {} for produce", self.log_dir.root().display());
            let failure = IoFailure::new(what, e);
            let mut offline = Vec::new();
            for (i, r) in produced.iter_mut().enumerate() {
                if owed(r) {
                    *r = Err(LogError::Offline(failure.clone()).into());
                    offline.push((tps[i].clone(), ()));
                }
            }
            let make = |items| CoveringFlushFailed {
                items,
                failure: failure.clone(),
            };
            self.per_owner(offline, make, |_, done| done).await;
        }
        produced
    }

    /// Reads each item on its owner. Also returns, per shard involved, its
    /// append generation at read time (for `wait_for_appends`).
    pub async fn read(
        self: &Rc<Self>,
        items: Vec<(TopicPartition, ReadRange)>,
        budget: usize,
    ) -> (Vec<Result<Fetched, ShardError>>, Vec<(ShardId, u64)>) {
        let mut generations = Vec::new();
        let make = |items| Read { items, budget };
        let results = self
            .per_owner(items, make, |owner, reply| {
                generations.push((owner, reply.generation));
                reply.items
            })
            .await;
        (results, generations)
    }

    /// ListOffsets on each item's owner.
    pub async fn list_offsets(
        self: &Rc<Self>,
        items: Vec<(TopicPartition, OffsetQuery)>,
    ) -> Vec<Result<Option<OffsetAt>, ShardError>> {
        let make = |items| ListOffsets { items };
        self.per_owner(items, make, |_, found| found).await
    }

    /// DeleteRecords on each item's owner: the log start after it.
    pub async fn delete_records(
        self: &Rc<Self>,
        items: Vec<(TopicPartition, Option<Offset>)>,
    ) -> Vec<Result<Offset, ShardError>> {
        let make = |items| DeleteRecords { items };
        self.per_owner(items, make, |_, deleted| deleted).await
    }

    /// DescribeProducers on each partition's owner.
    pub async fn describe_producers(
        self: &Rc<Self>,
        items: Vec<TopicPartition>,
    ) -> Vec<Result<Vec<SnapshotEntry>, ShardError>> {
        let items = items.into_iter().map(|tp| (tp, ())).collect();
        let make = |items| DescribeProducers { items };
        self.per_owner(items, make, |_, described| described).await
    }

    /// Puts each partition in a producer's transaction, on its owner.
    pub async fn expect_transaction(
        self: &Rc<Self>,
        items: Vec<(TopicPartition, (ProducerId, ProducerEpoch))>,
    ) -> Vec<Result<(), ShardError>> {
        let make = |items| ExpectTransaction { items };
        self.per_owner(items, make, |_, expected| expected).await
    }

    /// Writes each partition's transaction marker on its owner, durably.
    pub async fn write_markers(
        self: &Rc<Self>,
        items: Vec<(TopicPartition, TxnEnd)>,
    ) -> Vec<Result<Offset, ShardError>> {
        let make = |items| WriteMarkers { items };
        self.per_owner(items, make, |_, written| written).await
    }

    /// Every shard's measurements merged (shards that do not answer are
    /// left out, and `shards` says how many did).
    pub async fn collect_metrics(self: &Rc<Self>) -> Snapshot {
        let mut merged = self.metrics_snapshot();
        for owner in self.router.shards().filter(|&s| s != self.id()) {
            if let Ok(snapshot) = self.router.call(self, owner, TakeMetrics).await {
                merged.merge(*snapshot);
            }
        }
        merged
    }

    /// Resolves when any of the shards in `generations` appended since, or
    /// at `deadline`.
    pub async fn wait_for_appends(
        self: &Rc<Self>,
        generations: Vec<(ShardId, u64)>,
        deadline: Instant,
    ) {
        let watches: Vec<_> = generations
            .into_iter()
            .map(|(owner, seen)| {
                Box::pin(
                    self.router
                        .call(self, owner, WatchAppends { seen, deadline }),
                )
            })
            .collect();
        let wait = deadline.saturating_duration_since(Instant::now());
        let timeout = glommio::timer::sleep(wait);
        if watches.is_empty() {
            timeout.await;
            return;
        }
        // The first watch to end (an append, or its deadline) ends the
        // wait; the others are dropped (a remote owner still ends its
        // watch at the deadline).
        future::or(
            async {
                let _ = select_all(watches).await;
            },
            async {
                timeout.await;
            },
        )
        .await;
    }
}
