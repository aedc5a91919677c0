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
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3_600_000,
            retention_ms: 7 * 24 * 3_600_000,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 << 20,
            max_message_bytes: 1_048_588,
            flush_messages: i64::MAX,
            flush_ms: 1000,
            preallocate: false,
            write_buffer_bytes: 1 << 20,
            write_behind: 4,
            tail_cache_bytes: 4 << 20,
        }
    }
}

impl LogConfig {
    /// The largest number of entries the offset index may hold.
    pub fn index_entries_max(&self) -> usize {
        (self.segment_index_bytes / crate::log::index::ENTRY_LEN as u64) as usize
    }
}
