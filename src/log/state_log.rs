//! `StateLog`: the partitions of an internal state log
//! (`__consumer_offsets`, `__transaction_state`) that one coordinator
//! shard owns, and the rules every such log keeps.
//!
//! - A key lives in one partition: Kafka's
//!   `abs(key.hashCode()) % partitions` ([`key_partition`]). The count is
//!   pinned in `meta/` on first start ([`pin_partition_count`]): changing
//!   it would orphan every stored key.
//! - Records are keyed; the latest record of a key wins on replay, and an
//!   empty value is a tombstone.
//! - The log does not grow without bound: once a partition holds more
//!   than twice its segment size it is rolled, the coordinator's live
//!   state is appended after the roll (taken from memory then, so never
//!   older than a record before it), and every older segment deleted.
//!
//! Owned by one shard's coordinator; nothing here is `Send`.

use super::batch::build;
use super::config::LogConfig;
use super::error::Result;
use super::log_dir::LogDir;
use super::partition::{now_ms, AppendInfo, Durability, Partition};
use super::topic_partition::{PartitionId, TopicPartition};
use super::RecordBatch;
use ahash::{AHashMap, AHashSet};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

/// A record of a state log: key and value, as stored.
pub type KeyedRecord = (Vec<u8>, Vec<u8>);

pub struct StateLog {
    topic: &'static str,
    segment_bytes: u64,
    logs: RefCell<AHashMap<PartitionId, Rc<Partition>>>,
    /// Partitions being compacted right now.
    compacting: RefCell<AHashSet<PartitionId>>,
}

impl StateLog {
    /// Opens (creating or recovering) the partitions of `topic` given.
    pub async fn open(
        log_dir: &LogDir,
        topic: &'static str,
        owned: impl IntoIterator<Item = PartitionId>,
        segment_bytes: u64,
    ) -> Result<StateLog> {
        let config = LogConfig {
            segment_bytes,
            write_buffer_bytes: 64 << 10,
            tail_cache_bytes: 256 << 10,
            ..LogConfig::default()
        };
        let mut logs = AHashMap::new();
        for p in owned {
            let tp = TopicPartition::new(topic, p);
            let log = log_dir.open_internal_partition(&tp, config.clone()).await?;
            logs.insert(p, log);
        }
        Ok(StateLog {
            topic,
            segment_bytes,
            logs: RefCell::new(logs),
            compacting: RefCell::default(),
        })
    }

    pub fn topic(&self) -> &'static str {
        self.topic
    }

    pub fn get(&self, p: PartitionId) -> Option<Rc<Partition>> {
        self.logs.borrow().get(&p).cloned()
    }

    /// The partitions owned, in partition order.
    pub fn partitions(&self) -> Vec<(PartitionId, Rc<Partition>)> {
        let mut all: Vec<_> = self
            .logs
            .borrow()
            .iter()
            .map(|(p, l)| (*p, l.clone()))
            .collect();
        all.sort_by_key(|(p, _)| *p);
        all
    }

    /// Hands every batch of every partition, oldest first, to `apply`
    /// (with its partition).
    pub async fn replay(&self, mut apply: impl FnMut(PartitionId, &RecordBatch)) -> Result<()> {
        for (p, log) in self.partitions() {
            let mut offset = log.log_start();
            while offset < log.next_offset() {
                let batches = log.read_batches(offset, 1 << 20).await?;
                let Some(last) = batches.last() else { break };
                offset = last.next();
                for batch in &batches {
                    apply(p, batch);
                }
            }
        }
        Ok(())
    }

    /// Appends records to partition `p`, as durable as `durability`;
    /// `None` if this shard does not own `p`.
    pub async fn append(
        &self,
        p: PartitionId,
        records: &[KeyedRecord],
        durability: Durability,
    ) -> Option<Result<AppendInfo>> {
        let log = self.get(p)?;
        let appended = async { log.append(batches(records)?, durability).await };
        Some(appended.await)
    }

    /// Whether partition `p` is due for compaction; marks it compacting
    /// if so, until [`StateLog::compact`] ends. `held()`, asked only of a
    /// partition big enough, says the coordinator cannot compact it now.
    pub fn compaction_due(&self, p: PartitionId, held: impl FnOnce() -> bool) -> bool {
        let big = self
            .get(p)
            .is_some_and(|log| log.size_bytes() > 2 * self.segment_bytes);
        big && !held() && self.compacting.borrow_mut().insert(p)
    }

    /// Rewrites partition `p` as the live records `live()` gives (asked
    /// after the roll) and deletes the segments before them.
    pub async fn compact(&self, p: PartitionId, live: impl FnOnce() -> Vec<KeyedRecord>) {
        if let Err(e) = self.compact_now(p, live).await {
            tracing::error!(topic = self.topic, partition = %p, "compacting: {e}");
        }
        self.compacting.borrow_mut().remove(&p);
    }

    async fn compact_now(
        &self,
        p: PartitionId,
        live: impl FnOnce() -> Vec<KeyedRecord>,
    ) -> Result<()> {
        let Some(log) = self.get(p) else {
            return Ok(());
        };
        log.roll().await?;
        let records = live();
        if records.is_empty() {
            return Ok(());
        }
        let info = log.append(batches(&records)?, Durability::Synced).await?;
        let deleted = log.delete_segments_before(info.base_offset).await?;
        tracing::info!(
            topic = self.topic,
            partition = %p,
            records = records.len(),
            deleted,
            "state log compacted"
        );
        Ok(())
    }

    /// Flushes every partition and snapshots its producer state
    /// (shutdown).
    pub async fn flush_all(&self) -> Result<()> {
        for (_, log) in self.partitions() {
            log.flush().await?;
            log.snapshot_producers().await?;
        }
        Ok(())
    }
}

/// Records as RecordBatches of at most 1,000 records each.
pub fn batches(records: &[KeyedRecord]) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for chunk in records.chunks(1000) {
        let built: Vec<build::Record<'_>> = chunk
            .iter()
            .map(|(k, v)| build::Record {
                key: Some(k),
                value: v,
                timestamp_delta: 0,
            })
            .collect();
        let mut raw = build::batch(now_ms(), &built);
        out.push(RecordBatch::split_first(&mut raw)?);
    }
    Ok(out)
}

/// Which partition of a state log keeps `key`: Kafka's
/// `Utils.abs(key.hashCode()) % partitions`, Java's String hash.
pub fn key_partition(key: &str, partitions: u32) -> PartitionId {
    let mut h: i32 = 0;
    for unit in key.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    // Kafka's abs maps i32::MIN to 0; every other value has a positive abs.
    let positive = h.checked_abs().unwrap_or(0).unsigned_abs();
    let index = positive % partitions.clamp(1, PartitionId::MAX.index());
    PartitionId::new(index).expect("below a partition count that fits the wire")
}

#[derive(Debug, thiserror::Error)]
pub enum PartitionCountError {
    #[error("this data dir keeps {topic} in {stored} partitions; {setting} = {configured} would lose track of what it holds (it cannot change)")]
    Changed {
        topic: &'static str,
        setting: &'static str,
        stored: u32,
        configured: u32,
    },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Records a state log's partition count (`setting`, e.g.
/// `offsets.topic.num.partitions`) as `meta/<setting>` on first start and
/// refuses a different value later. A data dir from before this record
/// counts the log's `<topic>-*` directories. Blocking: runs before the
/// shards start.
pub fn pin_partition_count(
    data_dir: &Path,
    topic: &'static str,
    setting: &'static str,
    configured: u32,
) -> std::result::Result<(), PartitionCountError> {
    let path = data_dir.join("meta").join(setting);
    let io = |source| PartitionCountError::Io {
        path: path.clone(),
        source,
    };
    let stored = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u32>().ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let prefix = format!("{topic}-");
            let existing = match std::fs::read_dir(data_dir) {
                Ok(entries) => entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .count() as u32,
                Err(_) => 0,
            };
            (existing > 0).then_some(existing)
        }
        Err(e) => return Err(io(e)),
    };
    match stored {
        Some(stored) if stored != configured => Err(PartitionCountError::Changed {
            topic,
            setting,
            stored,
            configured,
        }),
        Some(_) => Ok(()),
        None => {
            super::log_dir::write_durably(&path, format!("{configured}\n").as_bytes()).map_err(io)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::key_partition;

    #[test]
    fn keys_are_placed_like_kafka() {
        // Java: "my-group".hashCode() == 1906497762.
        assert_eq!(key_partition("my-group", 50).index(), 1906497762 % 50);
        assert_eq!(key_partition("my-group", 8).index(), 2);
        assert_eq!(key_partition("", 8).index(), 0);
    }
}
