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

use super::batch::RecordBatch;
use super::offset::{Offset, ProducerEpoch, ProducerId};
use super::producer_snapshot::SnapshotEntry;
use ahash::AHashMap;
use std::collections::VecDeque;

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
}

impl Entry {
    fn new(epoch: ProducerEpoch) -> Entry {
        Entry {
            epoch,
            batches: VecDeque::with_capacity(BATCHES_RETAINED),
        }
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
}

#[derive(Debug, Default)]
pub struct ProducerState {
    producers: AHashMap<ProducerId, Entry>,
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

    /// Checks an append of `batches` whose first offset will be `base`;
    /// at most one of them has a producer id (the partition sees to it).
    pub fn plan(&self, batches: &[RecordBatch], base: Offset) -> Result<Plan, ProducerError> {
        let mut first_offset = base;
        let mut update = None;
        for batch in batches {
            let next_offset = first_offset.plus(batch.offset_count());
            if has_producer(batch) {
                debug_assert!(update.is_none(), "one producer batch per append");
                let producer = batch.producer_id();
                let stored = self.producers.get(&producer);
                if let Some(original) = stored.and_then(|e| duplicate_of(e, batch)) {
                    return Ok(Plan::Duplicate(original));
                }
                let (epoch, last_seq) =
                    stored.map_or((ProducerEpoch::NONE, None), |e| (e.epoch, e.last_seq()));
                check(epoch, last_seq, producer, batch)?;
                update = Some(Update {
                    producer,
                    epoch: batch.producer_epoch(),
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
        }
    }

    /// Records a batch read back from the log (recovery): no checks, the
    /// log holds what was accepted.
    pub fn replay(&mut self, batch: &RecordBatch) {
        if !has_producer(batch) {
            return;
        }
        let entry = self
            .producers
            .entry(batch.producer_id())
            .or_insert_with(|| Entry::new(batch.producer_epoch()));
        let meta = BatchMeta {
            first_seq: batch.base_sequence(),
            last_seq: batch.last_sequence(),
            first_offset: batch.base(),
            last_offset: Offset::new(batch.next().get() - 1),
            max_timestamp: batch.max_timestamp(),
        };
        entry.push(batch.producer_epoch(), meta);
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
        let alive = |e: &SnapshotEntry| {
            e.last
                .is_some_and(|b| now_ms.saturating_sub(b.max_timestamp) < expiration_ms)
        };
        for e in entries.into_iter().filter(alive) {
            let mut entry = Entry::new(e.epoch);
            if let Some(last) = e.last {
                entry.push(e.epoch, last);
            }
            state.producers.insert(e.producer, entry);
        }
        state
    }

    /// Forgets producers whose last batch's timestamp is at least
    /// `expiration_ms` old (or who have none); returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.batches
                .back()
                .is_some_and(|b| now_ms.saturating_sub(b.max_timestamp) < expiration_ms)
        });
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
fn check(
    current: ProducerEpoch,
    last_seq: Option<i32>,
    producer: ProducerId,
    batch: &RecordBatch,
) -> Result<(), ProducerError> {
    let epoch = batch.producer_epoch();
    let first_seq = batch.base_sequence();
    if epoch < current {
        return Err(ProducerError::InvalidProducerEpoch {
            producer: producer.0,
            epoch: epoch.0,
            current: current.0,
        });
    }
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
        let plan = state.plan(batches, Offset::new(base))?;
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
        match s.plan(&[batch(7, 0, 0, 3)], Offset::new(5)) {
            Ok(Plan::Duplicate(b)) => assert_eq!(
                (b.first_offset, b.last_offset),
                (Offset::new(0), Offset::new(2))
            ),
            other => panic!("{other:?}"),
        }
        // A gap.
        let gap = s.plan(&[batch(7, 0, 9, 1)], Offset::new(5));
        assert!(matches!(
            gap,
            Err(ProducerError::OutOfOrderSequence {
                first_seq: 9,
                last_seq: Some(4),
                ..
            })
        ));
        // A new epoch must start at 0; then the old epoch is fenced.
        assert!(s.plan(&[batch(7, 1, 5, 1)], Offset::new(5)).is_err());
        assert!(matches!(
            append(&mut s, &[batch(7, 1, 0, 1)], 5),
            Ok(Plan::Append(_))
        ));
        let stale = s.plan(&[batch(7, 0, 5, 1)], Offset::new(6));
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

    #[test]
    fn only_the_last_five_batches_are_retries() {
        let mut s = ProducerState::default();
        for i in 0..7 {
            let appended = append(&mut s, &[batch(1, 0, i * 2, 2)], (i * 2) as u64);
            assert!(matches!(appended, Ok(Plan::Append(_))));
        }
        // Batch 1 (sequences 2-3) fell out of the last five: its retry is
        // out of order (as in Kafka); batch 2 (4-5) is still a duplicate.
        assert!(s.plan(&[batch(1, 0, 2, 2)], Offset::new(14)).is_err());
        let retry = s.plan(&[batch(1, 0, 4, 2)], Offset::new(14));
        assert!(matches!(retry, Ok(Plan::Duplicate(b)) if b.first_offset == Offset::new(4)));
        // A refused batch changes nothing: 14 still follows.
        assert!(s.plan(&[batch(1, 0, 99, 1)], Offset::new(14)).is_err());
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
            matches!(s.plan(&[batch(5, 2, 10, 4)], Offset::new(104)), Ok(Plan::Duplicate(m)) if m.first_offset == Offset::new(100))
        );
        assert!(matches!(
            s.plan(&[batch(5, 2, 14, 1)], Offset::new(104)),
            Ok(Plan::Append(_))
        ));
        // A snapshot keeps the last batch, and drops the expired on load.
        let kept = ProducerState::from_snapshot(s.snapshot(), 1_000 + 59_999, 60_000);
        let retry = kept.plan(&[batch(5, 2, 10, 4)], Offset::new(104));
        assert!(matches!(retry, Ok(Plan::Duplicate(_))));
        let expired = ProducerState::from_snapshot(s.snapshot(), 1_000 + 60_000, 60_000);
        assert!(expired.is_empty());
    }
}
