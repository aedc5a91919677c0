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

/// Replaces a broker metadata file (under `meta/`) durably: temp file,
/// fsync, rename over the old one, fsync the directory — the one way strom
/// persists metadata. Small files, written rarely: blocking calls are brief.
pub fn write_durably(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all())
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
