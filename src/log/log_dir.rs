//! A data directory: one `<topic>-<partition>` folder per partition, as
//! Kafka lays it out, beside `meta/` (broker metadata, later issues).
//!
//! Opening a data directory runs the io-poll probe for the calling thread
//! first, then opens and recovers every partition found.

use super::config::LogConfig;
use super::error::{IoContext, Result};
use super::io_probe::{ensure_dma_reads, DmaReady};
use super::partition::Partition;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// `<topic>-<partition>`; topic names may themselves contain dashes.
    pub fn from_dir_name(name: &str) -> Option<TopicPartition> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty() || topic.starts_with('.') {
            return None;
        }
        Some(TopicPartition::new(topic, partition.parse().ok()?))
    }

    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        data_dir.join(self.to_string())
    }
}

/// Opens every partition under `data_dir` with `config`, oldest name first.
/// Runs the io-poll probe for this thread first and returns its proof for
/// partitions opened later on the same thread.
pub async fn open_all(
    data_dir: &Path,
    config: &LogConfig,
) -> Result<(DmaReady, Vec<(TopicPartition, Partition)>)> {
    let ready = ensure_dma_reads(data_dir).await?;
    let mut found = Vec::new();
    let entries =
        std::fs::read_dir(data_dir).context(|| format!("listing {}", data_dir.display()))?;
    for entry in entries {
        let entry = entry.context(|| format!("listing {}", data_dir.display()))?;
        if !entry.path().is_dir() {
            continue;
        }
        if let Some(tp) = TopicPartition::from_dir_name(&entry.file_name().to_string_lossy()) {
            found.push(tp);
        }
    }
    found.sort();
    let mut out = Vec::with_capacity(found.len());
    for tp in found {
        let partition = Partition::open(&tp.dir(data_dir), config.clone(), &ready).await?;
        out.push((tp, partition));
    }
    Ok((ready, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_parse_like_kafka() {
        assert_eq!(
            TopicPartition::from_dir_name("my-topic-12"),
            Some(TopicPartition::new("my-topic", 12))
        );
        assert_eq!(TopicPartition::from_dir_name("meta"), None);
        assert_eq!(TopicPartition::from_dir_name("-3"), None);
        assert_eq!(TopicPartition::from_dir_name("t-x"), None);
    }
}
