//! `LogDir`: a shard's view of the data directory, and the one way the
//! broker opens a partition — user topics (`shard`) and internal logs
//! (`group`, later `txn`) alike.
//!
//! The layout is Kafka's: one `<topic>-<partition>` folder per partition,
//! beside `meta/` (broker metadata). Which partitions exist is the topic
//! table's business (`shard::topics`), not the directory listing's.
//!
//! One per shard, on that shard's thread (it holds the `DmaReady` proof
//! and the shard's `AppendSignal`). Never blocks the executor: directory
//! work runs on the shard's blocking threads.

use super::append_signal::AppendSignal;
use super::config::LogConfig;
use super::device_flush::{self, Device};
use super::error::{IoContext, Result};
use super::housekeeping::Housekeeping;
use super::io_probe::{ensure_dma_reads, DmaReady, PROBE_FILE};
use super::partition::Partition;
use super::topic_partition::TopicPartition;
use glommio::io::DmaFile;
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub struct LogDir {
    root: PathBuf,
    dma: DmaReady,
    appended: Rc<AppendSignal>,
    /// A file on the data directory's device (the probe's), kept open so
    /// this shard can fdatasync the device for partitions of other shards
    /// (`device_flush`).
    flush_anchor: DmaFile,
    /// `flush.ms` and retention for every partition opened here.
    housekeeping: Rc<Housekeeping>,
}

impl LogDir {
    /// Runs the io-poll probe in `root` (creating it), so partitions can
    /// be opened on this thread.
    pub async fn open(root: &Path) -> Result<LogDir> {
        let dma = ensure_dma_reads(root).await?;
        let anchor = root.join(PROBE_FILE);
        let flush_anchor = DmaFile::open(&anchor).await;
        let flush_anchor = flush_anchor.context(|| format!("opening {}", anchor.display()))?;
        Ok(LogDir {
            root: root.to_path_buf(),
            dma,
            appended: Rc::default(),
            flush_anchor,
            housekeeping: Housekeeping::start(),
        })
    }

    /// The data directory's device.
    pub fn device(&self) -> Device {
        device_flush::device_of(&self.flush_anchor)
    }

    /// Makes every write to the data directory's device that completed
    /// before the call durable: the fdatasync owed for appends answered
    /// `Flushed::AwaitsDeviceFlush`, shared with this shard's other
    /// pure-overwrite flushes.
    pub async fn flush_device(&self) -> std::io::Result<()> {
        let joined = device_flush::joining(&self.flush_anchor);
        // Let the other requests whose owners answered in the same wake-up
        // reach here first, so they share this fdatasync.
        futures_lite::future::yield_now().await;
        device_flush::flush(joined, &self.flush_anchor).await
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Notified after every append to a partition opened here.
    pub fn appended(&self) -> &Rc<AppendSignal> {
        &self.appended
    }

    /// `<data-dir>/<topic>-<partition>`.
    pub fn partition_dir(&self, tp: &TopicPartition) -> PathBuf {
        self.root.join(tp.to_string())
    }

    /// Opens (creating or recovering) a partition of a user topic, whose
    /// appends wake the shard's long-polling fetches, and adds it to the
    /// shard's housekeeping (`flush.ms`, retention), which it leaves by
    /// itself once dropped.
    pub async fn open_partition(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
    ) -> Result<Rc<Partition>> {
        self.open_with(tp, config, self.appended.clone()).await
    }

    /// Opens a partition of an internal log (`__consumer_offsets`): the
    /// same, but no fetch waits for it, so its appends wake nobody.
    pub async fn open_internal_partition(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
    ) -> Result<Rc<Partition>> {
        self.open_with(tp, config, Rc::default()).await
    }

    async fn open_with(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
        appended: Rc<AppendSignal>,
    ) -> Result<Rc<Partition>> {
        let dir = self.partition_dir(tp);
        let partition = Partition::open_notifying(&dir, config, &self.dma, appended);
        let partition = Rc::new(partition.await?);
        self.housekeeping.add(&partition);
        Ok(partition)
    }

    /// Deletes a closed partition's files. Unlinking gigabytes of segments
    /// takes a while, so it runs on a blocking thread.
    pub async fn remove_partition(&self, tp: &TopicPartition) -> Result<()> {
        let dir = self.partition_dir(tp);
        let doomed = dir.clone();
        let removed = glommio::executor()
            .spawn_blocking(move || std::fs::remove_dir_all(doomed))
            .await;
        removed.context(|| format!("deleting {}", dir.display()))
    }
}

/// Replaces a broker metadata file (under `meta/`) durably: temp file,
/// fsync, rename over the old one, fsync the directory — the one way strom
/// persists metadata. Blocking: callers that serve run it through
/// [`write_durably_off_thread`].
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

/// [`write_durably`] on the executor's blocking threads.
pub async fn write_durably_off_thread(path: PathBuf, contents: Vec<u8>) -> std::io::Result<()> {
    glommio::executor()
        .spawn_blocking(move || write_durably(&path, &contents))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::topic_partition::PartitionId;

    #[test]
    fn partition_dirs_are_named_like_kafka() {
        let tp = TopicPartition::new("my-topic", PartitionId::new(12).unwrap());
        assert_eq!(tp.to_string(), "my-topic-12");
        assert_eq!(
            Path::new("/d").join(tp.to_string()),
            Path::new("/d/my-topic-12")
        );
    }
}
