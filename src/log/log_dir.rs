//! The layout of a data directory: one `<topic>-<partition>` folder per
//! partition, as Kafka lays it out, beside `meta/` (broker metadata).
//! Which partitions exist is the topic table's business (`shard::topics`),
//! not the directory listing's.

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

    /// `<data-dir>/<topic>-<partition>`.
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        data_dir.join(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_dirs_are_named_like_kafka() {
        let tp = TopicPartition::new("my-topic", 12);
        assert_eq!(tp.dir(Path::new("/d")), Path::new("/d/my-topic-12"));
    }
}
