//! One transactional id's state and Kafka's transitions between its
//! states (`TransactionMetadata`, the transactions v1 protocol): no I/O.
//!
//! Each transition is computed from the current state into a new value;
//! the coordinator writes that value to `__transaction_state` and only
//! then makes it current, and while it writes, the id is `pending`: any
//! other request for it is CONCURRENT_TRANSACTIONS (retriable), as Kafka
//! answers while a transition is in flight.
//!
//! ```text
//!  Empty ──AddPartitions──▶ Ongoing ──EndTxn──▶ PrepareCommit ──markers──▶ CompleteCommit
//!    ▲                        │  (timeout, or      PrepareAbort  ──markers──▶ CompleteAbort
//!    └──InitProducerId── Complete*  InitProducerId: epoch+1, PrepareAbort)
//! ```

use crate::log::{ProducerEpoch, ProducerId, TopicPartition};
use std::collections::BTreeSet;

/// Kafka's `TransactionState`, with its codes in `TransactionLogValue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl Status {
    pub fn code(self) -> i8 {
        match self {
            Status::Empty => 0,
            Status::Ongoing => 1,
            Status::PrepareCommit => 2,
            Status::PrepareAbort => 3,
            Status::CompleteCommit => 4,
            Status::CompleteAbort => 5,
            Status::Dead => 6,
            Status::PrepareEpochFence => 7,
        }
    }

    pub fn from_code(code: i8) -> Option<Status> {
        Some(match code {
            0 => Status::Empty,
            1 => Status::Ongoing,
            2 => Status::PrepareCommit,
            3 => Status::PrepareAbort,
            4 => Status::CompleteCommit,
            5 => Status::CompleteAbort,
            6 => Status::Dead,
            7 => Status::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions show.
    pub fn name(self) -> &'static str {
        match self {
            Status::Empty => "Empty",
            Status::Ongoing => "Ongoing",
            Status::PrepareCommit => "PrepareCommit",
            Status::PrepareAbort => "PrepareAbort",
            Status::CompleteCommit => "CompleteCommit",
            Status::CompleteAbort => "CompleteAbort",
            Status::Dead => "Dead",
            Status::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn is_prepare(self) -> bool {
        matches!(self, Status::PrepareCommit | Status::PrepareAbort)
    }
}

/// The transaction errors, as Kafka names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("invalid request")]
    InvalidRequest,
    #[error("the transaction timeout is larger than transaction.max.timeout.ms")]
    InvalidTransactionTimeout,
    #[error("the producer id does not belong to the transactional id")]
    InvalidProducerIdMapping,
    #[error("a newer producer with the same transactional id fenced this one")]
    ProducerFenced,
    #[error("another transition of the transaction is in progress")]
    ConcurrentTransactions,
    #[error("the request is not valid in the transaction's state")]
    InvalidTxnState,
    #[error("the coordinator is not available")]
    CoordinatorNotAvailable,
    #[error("the coordinator is loading")]
    CoordinatorLoadInProgress,
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("not attempted: another partition of the request failed")]
    OperationNotAttempted,
}

/// One transactional id's state (`TransactionMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub producer_id: ProducerId,
    pub epoch: ProducerEpoch,
    /// The epoch before the last bump (kept in memory, as Kafka's
    /// `lastProducerEpoch`): a retried InitProducerId naming it gets the
    /// bumped epoch again rather than PRODUCER_FENCED.
    pub last_epoch: ProducerEpoch,
    /// The producer id before the last rotation (epoch exhausted).
    pub last_producer_id: ProducerId,
    pub timeout_ms: i32,
    pub status: Status,
    pub partitions: BTreeSet<TopicPartition>,
    /// When the current transaction started (-1: none open).
    pub start_ms: i64,
    pub last_update_ms: i64,
    /// A transition is being written: other requests wait.
    pub pending: bool,
}

/// Kafka's `isEpochExhausted`: the last epochs are kept for fencing.
fn exhausted(epoch: ProducerEpoch) -> bool {
    epoch.0 >= i16::MAX - 1
}

/// What InitProducerId does to a transactional id.
#[derive(Debug, PartialEq, Eq)]
pub enum InitStep {
    /// The producer's id and epoch for its next transactions (Empty).
    Ready(Transaction),
    /// An open transaction must be aborted first, with a bumped epoch that
    /// fences its producer; the caller answers CONCURRENT_TRANSACTIONS and
    /// the client retries.
    Fence(Transaction),
}

impl Transaction {
    /// A transactional id seen for the first time, before its first
    /// InitProducerId transition.
    pub fn new(producer_id: ProducerId, timeout_ms: i32, now_ms: i64) -> Transaction {
        Transaction {
            producer_id,
            epoch: ProducerEpoch::NONE,
            last_epoch: ProducerEpoch::NONE,
            last_producer_id: ProducerId::NONE,
            timeout_ms,
            status: Status::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
            pending: false,
        }
    }

    /// Whether InitProducerId needs a fresh producer id to proceed.
    pub fn needs_new_producer_id(&self) -> bool {
        exhausted(self.epoch)
    }

    /// InitProducerId (KIP-360: `expected` is the producer's current id
    /// and epoch, v3+). `fresh` is a new producer id, given when
    /// `needs_new_producer_id`.
    pub fn init(
        &self,
        timeout_ms: i32,
        expected: Option<(ProducerId, ProducerEpoch)>,
        fresh: Option<ProducerId>,
        now_ms: i64,
    ) -> Result<InitStep, TxnError> {
        if self.pending {
            return Err(TxnError::ConcurrentTransactions);
        }
        if let Some((id, epoch)) = expected {
            let valid = self.epoch == ProducerEpoch::NONE
                || id == self.producer_id
                || (id == self.last_producer_id && exhausted(epoch));
            if !valid {
                return Err(TxnError::ProducerFenced);
            }
        }
        match self.status {
            Status::PrepareCommit | Status::PrepareAbort => Err(TxnError::ConcurrentTransactions),
            Status::Ongoing => Ok(InitStep::Fence(self.fence(now_ms))),
            Status::Empty | Status::CompleteCommit | Status::CompleteAbort => {
                let rotate =
                    exhausted(self.epoch) && expected.is_none_or(|(_, epoch)| epoch == self.epoch);
                let mut next = self.clone();
                next.timeout_ms = timeout_ms;
                next.status = Status::Empty;
                next.partitions.clear();
                next.start_ms = -1;
                next.last_update_ms = now_ms;
                if rotate {
                    let fresh = fresh.ok_or(TxnError::CoordinatorNotAvailable)?;
                    next.last_producer_id = self.producer_id;
                    next.producer_id = fresh;
                    next.epoch = ProducerEpoch(0);
                    next.last_epoch = if expected.is_some() {
                        self.epoch
                    } else {
                        ProducerEpoch::NONE
                    };
                    return Ok(InitStep::Ready(next));
                }
                let bumped = ProducerEpoch(self.epoch.0 + 1);
                let (epoch, last) = match expected {
                    None => (bumped, ProducerEpoch::NONE),
                    Some((_, e)) if self.epoch == ProducerEpoch::NONE || e == self.epoch => {
                        (bumped, self.epoch)
                    }
                    // A retry of a bump whose answer the producer lost.
                    Some((_, e)) if e == self.last_epoch => (self.epoch, self.last_epoch),
                    Some(_) => return Err(TxnError::ProducerFenced),
                };
                next.epoch = epoch;
                next.last_epoch = last;
                Ok(InitStep::Ready(next))
            }
            Status::Dead | Status::PrepareEpochFence => Err(TxnError::InvalidTxnState),
        }
    }

    /// The abort of an open transaction by the coordinator (a timeout, or a
    /// new producer with the same id): PrepareAbort at a bumped epoch, so
    /// the markers fence the old producer.
    pub fn fence(&self, now_ms: i64) -> Transaction {
        let mut next = self.clone();
        if !exhausted(self.epoch) {
            next.epoch = ProducerEpoch(self.epoch.0 + 1);
        }
        next.last_epoch = ProducerEpoch::NONE;
        next.status = Status::PrepareAbort;
        next.last_update_ms = now_ms;
        next
    }

    /// Checks that a request comes from the id's current producer.
    fn check_producer(&self, id: ProducerId, epoch: ProducerEpoch) -> Result<(), TxnError> {
        if id != self.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if epoch != self.epoch {
            return Err(TxnError::ProducerFenced);
        }
        if self.pending {
            return Err(TxnError::ConcurrentTransactions);
        }
        Ok(())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the transaction with `added`
    /// in it, Ongoing; `None` if it already holds them all.
    pub fn add_partitions(
        &self,
        id: ProducerId,
        epoch: ProducerEpoch,
        added: &[TopicPartition],
        now_ms: i64,
    ) -> Result<Option<Transaction>, TxnError> {
        self.check_producer(id, epoch)?;
        match self.status {
            Status::PrepareCommit | Status::PrepareAbort => Err(TxnError::ConcurrentTransactions),
            Status::Ongoing if added.iter().all(|tp| self.partitions.contains(tp)) => Ok(None),
            Status::Dead | Status::PrepareEpochFence => Err(TxnError::InvalidTxnState),
            _ => {
                let mut next = self.clone();
                if self.status != Status::Ongoing {
                    next.start_ms = now_ms;
                    next.partitions.clear();
                }
                next.status = Status::Ongoing;
                next.partitions.extend(added.iter().cloned());
                next.last_update_ms = now_ms;
                Ok(Some(next))
            }
        }
    }

    /// EndTxn: PrepareCommit or PrepareAbort; `None` for a retry of an end
    /// that completed (answered NONE).
    pub fn end(
        &self,
        id: ProducerId,
        epoch: ProducerEpoch,
        commit: bool,
        now_ms: i64,
    ) -> Result<Option<Transaction>, TxnError> {
        self.check_producer(id, epoch)?;
        match (self.status, commit) {
            (Status::Ongoing, _) => {
                let mut next = self.clone();
                next.status = if commit {
                    Status::PrepareCommit
                } else {
                    Status::PrepareAbort
                };
                next.last_update_ms = now_ms;
                Ok(Some(next))
            }
            (Status::CompleteCommit, true) | (Status::CompleteAbort, false) => Ok(None),
            (Status::PrepareCommit, true) | (Status::PrepareAbort, false) => {
                Err(TxnError::ConcurrentTransactions)
            }
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// After every marker is written: CompleteCommit or CompleteAbort.
    pub fn complete(&self, now_ms: i64) -> Transaction {
        let mut next = self.clone();
        next.status = match self.status {
            Status::PrepareCommit => Status::CompleteCommit,
            _ => Status::CompleteAbort,
        };
        next.partitions.clear();
        next.start_ms = -1;
        next.last_update_ms = now_ms;
        next
    }

    /// Whether an open transaction has outlived its timeout.
    pub fn timed_out(&self, now_ms: i64) -> bool {
        self.status == Status::Ongoing
            && !self.pending
            && self.start_ms >= 0
            && now_ms > self.start_ms + i64::from(self.timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::PartitionId;

    fn tp(p: u32) -> TopicPartition {
        TopicPartition::new("t", PartitionId::new(p).unwrap())
    }

    fn ready(step: Result<InitStep, TxnError>) -> Transaction {
        match step {
            Ok(InitStep::Ready(t)) => t,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    #[test]
    fn a_transaction_commits_and_the_next_begins() {
        let t = Transaction::new(ProducerId(7), 60_000, 0);
        let t = ready(t.init(60_000, None, None, 1));
        assert_eq!((t.epoch, t.status), (ProducerEpoch(0), Status::Empty));
        let (id, e) = (t.producer_id, t.epoch);
        let t = t.add_partitions(id, e, &[tp(0)], 2).unwrap().unwrap();
        assert_eq!((t.status, t.start_ms), (Status::Ongoing, 2));
        // Adding what is already there changes nothing.
        assert_eq!(t.add_partitions(id, e, &[tp(0)], 3), Ok(None));
        let t = t.add_partitions(id, e, &[tp(1)], 3).unwrap().unwrap();
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(t.start_ms, 2);
        let t = t.end(id, e, true, 4).unwrap().unwrap();
        assert_eq!(t.status, Status::PrepareCommit);
        assert_eq!(t.end(id, e, true, 4), Err(TxnError::ConcurrentTransactions));
        assert_eq!(t.end(id, e, false, 4), Err(TxnError::InvalidTxnState));
        let t = t.complete(5);
        assert_eq!(t.status, Status::CompleteCommit);
        assert!(t.partitions.is_empty());
        // A retried EndTxn of the completed commit is answered NONE.
        assert_eq!(t.end(id, e, true, 6), Ok(None));
        assert_eq!(t.end(id, e, false, 6), Err(TxnError::InvalidTxnState));
        let t = t.add_partitions(id, e, &[tp(2)], 7).unwrap().unwrap();
        assert_eq!(t.partitions.iter().collect::<Vec<_>>(), vec![&tp(2)]);
    }

    #[test]
    fn a_second_producer_fences_the_first() {
        let t = ready(Transaction::new(ProducerId(7), 1000, 0).init(1000, None, None, 0));
        let (id, e) = (t.producer_id, t.epoch);
        let open = t.add_partitions(id, e, &[tp(0)], 1).unwrap().unwrap();
        let fence = match open.init(1000, None, None, 2) {
            Ok(InitStep::Fence(f)) => f,
            other => panic!("expected a fence, got {other:?}"),
        };
        assert_eq!(fence.status, Status::PrepareAbort);
        assert_eq!(fence.epoch, ProducerEpoch(1));
        let aborted = fence.complete(3);
        assert_eq!(aborted.status, Status::CompleteAbort);
        let new = ready(aborted.init(1000, None, None, 4));
        assert_eq!(new.epoch, ProducerEpoch(2));
        // The first producer's requests now fail.
        assert_eq!(
            new.add_partitions(id, e, &[tp(0)], 5),
            Err(TxnError::ProducerFenced)
        );
        assert_eq!(new.end(id, e, true, 5), Err(TxnError::ProducerFenced));
        assert_eq!(
            new.end(ProducerId(8), new.epoch, true, 5),
            Err(TxnError::InvalidProducerIdMapping)
        );
        assert_eq!(
            new.end(id, new.epoch, true, 5),
            Err(TxnError::InvalidTxnState)
        );
    }

    #[test]
    fn kip_360_bumps_retries_and_fences_by_expected_epoch() {
        let t = ready(Transaction::new(ProducerId(7), 1000, 0).init(1000, None, None, 0));
        let me = Some((t.producer_id, t.epoch));
        let bumped = ready(t.init(1000, me, None, 1));
        assert_eq!(
            (bumped.epoch, bumped.last_epoch),
            (ProducerEpoch(1), ProducerEpoch(0))
        );
        // The same request again (its answer was lost): the same epoch.
        let again = ready(bumped.init(1000, me, None, 2));
        assert_eq!(again.epoch, ProducerEpoch(1));
        let stale = Some((t.producer_id, ProducerEpoch(5)));
        assert_eq!(
            bumped.init(1000, stale, None, 2),
            Err(TxnError::ProducerFenced)
        );
        let other = Some((ProducerId(99), ProducerEpoch(0)));
        assert_eq!(
            bumped.init(1000, other, None, 2),
            Err(TxnError::ProducerFenced)
        );
    }

    #[test]
    fn an_exhausted_epoch_rotates_the_producer_id() {
        let mut t = ready(Transaction::new(ProducerId(7), 1000, 0).init(1000, None, None, 0));
        t.epoch = ProducerEpoch(i16::MAX - 1);
        assert!(t.needs_new_producer_id());
        let r = ready(t.init(1000, None, Some(ProducerId(8)), 1));
        assert_eq!((r.producer_id, r.epoch), (ProducerId(8), ProducerEpoch(0)));
        assert_eq!(r.last_producer_id, ProducerId(7));
    }

    #[test]
    fn pending_and_prepared_transactions_make_requests_wait() {
        let t = ready(Transaction::new(ProducerId(7), 1000, 0).init(1000, None, None, 0));
        let (id, e) = (t.producer_id, t.epoch);
        let mut busy = t.clone();
        busy.pending = true;
        assert_eq!(
            busy.init(1000, None, None, 1),
            Err(TxnError::ConcurrentTransactions)
        );
        assert_eq!(
            busy.add_partitions(id, e, &[tp(0)], 1),
            Err(TxnError::ConcurrentTransactions)
        );
        let open = t.add_partitions(id, e, &[tp(0)], 1).unwrap().unwrap();
        let prepared = open.end(id, e, false, 2).unwrap().unwrap();
        assert_eq!(
            prepared.add_partitions(id, e, &[tp(1)], 3),
            Err(TxnError::ConcurrentTransactions)
        );
        assert_eq!(
            prepared.init(1000, None, None, 3),
            Err(TxnError::ConcurrentTransactions)
        );
        assert_eq!(t.end(id, e, true, 1), Err(TxnError::InvalidTxnState));
    }

    #[test]
    fn only_open_transactions_time_out() {
        let t = ready(Transaction::new(ProducerId(7), 1000, 0).init(1000, None, None, 0));
        assert!(!t.timed_out(10_000));
        let (id, e) = (t.producer_id, t.epoch);
        let open = t.add_partitions(id, e, &[tp(0)], 100).unwrap().unwrap();
        assert!(!open.timed_out(1100));
        assert!(open.timed_out(1101));
        let fenced = open.fence(1101);
        assert_eq!(
            (fenced.status, fenced.epoch),
            (Status::PrepareAbort, ProducerEpoch(1))
        );
    }
}
