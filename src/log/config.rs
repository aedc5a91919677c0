//! Per-partition log settings, named after Kafka's topic configs.
//!
//! One value per partition, copied from the topic's config when the
//! partition is opened. Defaults are Kafka's where Kafka has the knob; the
//! strom-only knobs (write buffer, write-behind, tail cache) carry the
//! budget that chose them. Every knob is described in tuning.md.

/// Settings for one partition's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll the active segment before it would exceed this.
    /// Kafka's default, 1 GiB; positions in a segment are u32.
    pub segment_bytes: u64,
    /// `segment.ms`: roll a segment this old even if it is not full.
    pub segment_ms: i64,
    /// `retention.ms`: delete sealed segments whose newest timestamp is
    /// older than this; negative means keep forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest sealed segments while the log is
    /// larger than this; negative means no size limit.
    pub retention_bytes: i64,
    /// Broker-wide `log.retention.check.interval.ms`: how often the
    /// housekeeping timer applies retention. Kafka's default, 5 minutes.
    pub retention_check_interval_ms: i64,
    /// `index.interval.bytes`: one offset-index entry per this many bytes.
    pub index_interval_bytes: u64,
    /// `segment.index.bytes`: the largest offset index; a full index rolls
    /// the segment. Kafka's default, 10 MiB (1.3 M entries).
    pub segment_index_bytes: u64,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: usize,
    /// `flush.messages`: fdatasync after this many unflushed records.
    /// Kafka's default is "never" (i64::MAX).
    pub flush_messages: i64,
    /// `flush.ms`: fdatasync data older than this that nobody flushed
    /// explicitly. Kafka leaves this unset (never) and relies on replicas;
    /// a single strom broker has none, so it bounds the loss window of
    /// acks=1 data to one second by default.
    pub flush_ms: i64,
    /// `file.preallocate`: reserve `segment.bytes` of disk (fallocate, file
    /// size kept) when a segment is created, so a full disk fails the roll
    /// instead of a write. Off by default, as in Kafka: on ext4 it made
    /// flushed 16 KiB appends ~20% slower here (unwritten-extent conversion
    /// on every write; see tuning.md).
    pub preallocate: bool,
    /// strom: bytes of the O_DIRECT write buffer of the active segment. One
    /// such buffer per partition is resident; writes go to disk in units of
    /// this size unless a flush cuts them short. 1 MiB reached fio's
    /// sequential O_DIRECT bandwidth here; 256 KiB lost a third of it.
    pub write_buffer_bytes: usize,
    /// strom: how many full write buffers may be in flight to the disk at
    /// once before an append waits.
    pub write_behind: usize,
    /// strom: bytes of recent batches kept in memory for consumers at the
    /// tail. Never less than what is not yet written to the file.
    pub tail_cache_bytes: usize,
    /// strom: bytes of written zeros that flushes keep ahead of the active
    /// segment's write position, so flushed appends overwrite blocks inside
    /// the file instead of growing it (see appender.rs and tuning.md);
    /// 0 turns it off.
    pub zero_ahead_bytes: u64,
    /// strom: how fetches read data that left the tail cache (see
    /// `ColdReads` and tuning.md).
    pub cold_reads: ColdReads,
    /// strom (`log.read.ahead.bytes`): with direct cold reads, the bytes a
    /// shard may hold read ahead of its consumers (`read_ahead.rs`); 0
    /// turns read-ahead off.
    pub read_ahead_bytes: usize,
    /// Broker-wide `producer.id.expiration.ms` (Kafka: 1 day): an
    /// idempotent producer whose last batch's timestamp is older than this
    /// is forgotten (checked with retention).
    pub producer_id_expiration_ms: i64,
}

/// How a fetch reads batches that are no longer in the tail cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColdReads {
    /// O_DIRECT reads on the shard's io_uring into memory, then an ordinary
    /// socket write: one copy, no page cache, no readahead.
    Direct,
    /// `sendfile` from the page cache on a blocking thread: zero copies
    /// when the pages are cached, buffered reads with readahead when not.
    Sendfile,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3_600_000,
            retention_ms: 7 * 24 * 3_600_000,
            retention_bytes: -1,
            retention_check_interval_ms: 300_000,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 << 20,
            max_message_bytes: 1_048_588,
            flush_messages: i64::MAX,
            flush_ms: 1000,
            preallocate: false,
            write_buffer_bytes: 1 << 20,
            write_behind: 4,
            tail_cache_bytes: 4 << 20,
            zero_ahead_bytes: 4 << 20,
            cold_reads: ColdReads::Direct,
            read_ahead_bytes: 64 << 20,
            producer_id_expiration_ms: 86_400_000,
        }
    }
}

impl LogConfig {
    /// The largest number of entries the offset index may hold.
    pub fn index_entries_max(&self) -> usize {
        (self.segment_index_bytes / crate::log::index::ENTRY_LEN as u64) as usize
    }
}

/// A topic config Kafka defines that strom refuses, or a bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value}: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub value: String,
    pub reason: &'static str,
}

impl LogConfig {
    /// Applies one topic config by Kafka's name (`segment.bytes`, ...).
    /// Configs that only matter to producers or replicas are accepted as
    /// long as their value is one strom can honour.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let bad = |reason| ConfigError {
            name: name.to_string(),
            value: value.to_string(),
            reason,
        };
        let int = || {
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| bad("not an integer"))
        };
        match name {
            "segment.bytes" => {
                let v = int()?;
                if !(14..=i64::from(i32::MAX)).contains(&v) {
                    return Err(bad("must be between 14 and 2147483647"));
                }
                self.segment_bytes = v as u64;
            }
            "segment.ms" => self.segment_ms = int()?.max(1),
            "retention.ms" => self.retention_ms = int()?,
            "retention.bytes" => self.retention_bytes = int()?,
            "index.interval.bytes" => self.index_interval_bytes = int()?.max(0) as u64,
            "segment.index.bytes" => self.segment_index_bytes = int()?.max(8) as u64,
            "max.message.bytes" => self.max_message_bytes = int()?.max(0) as usize,
            "flush.messages" => self.flush_messages = int()?.max(1),
            "flush.ms" => self.flush_ms = int()?.max(0),
            "preallocate" | "file.preallocate" => {
                self.preallocate = value.parse().map_err(|_| bad("not a boolean"))?
            }
            "cleanup.policy" if value == "delete" => {}
            "cleanup.policy" => return Err(bad("only cleanup.policy=delete is supported")),
            "message.timestamp.type" if value == "CreateTime" => {}
            "message.timestamp.type" => return Err(bad("only CreateTime is supported")),
            "min.insync.replicas"
            | "unclean.leader.election.enable"
            | "compression.type"
            | "message.downconversion.enable"
            | "min.compaction.lag.ms"
            | "max.compaction.lag.ms"
            | "delete.retention.ms"
            | "min.cleanable.dirty.ratio"
            | "file.delete.delay.ms"
            | "segment.jitter.ms" => {}
            _ => return Err(bad("unknown topic config")),
        }
        Ok(())
    }

    /// The topic configs this log has, by Kafka's names, for DescribeConfigs.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
            ("retention.ms", self.retention_ms.to_string()),
            ("retention.bytes", self.retention_bytes.to_string()),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string(),
            ),
            ("segment.index.bytes", self.segment_index_bytes.to_string()),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            ("flush.messages", self.flush_messages.to_string()),
            ("flush.ms", self.flush_ms.to_string()),
            ("preallocate", self.preallocate.to_string()),
            ("cleanup.policy", "delete".to_string()),
            ("message.timestamp.type", "CreateTime".to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_configs_use_kafka_names_and_reject_what_strom_cannot_honour() {
        let mut c = LogConfig::default();
        c.set("segment.bytes", "1048576").unwrap();
        c.set("retention.ms", "-1").unwrap();
        assert_eq!((c.segment_bytes, c.retention_ms), (1 << 20, -1));
        assert!(c.set("segment.bytes", "10").is_err());
        assert!(c.set("retention.ms", "soon").is_err());
        assert!(c.set("cleanup.policy", "compact").is_err());
        assert!(c.set("no.such.config", "1").is_err());
        c.set("min.insync.replicas", "1").unwrap();
    }
}
