//! The data path across shards: produce, read and list-offsets requests are
//! split by owner shard, sent as one message per owner (or run in place
//! when this shard owns the partition), and reassembled in request order.
//! `execute` is what an owner runs for any `Request`.

use super::message::{GroupAnswer, GroupCall, Key, ReadOk, Reply, Request};
use super::{Shard, ShardError};
use crate::log::{LogError, RecordBatch};
use crate::metrics::{Snapshot, Stage};
use bytes::Bytes;
use futures_lite::future;
use glommio::channels::local_channel;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

/// Items of one request grouped by owner: (positions in the request, items).
type Groups<T> = BTreeMap<usize, (Vec<usize>, Vec<T>)>;

/// Per-item results of one request, filled in as owners answer.
type Slots<R> = Vec<Option<Result<R, ShardError>>>;

fn slots<R>(n: usize) -> Slots<R> {
    (0..n).map(|_| None).collect()
}

fn filled<R>(slots: Slots<R>) -> Vec<Result<R, ShardError>> {
    slots
        .into_iter()
        .map(|r| r.expect("every item answered"))
        .collect()
}

impl Shard {
    /// Runs a request on this shard (its owner).
    pub async fn execute(self: &Rc<Self>, request: Request) -> Reply {
        match request {
            Request::Produce { acks, items } => {
                Reply::Produce(self.produce_local(acks, items).await)
            }
            Request::Read { items, budget } => {
                let generation = self.appended.generation();
                let mut out = Vec::with_capacity(items.len());
                // What is read is held in memory until the answer is sent
                // (cold reads too), so the fetch's budget bounds it here,
                // not only when the response is cut to size.
                let mut budget = budget;
                for ((topic, index), (offset, max)) in items {
                    let read = self
                        .read_local(&topic, index, offset, max.min(budget))
                        .await;
                    if let Ok(ok) = &read {
                        budget = budget.saturating_sub(ok.chunk.len());
                    }
                    out.push(read);
                }
                Reply::Read {
                    generation,
                    items: out,
                }
            }
            Request::ListOffsets { items } => {
                let mut out = Vec::with_capacity(items.len());
                for ((topic, index), ts) in items {
                    out.push(self.list_offset_local(&topic, index, ts).await);
                }
                Reply::ListOffsets(out)
            }
            Request::Watch { seen, deadline } => {
                let wait = deadline.saturating_duration_since(Instant::now());
                tracing::debug!(
                    shard = self.id(),
                    seen,
                    now = self.appended.generation(),
                    ?wait,
                    "watch"
                );
                future::or(self.appended.changed(seen), async {
                    glommio::timer::sleep(wait).await;
                })
                .await;
                tracing::debug!(
                    shard = self.id(),
                    seen,
                    now = self.appended.generation(),
                    "watched"
                );
                Reply::Watched
            }
            Request::Admin(op) => Reply::Admin(self.admin_local(op).await),
            Request::TopicUpdate(update) => Reply::Updated(self.apply_topic_update(update).await),
            Request::Metrics => Reply::Metrics(Box::new(self.metrics_snapshot())),
            Request::Group(call) => Reply::Group(self.groups.handle(call).await),
        }
    }

    /// Groups request items by owner; items of unknown partitions get their
    /// error in `results` right away.
    fn group<T, R>(
        &self,
        items: Vec<(Key, T)>,
        results: &mut [Option<Result<R, ShardError>>],
    ) -> Groups<(Key, T)> {
        let mut groups: Groups<(Key, T)> = BTreeMap::new();
        for (i, (key, item)) in items.into_iter().enumerate() {
            match self.owner_of(&key.0, key.1) {
                Some(owner) => {
                    let g = groups.entry(owner).or_default();
                    g.0.push(i);
                    g.1.push((key, item));
                }
                None => results[i] = Some(Err(ShardError::UnknownPartition(key.0, key.1))),
            }
        }
        groups
    }

    /// Sends one request per owner concurrently; returns (owner, positions,
    /// reply) per owner.
    async fn fan_out<T>(
        self: &Rc<Self>,
        groups: Groups<T>,
        make: impl Fn(Vec<T>) -> Request,
    ) -> Vec<(usize, Vec<usize>, Result<Reply, ShardError>)> {
        let mut calls = Vec::with_capacity(groups.len());
        for (owner, (positions, items)) in groups {
            let request = make(items);
            let shard = self.clone();
            let task =
                glommio::spawn_local(
                    async move { shard.router.call(&shard, owner, request).await },
                );
            calls.push((owner, positions, task));
        }
        let mut out = Vec::with_capacity(calls.len());
        for (owner, positions, task) in calls {
            out.push((owner, positions, task.await.map_err(ShardError::from)));
        }
        out
    }

    /// Sends each owner its items as one request and returns the per-item
    /// results in request order; `unpack` turns an owner's reply into its
    /// items' results.
    async fn per_owner<T, R>(
        self: &Rc<Self>,
        items: Vec<(Key, T)>,
        make: impl Fn(Vec<(Key, T)>) -> Request,
        mut unpack: impl FnMut(usize, Reply) -> Vec<Result<R, ShardError>>,
    ) -> Vec<Result<R, ShardError>> {
        let mut results = slots(items.len());
        let groups = self.group(items, &mut results);
        for (owner, positions, reply) in self.fan_out(groups, make).await {
            spread(&mut results, positions, reply, |r| unpack(owner, r));
        }
        filled(results)
    }

    /// Appends each item's records on its owner; in request order, the base
    /// offset and log start offset of each, or its error.
    pub async fn produce(
        self: &Rc<Self>,
        acks: i16,
        items: Vec<(Key, Bytes)>,
    ) -> Vec<Result<(u64, u64), ShardError>> {
        let make = |items| Request::Produce { acks, items };
        self.per_owner(items, make, |_, reply| match reply {
            Reply::Produce(v) => v,
            _ => unreachable!("produce gets produce replies"),
        })
        .await
    }

    /// Reads each item (offset, max bytes) on its owner. Also returns, per
    /// shard involved, its append generation at read time (for
    /// `wait_for_appends`).
    pub async fn read(
        self: &Rc<Self>,
        items: Vec<(Key, (u64, usize))>,
        budget: usize,
    ) -> (Vec<Result<ReadOk, ShardError>>, Vec<(usize, u64)>) {
        let mut generations = Vec::new();
        let make = |items| Request::Read { items, budget };
        let results = self
            .per_owner(items, make, |owner, reply| match reply {
                Reply::Read { generation, items } => {
                    generations.push((owner, generation));
                    items
                }
                _ => unreachable!("read gets read replies"),
            })
            .await;
        (results, generations)
    }

    /// ListOffsets on each item's owner: Some((offset, timestamp)), or None
    /// when no record is that new.
    pub async fn list_offsets(
        self: &Rc<Self>,
        items: Vec<(Key, i64)>,
    ) -> Vec<Result<Option<(u64, i64)>, ShardError>> {
        let make = |items| Request::ListOffsets { items };
        self.per_owner(items, make, |_, reply| match reply {
            Reply::ListOffsets(v) => v,
            _ => unreachable!("list offsets gets list offsets replies"),
        })
        .await
    }

    /// Runs a group request on the group's coordinator shard.
    pub async fn group_call(
        self: &Rc<Self>,
        group: &str,
        call: GroupCall,
    ) -> Result<GroupAnswer, ShardError> {
        let owner = self.group_owner(group);
        match self.router.call(self, owner, Request::Group(call)).await? {
            Reply::Group(answer) => Ok(answer),
            _ => unreachable!("group calls get group answers"),
        }
    }

    /// ListGroups: every shard's groups.
    pub async fn list_groups(
        self: &Rc<Self>,
    ) -> Result<Vec<(String, String, &'static str)>, ShardError> {
        let mut all = Vec::new();
        for shard in 0..self.router.count() {
            if let Reply::Group(GroupAnswer::List(groups)) = self
                .router
                .call(self, shard, Request::Group(GroupCall::List))
                .await?
            {
                all.extend(groups);
            }
        }
        all.sort();
        Ok(all)
    }

    /// Every shard's measurements merged (shards that do not answer are
    /// left out, and `shards` says how many did).
    pub async fn collect_metrics(self: &Rc<Self>) -> Snapshot {
        let mut merged = self.metrics_snapshot();
        for owner in (0..self.router.count()).filter(|&s| s != self.id()) {
            if let Ok(Reply::Metrics(snapshot)) =
                self.router.call(self, owner, Request::Metrics).await
            {
                merged.merge(*snapshot);
            }
        }
        merged
    }

    /// Resolves when any of the shards in `generations` appended since, or
    /// at `deadline`.
    pub async fn wait_for_appends(
        self: &Rc<Self>,
        generations: Vec<(usize, u64)>,
        deadline: Instant,
    ) {
        let (tx, rx) = local_channel::new_bounded(generations.len().max(1));
        let tx = Rc::new(tx);
        let mut tasks = Vec::with_capacity(generations.len());
        for (owner, seen) in generations {
            let (shard, tx) = (self.clone(), tx.clone());
            tasks.push(glommio::spawn_local(async move {
                let _ = shard
                    .router
                    .call(&shard, owner, Request::Watch { seen, deadline })
                    .await;
                let _ = tx.try_send(());
            }));
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        future::or(async { rx.recv().await.map(|_| ()).unwrap_or(()) }, async {
            glommio::timer::sleep(wait).await;
        })
        .await;
        drop(tasks);
    }

    async fn produce_local(
        &self,
        acks: i16,
        items: Vec<(Key, Bytes)>,
    ) -> Vec<Result<(u64, u64), ShardError>> {
        let mut out = Vec::with_capacity(items.len());
        let mut to_flush = Vec::new();
        for ((topic, index), records) in items {
            let result = async {
                if !(-1..=1).contains(&acks) {
                    return Err(ShardError::InvalidAcks(acks));
                }
                let partition = self
                    .partition(&topic, index)
                    .ok_or_else(|| ShardError::UnknownPartition(topic.clone(), index))?;
                let batches = RecordBatch::split_all(records).map_err(LogError::from)?;
                let started = Instant::now();
                let info = partition.append(batches).await?;
                self.metrics.since(Stage::Append, started);
                if acks == -1 {
                    to_flush.push((out.len(), partition.clone()));
                }
                Ok((info.base_offset, partition.log_start()))
            }
            .await;
            out.push(result);
        }
        self.appended.notify();
        // acks=all: durable before we answer; each flush shares its
        // fdatasync with every other producer waiting on that partition.
        // The partitions flush concurrently: the answer waits for the
        // slowest, not for the sum.
        let started = Instant::now();
        let flushes: Vec<_> = to_flush
            .into_iter()
            .map(|(i, partition)| {
                glommio::spawn_local(async move {
                    let flushed = partition.flush().await;
                    (i, flushed, started.elapsed())
                })
            })
            .collect();
        for flush in flushes {
            let (i, flushed, waited) = flush.await;
            self.metrics.record(Stage::FsyncWait, waited);
            if let Err(e) = flushed {
                out[i] = Err(e.into());
            }
        }
        out
    }

    async fn read_local(
        &self,
        topic: &str,
        index: i32,
        offset: u64,
        max: usize,
    ) -> Result<ReadOk, ShardError> {
        let partition = self
            .partition(topic, index)
            .ok_or_else(|| ShardError::UnknownPartition(topic.to_string(), index))?;
        let high_watermark = partition.next_offset();
        let log_start = partition.log_start();
        let chunk = partition.read(offset, max).await?;
        Ok(ReadOk {
            high_watermark,
            log_start,
            chunk,
        })
    }

    async fn list_offset_local(
        &self,
        topic: &str,
        index: i32,
        timestamp: i64,
    ) -> Result<Option<(u64, i64)>, ShardError> {
        let partition = self
            .partition(topic, index)
            .ok_or_else(|| ShardError::UnknownPartition(topic.to_string(), index))?;
        Ok(match timestamp {
            -1 => Some((partition.next_offset(), -1)),
            -2 => Some((partition.log_start(), -1)),
            ts => partition.offset_for_timestamp(ts).await?,
        })
    }
}

/// Puts one owner's per-item replies (or its failure) at their positions.
fn spread<R>(
    results: &mut [Option<Result<R, ShardError>>],
    positions: Vec<usize>,
    reply: Result<Reply, ShardError>,
    unpack: impl FnOnce(Reply) -> Vec<Result<R, ShardError>>,
) {
    match reply {
        Ok(reply) => {
            for (i, r) in positions.into_iter().zip(unpack(reply)) {
                results[i] = Some(r);
            }
        }
        Err(e) => {
            let message = e.to_string();
            for i in positions {
                results[i] = Some(Err(ShardError::Log(LogError::Offline(message.clone()))));
            }
        }
    }
}
