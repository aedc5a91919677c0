//! Errors of the partition log. They keep their `io::Error` source; the
//! protocol layer turns them into Kafka error codes.

use super::batch::BatchError;
use std::io;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("offset {requested} is outside the log [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        requested: u64,
        log_start: u64,
        log_end: u64,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// A write or fdatasync failed earlier; the partition accepts nothing
    /// more until it is reopened (Kafka: KAFKA_STORAGE_ERROR).
    #[error("partition log is offline after an I/O failure: {0}")]
    Offline(String),
    #[error("corrupt log state: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, LogError>;

/// Attaches what was being done (and to which file) to an I/O error.
pub(crate) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<io::Error>> IoContext<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| LogError::Io {
            context: what(),
            source: e.into(),
        })
    }
}
