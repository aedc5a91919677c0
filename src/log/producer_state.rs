//! `ProducerState`: what each idempotent producer last appended to one
//! partition — its epoch and its last five batches' sequences and offsets
//! — so that, as in Kafka's `ProducerStateManager`:
//! - a retried batch (same producer, epoch, first and last sequence as one
//!   of the last five) is not stored again and gets its first offset back;
//! - a batch whose first sequence does not follow the last one (or a new
//!   epoch that does not start at 0) is OUT_OF_ORDER_SEQUENCE_NUMBER;
//! - an epoch older than the producer's last is INVALID_PRODUCER_EPOCH;
//! - a producer the partition does not know may start at any sequence
//!   (its state may be gone with expiration, KIP-360).
//!
//! An append holds at most one batch of a producer (the partition refuses
//! more, as Kafka refuses any record set of more than one batch), so
//! `plan` checks that batch and `apply` records it once it is stored:
//! a refused append changes nothing, and the state always describes every
//! batch below the log end (a roll snapshot in the middle of an append
//! included). Lives inside its `Partition`, changed only under the append
//! lock. As in Kafka since KIP-360, a producer is forgotten only when it
//! expires (`producer.id.expiration.ms`), not when retention or
//! DeleteRecords move the log start past its batches.
//!
//! Transactions: a producer's first transactional batch on the partition
//! starts its transaction there, at that batch's first offset, if the
//! coordinator said the partition is in the producer's transaction for that
//! epoch (`expect_transaction`, KIP-890's verification: a late batch of an
//! ended transaction cannot open one that never ends); a marker ends it.
//! The first offset of the oldest open transaction is the partition's first
//! unstable offset, which bounds what `read_committed` consumers see. An
//! open transaction's producer never expires.

use super::batch::RecordBatch;
use super::control::{marker_of, EndMarker, Marker};
use super::offset::{Offset, ProducerEpoch, ProducerId};
use super::producer_snapshot::SnapshotEntry;
use super::txn_index::AbortedTxn;
use ahash::AHashMap;
use std::collections::{BTreeMap, VecDeque};

/// Batches remembered per producer: a producer has at most five requests
/// in flight per partition (`max.in.flight.requests.per.connection`), so
/// any retry it sends is one of its last five batches.
pub const BATCHES_RETAINED: usize = 5;

/// One appended batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: Offset,
    pub last_offset: Offset,
    pub max_timestamp: i64,
}

#[derive(Debug, Clone)]
struct Entry {
    epoch: ProducerEpoch,
    /// Oldest first; at most `BATCHES_RETAINED`.
    batches: VecDeque<BatchMeta>,
    /// The epoch of the coordinator that wrote the producer's last marker.
    coordinator_epoch: i32,
    /// Where the producer's open transaction starts on this partition.
    txn_first: Option<Offset>,
}

impl Entry {
    fn new(epoch: ProducerEpoch) -> Entry {
        Entry {
            epoch,
            batches: VecDeque::with_capacity(BATCHES_RETAINED),
            coordinator_epoch: -1,
            txn_first: None,
        }
    }

    /// Whether the producer may be forgotten at `now_ms`.
    fn expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        self.txn_first.is_none()
            && self
                .batches
                .back()
                .is_none_or(|b| now_ms.saturating_sub(b.max_timestamp) >= expiration_ms)
    }

    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    fn push(&mut self, epoch: ProducerEpoch, batch: BatchMeta) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
        if self.batches.len() == BATCHES_RETAINED {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    #[error(
        "out of order sequence for producer {producer} (epoch {epoch}): \
         batch starts at {first_seq}, the last one ended at {last_seq:?}"
    )]
    OutOfOrderSequence {
        producer: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: Option<i32>,
    },
    #[error("producer {producer} sent epoch {epoch}, older than its epoch {current}")]
    InvalidProducerEpoch {
        producer: i64,
        epoch: i16,
        current: i16,
    },
    #[error("producer {producer}: {why}")]
    InvalidTxnState { producer: i64, why: &'static str },
    #[error(
        "a marker for producer {producer} from coordinator epoch {epoch}, \
         older than {current}"
    )]
    CoordinatorFenced {
        producer: i64,
        epoch: i32,
        current: i32,
    },
}

/// Who appends: a producer (every check), or a coordinator writing on a
/// producer's behalf (transactional offset commits), whose batches carry
/// the producer's id and epoch but no sequence of the producer's own, so
/// only the epoch and the transaction are checked (Kafka's
/// `AppendOrigin.COORDINATOR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Client,
    Coordinator,
}

/// What an append is, for the producer state.
#[derive(Debug)]
pub enum Plan {
    /// Store the batches, then `ProducerState::apply` this (None: no
    /// producer batch among them).
    Append(Option<Update>),
    /// A retry of a batch stored before: store nothing, answer with it.
    Duplicate(BatchMeta),
}

/// A producer's batch, as the state will record it once it is stored.
#[derive(Debug, Clone, Copy)]
pub struct Update {
    producer: ProducerId,
    epoch: ProducerEpoch,
    batch: BatchMeta,
    /// The batch opens the producer's transaction on this partition.
    starts_txn: bool,
}

#[derive(Debug, Default)]
pub struct ProducerState {
    producers: AHashMap<ProducerId, Entry>,
    /// The open transactions, by first offset.
    ongoing: BTreeMap<Offset, ProducerId>,
    /// Producers whose coordinator put this partition in their transaction
    /// (at that epoch), until their first transactional batch here.
    verified: AHashMap<ProducerId, ProducerEpoch>,
}

/// Kafka's `inSequence`: the next sequence, wrapping after i32::MAX.
fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

fn has_producer(batch: &RecordBatch) -> bool {
    batch.producer_id().0 >= 0
}

impl ProducerState {
    /// Producers with state.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Transactions open on this partition.
    pub fn open_transactions(&self) -> usize {
        self.ongoing.len()
    }

    /// Checks an append of `batches` whose first offset will be `base`;
    /// at most one of them has a producer id (the partition sees to it).
    pub fn plan(
        &self,
        batches: &[RecordBatch],
        base: Offset,
        origin: Origin,
    ) -> Result<Plan, ProducerError> {
        let mut first_offset = base;
        let mut update = None;
        for batch in batches {
            let next_offset = first_offset.plus(batch.offset_count());
            if has_producer(batch) {
                debug_assert!(update.is_none(), "one producer batch per append");
                let producer = batch.producer_id();
                let stored = self.producers.get(&producer);
                let (epoch, last_seq) =
                    stored.map_or((ProducerEpoch::NONE, None), |e| (e.epoch, e.last_seq()));
                if origin == Origin::Coordinator {
                    check_epoch(epoch, producer, batch)?;
                } else {
                    if let Some(original) = stored.and_then(|e| duplicate_of(e, batch)) {
                        return Ok(Plan::Duplicate(original));
                    }
                    check(epoch, last_seq, producer, batch)?;
                }
                let in_txn = stored.is_some_and(|e| e.txn_first.is_some());
                let starts_txn = batch.is_transactional() && !in_txn;
                if starts_txn && self.verified.get(&producer) != Some(&batch.producer_epoch()) {
                    return Err(ProducerError::InvalidTxnState {
                        producer: producer.0,
                        why: "a transactional batch for a partition not added to its transaction",
                    });
                }
                if in_txn && !batch.is_transactional() {
                    return Err(ProducerError::InvalidTxnState {
                        producer: producer.0,
                        why: "a non-transactional batch in the middle of a transaction",
                    });
                }
                update = Some(Update {
                    producer,
                    epoch: batch.producer_epoch(),
                    starts_txn,
                    batch: BatchMeta {
                        first_seq: batch.base_sequence(),
                        last_seq: batch.last_sequence(),
                        first_offset,
                        last_offset: Offset::new(next_offset.get() - 1),
                        max_timestamp: batch.max_timestamp(),
                    },
                });
            }
            first_offset = next_offset;
        }
        Ok(Plan::Append(update))
    }

    /// Records a stored append's producer batch.
    pub fn apply(&mut self, update: Option<Update>) {
        if let Some(u) = update {
            let entry = self
                .producers
                .entry(u.producer)
                .or_insert_with(|| Entry::new(u.epoch));
            entry.push(u.epoch, u.batch);
            if u.starts_txn {
                entry.txn_first = Some(u.batch.first_offset);
                self.ongoing.insert(u.batch.first_offset, u.producer);
                self.verified.remove(&u.producer);
            }
        }
    }

    /// The coordinator added this partition to `producer`'s transaction at
    /// `epoch`: its first transactional batch here may open it.
    pub fn expect_transaction(&mut self, producer: ProducerId, epoch: ProducerEpoch) {
        self.verified.insert(producer, epoch);
    }

    /// Checks a marker ending `producer`'s transaction, as Kafka's
    /// `appendEndTxnMarker`: not from an older producer epoch, nor from an
    /// older coordinator.
    pub fn check_marker(
        &self,
        producer: ProducerId,
        epoch: ProducerEpoch,
        coordinator_epoch: i32,
    ) -> Result<(), ProducerError> {
        let Some(entry) = self.producers.get(&producer) else {
            return Ok(());
        };
        if epoch < entry.epoch {
            return Err(ProducerError::InvalidProducerEpoch {
                producer: producer.0,
                epoch: epoch.0,
                current: entry.epoch.0,
            });
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(ProducerError::CoordinatorFenced {
                producer: producer.0,
                epoch: coordinator_epoch,
                current: entry.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Records a stored marker at `offset`: the producer's transaction here
    /// ends (a marker with a newer epoch also fences the older one).
    /// Returns the transaction if the marker aborted one.
    pub fn end_txn(
        &mut self,
        producer: ProducerId,
        epoch: ProducerEpoch,
        end: EndMarker,
        offset: Offset,
    ) -> Option<AbortedTxn> {
        self.verified.remove(&producer);
        let entry = self
            .producers
            .entry(producer)
            .or_insert_with(|| Entry::new(epoch));
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.coordinator_epoch = end.coordinator_epoch;
        let first = entry.txn_first.take()?;
        self.ongoing.remove(&first);
        (end.marker == Marker::Abort).then(|| AbortedTxn {
            producer,
            first,
            last: offset,
            last_stable: self.first_unstable().unwrap_or(offset.plus(1)),
        })
    }

    /// The first offset of the oldest open transaction.
    pub fn first_unstable(&self) -> Option<Offset> {
        self.ongoing.keys().next().copied()
    }

    /// Records a batch read back from the log (recovery): no checks, the
    /// log holds what was accepted. Returns the transaction an abort
    /// marker ended.
    pub fn replay(&mut self, batch: &RecordBatch) -> Option<AbortedTxn> {
        if !has_producer(batch) {
            return None;
        }
        let (producer, epoch) = (batch.producer_id(), batch.producer_epoch());
        if batch.is_control() {
            let end = marker_of(batch)?;
            let offset = batch.base();
            return self.end_txn(producer, epoch, end, offset);
        }
        let entry = self
            .producers
            .entry(producer)
            .or_insert_with(|| Entry::new(epoch));
        let meta = BatchMeta {
            first_seq: batch.base_sequence(),
            last_seq: batch.last_sequence(),
            first_offset: batch.base(),
            last_offset: Offset::new(batch.next().get() - 1),
            max_timestamp: batch.max_timestamp(),
        };
        entry.push(epoch, meta);
        if batch.is_transactional() && entry.txn_first.is_none() {
            entry.txn_first = Some(meta.first_offset);
            self.ongoing.insert(meta.first_offset, producer);
        }
        None
    }

    /// Each producer's epoch and last batch, for a snapshot.
    pub fn snapshot(&self) -> Vec<SnapshotEntry> {
        let mut entries: Vec<SnapshotEntry> = self
            .producers
            .iter()
            .map(|(&producer, e)| SnapshotEntry {
                producer,
                epoch: e.epoch,
                last: e.batches.back().copied(),
                coordinator_epoch: e.coordinator_epoch,
                txn_first: e.txn_first,
            })
            .collect();
        entries.sort_by_key(|e| e.producer);
        entries
    }

    /// The state a snapshot kept (each producer's last batch), without the
    /// producers expired by `now_ms` (as Kafka loads it).
    pub fn from_snapshot(
        entries: Vec<SnapshotEntry>,
        now_ms: i64,
        expiration_ms: i64,
    ) -> ProducerState {
        let mut state = ProducerState::default();
        for e in entries {
            let mut entry = Entry::new(e.epoch);
            if let Some(last) = e.last {
                entry.push(e.epoch, last);
            }
            entry.coordinator_epoch = e.coordinator_epoch;
            entry.txn_first = e.txn_first;
            if entry.expired(now_ms, expiration_ms) {
                continue;
            }
            if let Some(first) = e.txn_first {
                state.ongoing.insert(first, e.producer);
            }
            state.producers.insert(e.producer, entry);
        }
        state
    }

    /// Forgets producers whose last batch's timestamp is at least
    /// `expiration_ms` old (or who have none), unless a transaction of
    /// theirs is open; returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| !e.expired(now_ms, expiration_ms));
        before - self.producers.len()
    }
}

/// One of the producer's last batches, if `batch` is a retry of it.
fn duplicate_of(entry: &Entry, batch: &RecordBatch) -> Option<BatchMeta> {
    if batch.producer_epoch() != entry.epoch {
        return None;
    }
    let (first, last) = (batch.base_sequence(), batch.last_sequence());
    entry
        .batches
        .iter()
        .find(|b| b.first_seq == first && b.last_seq == last)
        .copied()
}

/// Kafka's `checkProducerEpoch` and `checkSequence`, against the
/// producer's stored epoch and last sequence.
fn check_epoch(
    current: ProducerEpoch,
    producer: ProducerId,
    batch: &RecordBatch,
) -> Result<(), ProducerError> {
    let epoch = batch.producer_epoch();
    if epoch < current {
        return Err(ProducerError::InvalidProducerEpoch {
            producer: producer.0,
            epoch: epoch.0,
            current: current.0,
        });
    }
    Ok(())
}

fn check(
    current: ProducerEpoch,
    last_seq: Option<i32>,
    producer: ProducerId,
    batch: &RecordBatch,
) -> Result<(), ProducerError> {
    check_epoch(current, producer, batch)?;
    let epoch = batch.producer_epoch();
    let first_seq = batch.base_sequence();
    let out_of_order = || ProducerError::OutOfOrderSequence {
        producer: producer.0,
        epoch: epoch.0,
        first_seq,
        last_seq,
    };
    if current == ProducerEpoch::NONE {
        // A producer this partition does not know: any start.
        return Ok(());
    }
    if epoch != current {
        // A new epoch starts its sequences over.
        return if first_seq == 0 {
            Ok(())
        } else {
            Err(out_of_order())
        };
    }
    match last_seq {
        Some(last) if in_sequence(last, first_seq) => Ok(()),
        None if first_seq == 0 => Ok(()),
        _ => Err(out_of_order()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::build;

    fn batch(producer: i64, epoch: i16, first_seq: i32, records: usize) -> RecordBatch {
        let raw = build::simple(1_000, records, 10, b'p');
        let raw = build::with_producer(&raw, ProducerId(producer), ProducerEpoch(epoch), first_seq);
        RecordBatch::split_first(&mut raw.clone()).expect("batch")
    }

    /// Plans and applies an append at `base`; returns its plan.
    fn append(
        state: &mut ProducerState,
        batches: &[RecordBatch],
        base: u64,
    ) -> Result<Plan, ProducerError> {
        let plan = state.plan(batches, Offset::new(base), Origin::Client)?;
        if let Plan::Append(update) = plan {
            state.apply(update);
            return Ok(Plan::Append(None));
        }
        Ok(plan)
    }

    #[test]
    fn retries_are_duplicates_and_gaps_and_old_epochs_are_refused() {
        let mut s = ProducerState::default();
        assert!(matches!(
            append(&mut s, &[batch(7, 0, 0, 3)], 0),
            Ok(Plan::Append(_))
        ));
        assert!(matches!(
            append(&mut s, &[batch(7, 0, 3, 2)], 3),
            Ok(Plan::Append(_))
        ));
        // The first batch again: answered with its offsets, stored never.
        match s.plan(&[batch(7, 0, 0, 3)], Offset::new(5), Origin::Client) {
            Ok(Plan::Duplicate(b)) => assert_eq!(
                (b.first_offset, b.last_offset),
                (Offset::new(0), Offset::new(2))
            ),
            other => panic!("{other:?}"),
        }
        // A gap.
        let gap = s.plan(&[batch(7, 0, 9, 1)], Offset::new(5), Origin::Client);
        assert!(matches!(
            gap,
            Err(ProducerError::OutOfOrderSequence {
                first_seq: 9,
                last_seq: Some(4),
                ..
            })
        ));
        // A new epoch must start at 0; then the old epoch is fenced.
        assert!(s
            .plan(&[batch(7, 1, 5, 1)], Offset::new(5), Origin::Client)
            .is_err());
        assert!(matches!(
            append(&mut s, &[batch(7, 1, 0, 1)], 5),
            Ok(Plan::Append(_))
        ));
        let stale = s.plan(&[batch(7, 0, 5, 1)], Offset::new(6), Origin::Client);
        assert!(matches!(
            stale,
            Err(ProducerError::InvalidProducerEpoch {
                epoch: 0,
                current: 1,
                ..
            })
        ));
        // An unknown producer may start anywhere.
        assert!(matches!(
            append(&mut s, &[batch(8, 3, 42, 1)], 6),
            Ok(Plan::Append(_))
        ));
        // Batches without a producer id are not tracked.
        let plain = RecordBatch::split_first(&mut build::simple(1, 1, 1, b'x')).unwrap();
        assert!(matches!(append(&mut s, &[plain], 7), Ok(Plan::Append(_))));
        assert_eq!(s.len(), 2);
    }

    fn txn_batch(producer: i64, epoch: i16, first_seq: i32, records: usize) -> RecordBatch {
        let raw = build::simple(1_000, records, 10, b't');
        let raw = build::transactional(&raw, ProducerId(producer), ProducerEpoch(epoch), first_seq);
        RecordBatch::split_first(&mut raw.clone()).expect("batch")
    }

    fn marker(marker: Marker) -> EndMarker {
        EndMarker {
            marker,
            coordinator_epoch: 0,
        }
    }

    #[test]
    fn transactions_open_only_when_verified_and_markers_end_them() {
        let mut s = ProducerState::default();
        let (p, e) = (ProducerId(4), ProducerEpoch(0));
        // Not added to the transaction by the coordinator: refused.
        let unverified = s.plan(&[txn_batch(4, 0, 0, 2)], Offset::new(0), Origin::Client);
        assert!(matches!(
            unverified,
            Err(ProducerError::InvalidTxnState { .. })
        ));
        s.expect_transaction(p, e);
        assert!(append(&mut s, &[txn_batch(4, 0, 0, 2)], 10).is_ok());
        assert_eq!(s.first_unstable(), Some(Offset::new(10)));
        // The transaction's later batches need no new verification; a
        // non-transactional batch in its middle is refused.
        assert!(append(&mut s, &[txn_batch(4, 0, 2, 1)], 12).is_ok());
        let plain = s.plan(&[batch(4, 0, 3, 1)], Offset::new(13), Origin::Client);
        assert!(matches!(plain, Err(ProducerError::InvalidTxnState { .. })));
        // Another producer's transaction, later.
        s.expect_transaction(ProducerId(5), e);
        assert!(append(&mut s, &[txn_batch(5, 0, 0, 1)], 13).is_ok());
        // A commit ends 4's: the first unstable offset moves to 5's.
        assert_eq!(
            s.end_txn(p, e, marker(Marker::Commit), Offset::new(14)),
            None
        );
        assert_eq!(s.first_unstable(), Some(Offset::new(13)));
        // The next transaction needs verifying again.
        let next = s.plan(&[txn_batch(4, 0, 3, 1)], Offset::new(15), Origin::Client);
        assert!(matches!(next, Err(ProducerError::InvalidTxnState { .. })));
        // An abort of 5's is returned, with the LSO after it.
        let aborted = s.end_txn(ProducerId(5), e, marker(Marker::Abort), Offset::new(15));
        assert_eq!(
            aborted,
            Some(AbortedTxn {
                producer: ProducerId(5),
                first: Offset::new(13),
                last: Offset::new(15),
                last_stable: Offset::new(16),
            })
        );
        assert_eq!(s.first_unstable(), None);
    }

    #[test]
    fn a_marker_with_a_newer_epoch_fences_and_old_markers_are_refused() {
        let mut s = ProducerState::default();
        let p = ProducerId(4);
        s.expect_transaction(p, ProducerEpoch(0));
        assert!(append(&mut s, &[txn_batch(4, 0, 0, 1)], 0).is_ok());
        // The coordinator aborts with a bumped epoch (a fenced producer).
        let abort = marker(Marker::Abort);
        assert!(s
            .end_txn(p, ProducerEpoch(1), abort, Offset::new(1))
            .is_some());
        let zombie = s.plan(&[batch(4, 0, 1, 1)], Offset::new(2), Origin::Client);
        assert!(matches!(
            zombie,
            Err(ProducerError::InvalidProducerEpoch { .. })
        ));
        assert!(s.check_marker(p, ProducerEpoch(0), 0).is_err());
        assert!(s.check_marker(p, ProducerEpoch(1), -1).is_err());
        assert!(s.check_marker(p, ProducerEpoch(1), 0).is_ok());
        // The new epoch starts its sequences at 0.
        s.expect_transaction(p, ProducerEpoch(1));
        assert!(append(&mut s, &[txn_batch(4, 1, 0, 1)], 2).is_ok());
    }

    #[test]
    fn open_transactions_survive_snapshots_and_replay_and_never_expire() {
        let mut s = ProducerState::default();
        let p = ProducerId(6);
        s.expect_transaction(p, ProducerEpoch(0));
        let mut b = txn_batch(6, 0, 0, 3);
        b.assign_offset_and_epoch(Offset::new(20), crate::log::LeaderEpoch::FIRST);
        // As the log replays it: the transaction opens at 20.
        let mut replayed = ProducerState::default();
        assert_eq!(replayed.replay(&b), None);
        assert_eq!(replayed.first_unstable(), Some(Offset::new(20)));
        // A snapshot keeps it open, past any expiration.
        let kept = ProducerState::from_snapshot(replayed.snapshot(), i64::MAX, 1);
        assert_eq!(kept.first_unstable(), Some(Offset::new(20)));
        assert_eq!(replayed.expire(i64::MAX, 1), 0);
        // An abort marker replayed ends it and says so.
        let mut raw = crate::log::control::marker_batch(p, ProducerEpoch(0), Marker::Abort, 0, 2);
        let mut m = RecordBatch::split_first(&mut raw).unwrap();
        m.assign_offset_and_epoch(Offset::new(23), crate::log::LeaderEpoch::FIRST);
        let aborted = replayed.replay(&m).expect("an abort");
        assert_eq!(
            (aborted.first, aborted.last),
            (Offset::new(20), Offset::new(23))
        );
        assert_eq!(replayed.first_unstable(), None);
    }

    #[test]
    fn only_the_last_five_batches_are_retries() {
        let mut s = ProducerState::default();
        for i in 0..7 {
            let appended = append(&mut s, &[batch(1, 0, i * 2, 2)], (i * 2) as u64);
            assert!(matches!(appended, Ok(Plan::Append(_))));
        }
        // Batch 1 (sequences 2-3) fell out of the last five: its retry is
        // out of order (as in Kafka); batch 2 (4-5) is still a duplicate.
        assert!(s
            .plan(&[batch(1, 0, 2, 2)], Offset::new(14), Origin::Client)
            .is_err());
        let retry = s.plan(&[batch(1, 0, 4, 2)], Offset::new(14), Origin::Client);
        assert!(matches!(retry, Ok(Plan::Duplicate(b)) if b.first_offset == Offset::new(4)));
        // A refused batch changes nothing: 14 still follows.
        assert!(s
            .plan(&[batch(1, 0, 99, 1)], Offset::new(14), Origin::Client)
            .is_err());
        assert!(matches!(
            append(&mut s, &[batch(1, 0, 14, 1)], 14),
            Ok(Plan::Append(_))
        ));
    }

    #[test]
    fn producers_idle_past_the_expiration_are_forgotten() {
        let mut s = ProducerState::default();
        // Batches built at timestamp 1000.
        assert!(matches!(
            append(&mut s, &[batch(1, 0, 0, 1)], 0),
            Ok(Plan::Append(_))
        ));
        assert_eq!(s.expire(1_000 + 59_999, 60_000), 0);
        assert_eq!(s.expire(1_000 + 60_000, 60_000), 1);
        // Forgotten: it may start over anywhere, as an unknown producer.
        assert!(matches!(
            append(&mut s, &[batch(1, 0, 77, 1)], 1),
            Ok(Plan::Append(_))
        ));
    }

    #[test]
    fn sequences_wrap_after_i32_max() {
        let mut s = ProducerState::default();
        let near_end = batch(1, 0, i32::MAX - 1, 2);
        assert_eq!(near_end.last_sequence(), i32::MAX);
        assert!(matches!(
            append(&mut s, &[near_end], 0),
            Ok(Plan::Append(_))
        ));
        assert!(matches!(
            append(&mut s, &[batch(1, 0, 0, 1)], 2),
            Ok(Plan::Append(_))
        ));
        let across = batch(1, 0, i32::MAX, 3);
        assert_eq!(across.last_sequence(), 1);
    }

    #[test]
    fn replay_and_snapshots_rebuild_what_appends_recorded() {
        let mut s = ProducerState::default();
        let mut b = batch(5, 2, 10, 4);
        b.assign_offset_and_epoch(Offset::new(100), crate::log::LeaderEpoch::FIRST);
        s.replay(&b);
        assert!(
            matches!(s.plan(&[batch(5, 2, 10, 4)], Offset::new(104), Origin::Client), Ok(Plan::Duplicate(m)) if m.first_offset == Offset::new(100))
        );
        assert!(matches!(
            s.plan(&[batch(5, 2, 14, 1)], Offset::new(104), Origin::Client),
            Ok(Plan::Append(_))
        ));
        // A snapshot keeps the last batch, and drops the expired on load.
        let kept = ProducerState::from_snapshot(s.snapshot(), 1_000 + 59_999, 60_000);
        let retry = kept.plan(&[batch(5, 2, 10, 4)], Offset::new(104), Origin::Client);
        assert!(matches!(retry, Ok(Plan::Duplicate(_))));
        let expired = ProducerState::from_snapshot(s.snapshot(), 1_000 + 60_000, 60_000);
        assert!(expired.is_empty());
    }
}
