//! Errors of the partition log. I/O failures keep their `io::Error`
//! whole (`IoFailure`), so a full disk (ENOSPC) tells itself from a failing
//! one (EIO) all the way up; the protocol layer turns them into Kafka error
//! codes.

use super::batch::BatchError;
use super::offset::Offset;
use super::producer_state::ProducerError;
use std::io;
use std::sync::Arc;

/// A failed I/O operation: what was being done (and to which file), and
/// the OS error. Cloneable and `Send`: every waiter on a failed write gets
/// it, and it crosses shards inside replies.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{context}: {source}")]
pub struct IoFailure {
    pub context: String,
    #[source]
    pub source: Arc<io::Error>,
}

impl IoFailure {
    pub fn new(context: impl Into<String>, source: io::Error) -> IoFailure {
        IoFailure {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// The OS error number, when the failure came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    /// ENOSPC or EDQUOT: no room left, as opposed to a failing device.
    pub fn is_disk_full(&self) -> bool {
        matches!(self.errno(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("offset {requested} is outside the log [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        requested: Offset,
        log_start: Offset,
        log_end: Offset,
    },
    #[error(transparent)]
    Io(#[from] IoFailure),
    /// An idempotent producer's batch out of its sequence or epoch.
    #[error(transparent)]
    Producer(#[from] ProducerError),
    /// A write or fdatasync failed earlier; the partition accepts nothing
    /// more until it is reopened (Kafka: KAFKA_STORAGE_ERROR).
    #[error("partition log is offline after an I/O failure: {0}")]
    Offline(IoFailure),
    /// The partition was closed (its topic is being deleted).
    #[error("partition is closed")]
    Closed,
    #[error("corrupt log state: {0}")]
    Corrupt(String),
}

impl LogError {
    /// The I/O failure behind this error, for taking a partition offline:
    /// the failure itself, or the error described as one.
    pub fn into_failure(self) -> IoFailure {
        match self {
            LogError::Io(f) | LogError::Offline(f) => f,
            other => IoFailure::new(other.to_string(), io::Error::other("log error")),
        }
    }
}

pub type Result<T> = std::result::Result<T, LogError>;

/// Attaches what was being done (and to which file) to an I/O error.
pub(crate) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<io::Error>> IoContext<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| LogError::Io(IoFailure::new(what(), e.into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_tells_itself_from_a_failing_one() {
        let full = IoFailure::new("write at 0", io::Error::from_raw_os_error(libc::ENOSPC));
        let failing = IoFailure::new("fdatasync", io::Error::from_raw_os_error(libc::EIO));
        assert!(full.is_disk_full());
        assert!(!failing.is_disk_full());
        assert_eq!(failing.errno(), Some(libc::EIO));
        let offline = LogError::Offline(full.clone());
        assert!(offline.to_string().contains("os error 28"), "{offline}");
        assert!(LogError::Io(full).into_failure().is_disk_full());
    }
}
