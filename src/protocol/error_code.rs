//! Kafka's error codes, and the mapping from strom's typed errors.

use crate::group::GroupError;
use crate::log::producer_state::ProducerError;
#[cfg(test)]
use crate::log::Offset;
use crate::log::{BatchError, LogError};
use crate::shard::topics::TopicError;
use crate::shard::ShardError;
use crate::txn::state::TxnError;

/// The error codes strom answers with (Kafka's `Errors` enum, by value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
pub enum ErrorCode {
    None = 0,
    OffsetOutOfRange = 1,
    CorruptMessage = 2,
    UnknownTopicOrPartition = 3,
    OffsetMetadataTooLarge = 12,
    CoordinatorLoadInProgress = 14,
    CoordinatorNotAvailable = 15,
    IllegalGeneration = 22,
    InconsistentGroupProtocol = 23,
    InvalidGroupId = 24,
    UnknownMemberId = 25,
    InvalidSessionTimeout = 26,
    RebalanceInProgress = 27,
    NonEmptyGroup = 68,
    GroupIdNotFound = 69,
    MemberIdRequired = 79,
    FencedInstanceId = 82,
    GroupSubscribedToTopic = 86,
    MessageTooLarge = 10,
    InvalidTopicException = 17,
    RecordListTooLarge = 18,
    InvalidRequiredAcks = 21,
    UnsupportedVersion = 35,
    TopicAlreadyExists = 36,
    InvalidPartitions = 37,
    InvalidReplicationFactor = 38,
    InvalidReplicaAssignment = 39,
    InvalidConfig = 40,
    InvalidRequest = 42,
    PolicyViolation = 44,
    UnknownServerError = -1,
    OutOfOrderSequenceNumber = 45,
    InvalidProducerEpoch = 47,
    InvalidTxnState = 48,
    InvalidProducerIdMapping = 49,
    InvalidTransactionTimeout = 50,
    ConcurrentTransactions = 51,
    TransactionCoordinatorFenced = 52,
    OperationNotAttempted = 55,
    KafkaStorageError = 56,
    InvalidRecord = 87,
    UnstableOffsetCommit = 88,
    ProducerFenced = 90,
    TransactionalIdNotFound = 105,
}

impl ErrorCode {
    pub fn code(self) -> i16 {
        self as i16
    }
}

impl From<GroupError> for ErrorCode {
    fn from(e: GroupError) -> Self {
        match e {
            // A coordinator that cannot store is, to a client, unavailable:
            // it retries and finds the coordinator again.
            GroupError::CoordinatorNotAvailable | GroupError::Storage => {
                ErrorCode::CoordinatorNotAvailable
            }
            GroupError::CoordinatorLoadInProgress => ErrorCode::CoordinatorLoadInProgress,
            GroupError::InvalidGroupId => ErrorCode::InvalidGroupId,
            GroupError::UnknownMemberId => ErrorCode::UnknownMemberId,
            GroupError::InvalidSessionTimeout => ErrorCode::InvalidSessionTimeout,
            GroupError::RebalanceInProgress => ErrorCode::RebalanceInProgress,
            GroupError::IllegalGeneration => ErrorCode::IllegalGeneration,
            GroupError::InconsistentGroupProtocol => ErrorCode::InconsistentGroupProtocol,
            GroupError::MemberIdRequired => ErrorCode::MemberIdRequired,
            GroupError::FencedInstanceId => ErrorCode::FencedInstanceId,
            GroupError::GroupIdNotFound => ErrorCode::GroupIdNotFound,
            GroupError::NonEmptyGroup => ErrorCode::NonEmptyGroup,
            GroupError::GroupSubscribedToTopic => ErrorCode::GroupSubscribedToTopic,
            GroupError::UnknownTopicOrPartition => ErrorCode::UnknownTopicOrPartition,
            GroupError::OffsetMetadataTooLarge => ErrorCode::OffsetMetadataTooLarge,
            GroupError::ProducerFenced => ErrorCode::ProducerFenced,
            GroupError::InvalidTxnState => ErrorCode::InvalidTxnState,
            GroupError::UnstableOffsetCommit => ErrorCode::UnstableOffsetCommit,
        }
    }
}

impl From<TxnError> for ErrorCode {
    fn from(e: TxnError) -> Self {
        match e {
            TxnError::InvalidRequest => ErrorCode::InvalidRequest,
            TxnError::InvalidTransactionTimeout => ErrorCode::InvalidTransactionTimeout,
            TxnError::InvalidProducerIdMapping => ErrorCode::InvalidProducerIdMapping,
            TxnError::ProducerFenced => ErrorCode::ProducerFenced,
            TxnError::ConcurrentTransactions => ErrorCode::ConcurrentTransactions,
            TxnError::InvalidTxnState => ErrorCode::InvalidTxnState,
            TxnError::CoordinatorNotAvailable => ErrorCode::CoordinatorNotAvailable,
            TxnError::CoordinatorLoadInProgress => ErrorCode::CoordinatorLoadInProgress,
            TxnError::UnknownTopicOrPartition => ErrorCode::UnknownTopicOrPartition,
            TxnError::OperationNotAttempted => ErrorCode::OperationNotAttempted,
        }
    }
}

/// A transaction error's code at a request's version: clients before
/// `fenced_since` know PRODUCER_FENCED as INVALID_PRODUCER_EPOCH (as
/// Kafka answers them).
pub fn txn_code(e: Option<TxnError>, version: i16, fenced_since: i16) -> i16 {
    match e {
        None => ErrorCode::None.code(),
        Some(TxnError::ProducerFenced) if version < fenced_since => {
            ErrorCode::InvalidProducerEpoch.code()
        }
        Some(e) => ErrorCode::from(e).code(),
    }
}

/// The code of an optional group error (None: NONE).
pub fn group_code(e: Option<GroupError>) -> i16 {
    e.map_or(0, |e| ErrorCode::from(e).code())
}

/// The code of a group result.
pub fn group_result_code(r: &Result<(), GroupError>) -> i16 {
    group_code(r.err())
}

impl From<&BatchError> for ErrorCode {
    fn from(e: &BatchError) -> Self {
        match e {
            BatchError::Truncated { .. }
            | BatchError::InvalidLength(_)
            | BatchError::BadMagic(_)
            | BatchError::CrcMismatch { .. } => ErrorCode::CorruptMessage,
            BatchError::InvalidRecord(_) => ErrorCode::InvalidRecord,
            BatchError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            BatchError::RecordListTooLarge { .. } => ErrorCode::RecordListTooLarge,
        }
    }
}

impl From<&LogError> for ErrorCode {
    fn from(e: &LogError) -> Self {
        match e {
            LogError::Batch(b) => b.into(),
            LogError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            LogError::Io(_) | LogError::Offline(_) | LogError::Closed => {
                ErrorCode::KafkaStorageError
            }
            LogError::Corrupt(_) => ErrorCode::UnknownServerError,
            LogError::Producer(ProducerError::OutOfOrderSequence { .. }) => {
                ErrorCode::OutOfOrderSequenceNumber
            }
            LogError::Producer(ProducerError::InvalidProducerEpoch { .. }) => {
                ErrorCode::InvalidProducerEpoch
            }
            LogError::Producer(ProducerError::InvalidTxnState { .. }) => ErrorCode::InvalidTxnState,
            LogError::Producer(ProducerError::CoordinatorFenced { .. }) => {
                ErrorCode::TransactionCoordinatorFenced
            }
        }
    }
}

impl From<&TopicError> for ErrorCode {
    fn from(e: &TopicError) -> Self {
        match e {
            TopicError::InvalidName(..) => ErrorCode::InvalidTopicException,
            TopicError::AlreadyExists(_) => ErrorCode::TopicAlreadyExists,
            TopicError::InvalidPartitions(_) | TopicError::PartitionsCannotShrink(..) => {
                ErrorCode::InvalidPartitions
            }
            TopicError::Unknown(_) => ErrorCode::UnknownTopicOrPartition,
            TopicError::InvalidConfig(_) => ErrorCode::InvalidConfig,
            TopicError::PartitionLimit(_) => ErrorCode::PolicyViolation,
            TopicError::Io { .. } | TopicError::Corrupt { .. } => ErrorCode::KafkaStorageError,
        }
    }
}

impl From<&ShardError> for ErrorCode {
    fn from(e: &ShardError) -> Self {
        match e {
            ShardError::Topic(t) => t.into(),
            ShardError::Log(l) => l.into(),
            ShardError::UnknownPartition(..) => ErrorCode::UnknownTopicOrPartition,
            ShardError::Gone(_) => ErrorCode::KafkaStorageError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_errors_map_to_kafka_codes() {
        let crc = BatchError::CrcMismatch {
            stored: 1,
            computed: 2,
        };
        assert_eq!(ErrorCode::from(&crc).code(), 2);
        assert_eq!(ErrorCode::from(&BatchError::InvalidRecord("x")).code(), 87);
        let big = BatchError::MessageTooLarge { size: 2, max: 1 };
        assert_eq!(ErrorCode::from(&big).code(), 10);
        let huge = BatchError::RecordListTooLarge { size: 2, max: 1 };
        assert_eq!(ErrorCode::from(&LogError::Batch(huge)).code(), 18);
        let oor = LogError::OffsetOutOfRange {
            requested: Offset::new(9),
            log_start: Offset::ZERO,
            log_end: Offset::new(1),
        };
        assert_eq!(ErrorCode::from(&oor).code(), 1);
    }
}
