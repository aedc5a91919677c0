//! `TxnCoordinator`: the transactional ids one shard coordinates, their
//! `__transaction_state` partitions, the markers that end their
//! transactions, and the timer that aborts those open too long.
//!
//! A transactional id lives on the owner of its partition of
//! `__transaction_state` (Kafka's hash of the id), so its transitions are
//! made by one thread, one at a time (`state::Transaction::pending`).
//! Invariants, as in Kafka's `TransactionCoordinator`:
//! - A transition is durable in the log before it is current or answered
//!   (PrepareCommit / PrepareAbort fdatasync'ed: once a client is told its
//!   commit is decided, it happens, also across kill -9).
//! - A partition joins a transaction in the log before its owner is told
//!   to expect the producer's batches (KIP-890 verification), and that
//!   before the client hears back.
//! - Every partition of a transaction gets its marker, durably, before
//!   Complete is recorded; a marker write that fails is retried until it
//!   succeeds or the partition is gone. Complete need not be durable: on
//!   a replay that finds Prepare*, the markers are written again (a second
//!   marker for an ended transaction changes nothing).
//!
//! Built on `shard` (markers on user partitions, through its fan-out) and
//! `group` (markers on `__consumer_offsets`, which the groups own).

use super::calls::ListedTxn;
use super::producer_ids::ProducerIds;
use super::state::{InitStep, Status, Transaction, TxnError};
use super::store;
use crate::config::TxnConfig;
use crate::group::calls::{EndTxnOffsets, ExpectTxnOffsets};
use crate::group::coordinator::GroupCoordinator;
use crate::group::{GroupError, OFFSETS_TOPIC};
use crate::log::control::{Marker, TxnEnd};
use crate::log::partition::now_ms;
use crate::log::state_log::{key_partition, StateLog};
use crate::log::{Durability, LogError, PartitionId, ProducerEpoch, ProducerId, TopicPartition};
use crate::shard::ownership::{self, ShardId};
use crate::shard::router::{Call, Router, ShardGone, Sharded};
use crate::shard::{Shard, ShardError};
use ahash::AHashMap;
use futures_util::future::join_all;
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

/// The internal log's topic name, as Kafka's.
pub const TRANSACTION_TOPIC: &str = "__transaction_state";

/// A single broker is the only coordinator there has been: its epoch
/// never changes.
const COORDINATOR_EPOCH: i32 = 0;

/// How long EndTxn (and a fencing InitProducerId) waits for the markers
/// before answering anyway: the outcome is durable by then, and the
/// markers keep being written.
const MARKERS_WAIT: Duration = Duration::from_secs(5);

/// The first pause before a failed marker write is tried again; it
/// doubles up to `MARKER_RETRY_MAX`.
const MARKER_RETRY: Duration = Duration::from_millis(50);
const MARKER_RETRY_MAX: Duration = Duration::from_secs(5);

pub struct TxnCoordinator {
    config: TxnConfig,
    router: Router<TxnCoordinator>,
    shard: Rc<Shard>,
    groups: Rc<GroupCoordinator>,
    producer_ids: Rc<ProducerIds>,
    log: StateLog,
    txns: RefCell<AHashMap<String, Transaction>>,
    /// States being written, not yet current: a compaction keeps these,
    /// since their records may land in a segment it deletes.
    writing: RefCell<AHashMap<String, Transaction>>,
}

impl Sharded for TxnCoordinator {
    fn router(&self) -> &Router<TxnCoordinator> {
        &self.router
    }
}

impl TxnCoordinator {
    /// Opens and replays the `__transaction_state` partitions this shard
    /// owns; open transactions get their partitions' expectations back,
    /// and decided ones their markers.
    pub async fn open(
        shard: &Rc<Shard>,
        groups: &Rc<GroupCoordinator>,
        producer_ids: &Rc<ProducerIds>,
        router: Router<TxnCoordinator>,
    ) -> Result<Rc<TxnCoordinator>, LogError> {
        let config = shard.config.txn.clone();
        let log = shard
            .open_state_log(TRANSACTION_TOPIC, config.partitions, config.segment_bytes)
            .await?;
        let coordinator = Rc::new(TxnCoordinator {
            config,
            router,
            shard: shard.clone(),
            groups: groups.clone(),
            producer_ids: producer_ids.clone(),
            log,
            txns: RefCell::default(),
            writing: RefCell::default(),
        });
        let c = &coordinator;
        c.log.replay(|p, batch| c.apply_batch(p, batch)).await?;
        coordinator.start_resuming();
        let weak = Rc::downgrade(&coordinator);
        glommio::spawn_local(timeout_loop(weak)).detach();
        Ok(coordinator)
    }

    fn apply_batch(&self, p: PartitionId, batch: &crate::log::RecordBatch) {
        let mut txns = self.txns.borrow_mut();
        for r in batch.records() {
            let Some(key) = r.key else { continue };
            let value = r.value.unwrap_or_default();
            let applied = store::decode_key(key).and_then(|id| {
                if value.is_empty() {
                    txns.remove(&id);
                } else {
                    txns.insert(id, store::decode_value(value)?);
                }
                Ok(())
            });
            if let Err(e) = applied {
                tracing::warn!(partition = %p, "skipping a {TRANSACTION_TOPIC} record: {e}");
            }
        }
    }

    /// After replay: open transactions' partitions expect their batches
    /// again (the partitions' own state does not say which were added),
    /// and decided transactions get their markers. Both call other shards,
    /// which serve only once every shard has opened, so this runs in the
    /// background; the transactions it works on are pending meanwhile
    /// (requests for them are CONCURRENT_TRANSACTIONS, retried).
    fn start_resuming(self: &Rc<Self>) {
        let resuming: Vec<(String, Transaction)> = self
            .txns
            .borrow_mut()
            .iter_mut()
            .filter(|(_, t)| t.status == Status::Ongoing || t.status.is_prepare())
            .map(|(id, t)| {
                t.pending = true;
                (id.clone(), t.clone())
            })
            .collect();
        if !self.txns.borrow().is_empty() {
            tracing::info!(
                transactional_ids = self.txns.borrow().len(),
                open = resuming.len(),
                "transactions loaded"
            );
        }
        for (id, t) in resuming {
            let me = self.clone();
            glommio::spawn_local(async move {
                if t.status == Status::Ongoing {
                    let partitions: Vec<_> = t.partitions.iter().cloned().collect();
                    me.expect(&partitions, t.producer_id, t.epoch).await;
                    me.set_pending(&id, false);
                } else {
                    tracing::info!(transactional_id = id, "completing a decided transaction");
                    me.finish(&id).await;
                }
            })
            .detach();
        }
    }

    /// Which shard coordinates a transactional id.
    pub fn owner_of(&self, transactional_id: &str) -> ShardId {
        let p = key_partition(transactional_id, self.config.partitions);
        ownership::owner(TRANSACTION_TOPIC, p, self.router.count())
    }

    /// Runs a call on the coordinator shard of a transactional id.
    pub async fn call<C: Call<Self>>(
        self: &Rc<Self>,
        transactional_id: &str,
        call: C,
    ) -> Result<C::Reply, ShardGone> {
        let owner = self.owner_of(transactional_id);
        self.router.call(self, owner, call).await
    }

    /// Runs `make()` on every shard's coordinator.
    pub async fn call_every_shard<C: Call<Self>>(
        self: &Rc<Self>,
        make: impl Fn() -> C,
    ) -> Vec<Result<C::Reply, ShardGone>> {
        self.router.call_every_shard(self, make).await
    }

    pub(super) fn get(&self, id: &str) -> Option<Transaction> {
        self.txns.borrow().get(id).cloned()
    }

    fn set_pending(&self, id: &str, pending: bool) {
        if let Some(t) = self.txns.borrow_mut().get_mut(id) {
            t.pending = pending;
        }
    }

    /// Writes `next` as `id`'s state, as durable as `durability`.
    async fn persist(
        self: &Rc<Self>,
        id: &str,
        next: &Transaction,
        durability: Durability,
    ) -> Result<(), TxnError> {
        let p = key_partition(id, self.config.partitions);
        let record = (store::encode_key(id), store::encode_value(next));
        self.writing
            .borrow_mut()
            .insert(id.to_string(), next.clone());
        let appended = self.log.append(p, &[record], durability).await;
        self.writing.borrow_mut().remove(id);
        let appended = appended.ok_or(TxnError::CoordinatorNotAvailable)?;
        appended.map_err(|e| {
            tracing::error!(transactional_id = id, "storing transaction state: {e}");
            TxnError::CoordinatorNotAvailable
        })?;
        if self.log.compaction_due(p, || false) {
            let me = self.clone();
            glommio::spawn_local(async move { me.log.compact(p, || me.live_records(p)).await })
                .detach();
        }
        Ok(())
    }

    /// Every live record of the ids kept in partition `p`: each id's
    /// state being written, else its current one.
    fn live_records(&self, p: PartitionId) -> Vec<(Vec<u8>, Vec<u8>)> {
        let n = self.config.partitions;
        let writing = self.writing.borrow();
        self.txns
            .borrow()
            .iter()
            .filter(|(id, _)| key_partition(id, n) == p)
            .map(|(id, t)| {
                let t = writing.get(id).unwrap_or(t);
                (store::encode_key(id), store::encode_value(t))
            })
            .collect()
    }

    /// Writes `next` durably and makes it `id`'s state.
    async fn transition(self: &Rc<Self>, id: &str, next: Transaction) -> Result<(), TxnError> {
        self.set_pending(id, true);
        let stored = self.persist(id, &next, Durability::Synced).await;
        match stored {
            Ok(()) => {
                let mut next = next;
                next.pending = false;
                self.txns.borrow_mut().insert(id.to_string(), next);
                Ok(())
            }
            Err(e) => {
                self.set_pending(id, false);
                Err(e)
            }
        }
    }

    /// InitProducerId with a transactional id: the producer's id and
    /// epoch, bumped; an open transaction is aborted first (its producer
    /// fenced) and the client told to retry.
    pub(super) async fn init_producer(
        self: &Rc<Self>,
        id: &str,
        timeout_ms: i32,
        expected: Option<(ProducerId, ProducerEpoch)>,
    ) -> Result<(ProducerId, ProducerEpoch), TxnError> {
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        let needs_id = self.get(id).is_none_or(|t| t.needs_new_producer_id());
        let fresh = if needs_id {
            let next = self.producer_ids.next().await.map_err(|e| {
                tracing::warn!("handing out a producer id: {e}");
                TxnError::CoordinatorLoadInProgress
            })?;
            Some(next)
        } else {
            None
        };
        let now = now_ms();
        let current = {
            let mut txns = self.txns.borrow_mut();
            let fresh_id = fresh.unwrap_or(ProducerId::NONE);
            txns.entry(id.to_string())
                .or_insert_with(|| Transaction::new(fresh_id, timeout_ms, now))
                .clone()
        };
        match current.init(timeout_ms, expected, fresh, now)? {
            InitStep::Ready(next) => {
                let answer = (next.producer_id, next.epoch);
                self.transition(id, next).await?;
                tracing::debug!(
                    transactional_id = id,
                    producer = answer.0 .0,
                    epoch = answer.1 .0,
                    "producer initialized"
                );
                Ok(answer)
            }
            InitStep::Fence(next) => {
                tracing::info!(
                    transactional_id = id,
                    "a new producer fences the open transaction: aborting it"
                );
                self.transition(id, next).await?;
                self.finish_waiting(id).await;
                Err(TxnError::ConcurrentTransactions)
            }
        }
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the partitions join the
    /// producer's transaction (durably), then their owners expect its
    /// batches.
    pub(super) async fn add_partitions(
        self: &Rc<Self>,
        id: &str,
        producer: ProducerId,
        epoch: ProducerEpoch,
        partitions: Vec<TopicPartition>,
    ) -> Result<(), TxnError> {
        let current = self.get(id).ok_or(TxnError::InvalidProducerIdMapping)?;
        let Some(next) = current.add_partitions(producer, epoch, &partitions, now_ms())? else {
            return Ok(());
        };
        let new: Vec<TopicPartition> = partitions
            .into_iter()
            .filter(|tp| current.status != Status::Ongoing || !current.partitions.contains(tp))
            .collect();
        self.set_pending(id, true);
        let stored = self.persist(id, &next, Durability::Synced).await;
        if stored.is_ok() {
            self.expect(&new, producer, epoch).await;
            self.txns.borrow_mut().insert(id.to_string(), next);
        } else {
            self.set_pending(id, false);
        }
        stored
    }

    /// EndTxn: the outcome is recorded durably (PrepareCommit or
    /// PrepareAbort), then the markers are written; answered once they
    /// are, or after `MARKERS_WAIT`.
    pub(super) async fn end(
        self: &Rc<Self>,
        id: &str,
        producer: ProducerId,
        epoch: ProducerEpoch,
        commit: bool,
    ) -> Result<(), TxnError> {
        let current = self.get(id).ok_or(TxnError::InvalidProducerIdMapping)?;
        let Some(next) = current.end(producer, epoch, commit, now_ms())? else {
            return Ok(()); // a retry of an end that completed
        };
        self.transition(id, next).await?;
        self.finish_waiting(id).await;
        Ok(())
    }

    /// Completes `id`'s decided transaction in the background and waits
    /// for it at most `MARKERS_WAIT`.
    async fn finish_waiting(self: &Rc<Self>, id: &str) {
        let finished = self.finish_in_background(id);
        let waited = futures_lite::future::or(
            async {
                finished.await;
                true
            },
            async {
                glommio::timer::sleep(MARKERS_WAIT).await;
                false
            },
        );
        if !waited.await {
            tracing::warn!(
                transactional_id = id,
                "transaction markers not all written after {MARKERS_WAIT:?}; answering, still writing"
            );
        }
    }

    fn finish_in_background(self: &Rc<Self>, id: &str) -> glommio::task::JoinHandle<()> {
        self.set_pending(id, true);
        let (me, id) = (self.clone(), id.to_string());
        glommio::spawn_local(async move { me.finish(&id).await }).detach()
    }

    /// Writes the markers of `id`'s decided transaction, then records it
    /// complete.
    async fn finish(self: &Rc<Self>, id: &str) {
        let Some(t) = self.get(id).filter(|t| t.status.is_prepare()) else {
            self.set_pending(id, false);
            return;
        };
        let marker = match t.status {
            Status::PrepareCommit => Marker::Commit,
            _ => Marker::Abort,
        };
        let end = TxnEnd {
            producer: t.producer_id,
            epoch: t.epoch,
            marker,
            coordinator_epoch: COORDINATOR_EPOCH,
        };
        self.write_markers(t.partitions.iter().cloned().collect(), end)
            .await;
        let mut done = t.complete(now_ms());
        done.pending = false;
        // Not fdatasync'ed: a replay that finds the Prepare state writes
        // the markers again.
        if let Err(e) = self.persist(id, &done, Durability::Policy).await {
            tracing::warn!(
                transactional_id = id,
                "recording a completed transaction: {e}"
            );
        }
        tracing::debug!(
            transactional_id = id,
            status = done.status.name(),
            "transaction complete"
        );
        self.txns.borrow_mut().insert(id.to_string(), done);
    }

    /// Writes `end`'s marker to every partition, durably, retrying those
    /// that fail; a partition that no longer exists is skipped.
    async fn write_markers(self: &Rc<Self>, partitions: Vec<TopicPartition>, end: TxnEnd) {
        let mut left = partitions;
        let mut pause = MARKER_RETRY;
        loop {
            let (offsets, data): (Vec<_>, Vec<_>) =
                left.into_iter().partition(|tp| tp.topic == OFFSETS_TOPIC);
            let mut failed = Vec::new();
            let items = data.iter().map(|tp| (tp.clone(), end)).collect();
            for (tp, written) in data.into_iter().zip(self.shard.write_markers(items).await) {
                match written {
                    Ok(_) => {}
                    Err(ShardError::UnknownPartition(_)) => {
                        tracing::warn!(partition = %tp, "transaction marker skipped: the partition is gone");
                    }
                    Err(ShardError::Log(LogError::Producer(e))) => {
                        // A newer epoch already ended the producer there.
                        tracing::warn!(partition = %tp, "transaction marker refused: {e}");
                    }
                    Err(e) => {
                        tracing::warn!(partition = %tp, "writing a transaction marker: {e}; retrying");
                        failed.push(tp);
                    }
                }
            }
            let group_writes = offsets.iter().map(|tp| {
                let call = EndTxnOffsets {
                    partition: tp.partition,
                    end,
                };
                self.groups.call_partition_owner(tp.partition, call)
            });
            let results = join_all(group_writes).await;
            for (tp, written) in offsets.into_iter().zip(results) {
                match written {
                    Ok(Ok(())) => {}
                    Ok(Err(GroupError::CoordinatorNotAvailable)) => {
                        tracing::warn!(partition = %tp, "transaction marker skipped: not an offsets partition here");
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(partition = %tp, "writing a transaction marker: {e}; retrying");
                        failed.push(tp);
                    }
                    Err(e) => {
                        tracing::warn!(partition = %tp, "writing a transaction marker: {e}; retrying");
                        failed.push(tp);
                    }
                }
            }
            if failed.is_empty() {
                return;
            }
            glommio::timer::sleep(pause).await;
            pause = (pause * 2).min(MARKER_RETRY_MAX);
            left = failed;
        }
    }

    /// Tells the partitions' owners to expect the producer's transactional
    /// batches.
    async fn expect(
        &self,
        partitions: &[TopicPartition],
        producer: ProducerId,
        epoch: ProducerEpoch,
    ) {
        let (offsets, data): (Vec<_>, Vec<_>) =
            partitions.iter().partition(|tp| tp.topic == OFFSETS_TOPIC);
        let items = data
            .iter()
            .map(|tp| ((*tp).clone(), (producer, epoch)))
            .collect();
        for (tp, r) in data.iter().zip(self.shard.expect_transaction(items).await) {
            if let Err(e) = r {
                tracing::warn!(partition = %tp, "adding a partition to a transaction: {e}");
            }
        }
        for tp in offsets {
            let call = ExpectTxnOffsets {
                partition: tp.partition,
                producer,
                epoch,
            };
            match self.groups.call_partition_owner(tp.partition, call).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(partition = %tp, "adding offsets to a transaction: {e}")
                }
                Err(e) => tracing::warn!(partition = %tp, "adding offsets to a transaction: {e}"),
            }
        }
    }

    /// Aborts every open transaction past its timeout, fencing its
    /// producer (Kafka's `abortTimedOutTransactions`).
    fn abort_timed_out(self: &Rc<Self>) {
        let now = now_ms();
        let due: Vec<String> = self
            .txns
            .borrow()
            .iter()
            .filter(|(_, t)| t.timed_out(now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let me = self.clone();
            glommio::spawn_local(async move {
                // Checked again here: a request may have moved the
                // transaction on since the scan. From this check to the
                // transition's pending mark nothing else runs.
                let Some(t) = me.get(&id).filter(|t| t.timed_out(now)) else {
                    return;
                };
                tracing::info!(
                    transactional_id = id,
                    timeout_ms = t.timeout_ms,
                    "aborting a timed-out transaction"
                );
                if me.transition(&id, t.fence(now)).await.is_ok() {
                    me.finish(&id).await;
                }
            })
            .detach();
        }
    }

    /// The ids this shard coordinates, filtered as ListTransactions asks
    /// (empty filters match all; `min_duration_ms` < 0 too).
    pub(super) fn listed(
        &self,
        states: &[String],
        producers: &[i64],
        min_duration_ms: i64,
    ) -> Vec<ListedTxn> {
        let now = now_ms();
        self.txns
            .borrow()
            .iter()
            .filter(|(_, t)| {
                min_duration_ms < 0 || (t.start_ms >= 0 && now - t.start_ms > min_duration_ms)
            })
            .filter(|(_, t)| states.is_empty() || states.iter().any(|s| s == t.status.name()))
            .filter(|(_, t)| producers.is_empty() || producers.contains(&t.producer_id.0))
            .map(|(id, t)| ListedTxn {
                transactional_id: id.clone(),
                producer_id: t.producer_id,
                status: t.status,
            })
            .collect()
    }

    /// Open transactions on this shard (for `/metrics`).
    pub fn open_transactions(&self) -> usize {
        self.txns
            .borrow()
            .values()
            .filter(|t| t.status == Status::Ongoing || t.status.is_prepare())
            .count()
    }

    /// Flushes the transaction log (shutdown).
    pub async fn flush_all(&self) -> Result<(), LogError> {
        self.log.flush_all().await
    }
}

async fn timeout_loop(coordinator: Weak<TxnCoordinator>) {
    loop {
        let Some(interval) = coordinator
            .upgrade()
            .map(|c| c.config.abort_timed_out_interval)
        else {
            return;
        };
        glommio::timer::sleep(interval).await;
        let Some(c) = coordinator.upgrade() else {
            return;
        };
        c.abort_timed_out();
    }
}
