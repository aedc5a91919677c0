//! `Segment`: one `.log` file of a partition with its `.index`,
//! `.timeindex` and `.txnindex`, named by the 20-digit base offset as
//! Kafka names them.
//!
//! Lives on the partition's shard. The `.log` is opened O_DIRECT
//! (`DmaFile`) for writing and for the log's own reads (recovery, index
//! rebuilds, time lookups); cold fetches get a separate buffered,
//! read-only descriptor, because `sendfile` cannot read an O_DIRECT file at
//! unaligned positions.
//!
//! Invariants: `size` is the logical end of the last whole batch; batches
//! are dense (each base offset is the previous batch's last offset + 1); the
//! indexes only point at batch starts below `size`.

use super::appender::SegmentAppender;
use super::batch::{peek_batch_size, RecordBatch, HEADER_LEN, LOG_OVERHEAD};
use super::error::{IoContext, Result};
use super::index::OffsetIndex;
use super::offset::Offset;
use super::time_index::TimeIndex;
use super::txn_index::AbortedTxn;
use bytes::Bytes;
use glommio::io::{DmaFile, OpenOptions, ReadResult};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// Bytes read per DMA read when walking batch headers or recovering.
const SCAN_WINDOW: usize = 256 << 10;

/// The files of one segment, shared with reads in flight.
pub struct SegmentFiles {
    pub base_offset: Offset,
    pub log_path: PathBuf,
    pub dma: Rc<DmaFile>,
    reader: RefCell<Option<Arc<std::fs::File>>>,
}

/// Where the bytes of a cold read are: `len` bytes at `position` of a
/// buffered, read-only descriptor, ready for `sendfile`. `Send`, so the
/// owning shard can hand it to the shard that writes the response.
#[derive(Clone)]
pub struct FileSlice {
    pub file: Arc<std::fs::File>,
    pub position: u64,
    pub len: u32,
}

impl std::fmt::Debug for FileSlice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileSlice({}+{})", self.position, self.len)
    }
}

pub fn file_name(base_offset: Offset, extension: &str) -> String {
    format!("{:020}.{extension}", base_offset.get())
}

impl SegmentFiles {
    pub async fn open(dir: &Path, base_offset: Offset, create: bool) -> Result<SegmentFiles> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let dma = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .dma_open(&log_path)
            .await
            .context(|| format!("opening {}", log_path.display()))?;
        Ok(SegmentFiles {
            base_offset,
            log_path,
            dma: Rc::new(dma),
            reader: RefCell::new(None),
        })
    }

    /// A buffered read-only descriptor for `sendfile`, opened on first use
    /// (on a blocking thread: an open can wait on the disk).
    pub async fn reader(&self) -> Result<Arc<std::fs::File>> {
        if let Some(f) = self.reader.borrow().as_ref() {
            return Ok(f.clone());
        }
        let path = self.log_path.clone();
        let opened = glommio::executor()
            .spawn_blocking(move || std::fs::File::open(path))
            .await;
        let f =
            Arc::new(opened.context(|| format!("opening {} for reads", self.log_path.display()))?);
        // Another read may have opened one meanwhile; either serves.
        self.reader.borrow_mut().get_or_insert_with(|| f.clone());
        Ok(f)
    }

    /// Cuts the `.log` to `size` bytes and makes that durable.
    pub async fn truncate_durably(&self, size: u64) -> Result<()> {
        let path = self.log_path.display();
        self.dma
            .truncate(size)
            .await
            .context(|| format!("truncating {path}"))?;
        super::fault::fdatasync(&self.dma)
            .await
            .context(|| format!("syncing {path}"))
    }

    pub async fn read(&self, position: u64, len: usize) -> Result<Bytes> {
        Ok(Bytes::copy_from_slice(&self.read_dma(position, len).await?))
    }

    /// `len` bytes at `position` (fewer at the end of the file), in the
    /// shard's DMA buffer: no copy, but not `Send`.
    pub async fn read_dma(&self, position: u64, len: usize) -> Result<ReadResult> {
        self.dma
            .read_at(position, len)
            .await
            .context(|| format!("reading {}@{position}", self.log_path.display()))
    }
}

/// One segment's metadata, kept by its partition.
pub struct Segment {
    pub files: Rc<SegmentFiles>,
    /// Logical size: the end of the last whole batch.
    pub size: u64,
    /// The offset after the last batch.
    pub next_offset: Offset,
    pub index: OffsetIndex,
    pub time_index: TimeIndex,
    /// Bytes appended since the last offset-index entry.
    pub bytes_since_index: u64,
    pub max_timestamp: i64,
    /// Wall-clock ms of the first append, or the first batch's timestamp
    /// after a restart (as Kafka does); drives `segment.ms`.
    pub rolling_ms: Option<i64>,
    /// Present on the active segment only.
    pub appender: Option<SegmentAppender>,
    /// The transactions this segment's abort markers ended, in marker
    /// order (see `txn_index`).
    pub aborted: Vec<AbortedTxn>,
    /// `aborted` holds entries its `.txnindex` file does not.
    pub aborted_unsaved: bool,
}

impl Segment {
    /// A segment with no batches yet, starting at its files' base offset.
    pub fn empty(files: Rc<SegmentFiles>) -> Segment {
        let next_offset = files.base_offset;
        Segment {
            files,
            size: 0,
            next_offset,
            index: OffsetIndex::new(),
            time_index: TimeIndex::new(),
            bytes_since_index: 0,
            max_timestamp: -1,
            rolling_ms: None,
            appender: None,
            aborted: Vec::new(),
            aborted_unsaved: false,
        }
    }

    pub fn base_offset(&self) -> Offset {
        self.files.base_offset
    }

    /// Records a batch that now occupies `[position, position + len)`.
    pub fn note_batch(&mut self, position: u64, batch: &RecordBatch, index_interval_bytes: u64) {
        let relative = batch.base().relative_to(self.base_offset());
        self.max_timestamp = self.max_timestamp.max(batch.max_timestamp());
        // The batch at position 0 needs no entry: lookups default to it.
        if position > 0 && self.bytes_since_index >= index_interval_bytes {
            self.index.push(relative, index_position(position));
            self.time_index.maybe_push(self.max_timestamp, relative);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += batch.len() as u64;
        self.size = position + batch.len() as u64;
        self.next_offset = batch.next();
    }

    /// Adds the time-index entry written at seal time, which carries the
    /// segment's largest timestamp through its last offset.
    pub fn finish_time_index(&mut self) {
        if self.next_offset > self.base_offset() {
            let last = Offset::new(self.next_offset.get() - 1);
            let last_relative = last.relative_to(self.base_offset());
            self.time_index
                .maybe_push(self.max_timestamp, last_relative);
        }
    }

    /// Where cold reads must stop: bytes past this may not be in the file.
    pub fn readable_end(&self) -> u64 {
        match &self.appender {
            Some(a) => a.written().min(self.size),
            None => self.size,
        }
    }
}

/// A byte position in a segment as the offset index stores it: a segment
/// holds at most `segment.bytes`, which is at most i32::MAX.
pub fn index_position(position: u64) -> u32 {
    u32::try_from(position).expect("positions in a segment fit u32 (segment.bytes <= i32::MAX)")
}

/// A batch header's (total length, base offset, last offset), if its
/// length parses; `head` holds at least `HEADER_LEN` bytes.
pub fn header_fields(head: &[u8]) -> Option<(u64, i64, i64)> {
    let size = peek_batch_size(head).ok()? as u64;
    let base = i64::from_be_bytes(head.get(0..8)?.try_into().ok()?);
    let delta = i32::from_be_bytes(head.get(23..27)?.try_into().ok()?);
    Some((size, base, base + i64::from(delta)))
}

/// Walks batches of a segment file with large DMA reads. Headers are read
/// in the DMA buffer; only a whole batch asked for is copied out.
pub struct BatchScanner<'a> {
    files: &'a SegmentFiles,
    window_pos: u64,
    window: ReadResult,
    end: u64,
}

/// What the scanner found at a position.
pub enum Scanned {
    Batch(RecordBatch),
    /// Ran into `end` or a torn batch: nothing whole starts here.
    End,
    /// A whole-looking batch that fails validation.
    Corrupt(String),
}

impl<'a> BatchScanner<'a> {
    pub fn new(files: &'a SegmentFiles, end: u64) -> Self {
        BatchScanner {
            files,
            window_pos: 0,
            window: ReadResult::default(),
            end,
        }
    }

    /// The `len` bytes at `pos`, in the window.
    async fn bytes_at(&mut self, pos: u64, len: usize) -> Result<Option<&[u8]>> {
        if pos + len as u64 > self.end {
            return Ok(None);
        }
        let in_window = pos >= self.window_pos
            && pos + len as u64 <= self.window_pos + self.window.len() as u64;
        if !in_window {
            let want = (self.end - pos).min(SCAN_WINDOW.max(len) as u64) as usize;
            self.window = self.files.read_dma(pos, want).await?;
            self.window_pos = pos;
            if self.window.len() < len {
                return Ok(None);
            }
        }
        let at = (pos - self.window_pos) as usize;
        Ok(Some(&self.window[at..at + len]))
    }

    /// The batch header (61 bytes) at `pos`, without its records.
    pub async fn header(&mut self, pos: u64) -> Result<Option<(u64, i64, i64)>> {
        Ok(self
            .bytes_at(pos, HEADER_LEN)
            .await?
            .and_then(header_fields))
    }

    /// The whole, validated batch at `pos`.
    pub async fn batch(&mut self, pos: u64) -> Result<Scanned> {
        let Some(head) = self.bytes_at(pos, LOG_OVERHEAD).await? else {
            return Ok(Scanned::End);
        };
        let size = match peek_batch_size(head) {
            Ok(size) => size,
            Err(e) => return Ok(Scanned::Corrupt(e.to_string())),
        };
        let Some(raw) = self.bytes_at(pos, size).await? else {
            return Ok(Scanned::End);
        };
        let mut raw = Bytes::copy_from_slice(raw);
        let batch = match RecordBatch::split_first(&mut raw) {
            Ok(b) => b,
            Err(e) => return Ok(Scanned::Corrupt(e.to_string())),
        };
        match batch.validate() {
            Ok(()) => Ok(Scanned::Batch(batch)),
            Err(e) => Ok(Scanned::Corrupt(e.to_string())),
        }
    }
}

/// Writes a small metadata file (an index) whole and makes it durable.
pub async fn write_file_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file(path, bytes, true).await
}

/// Writes a small file whole; `sync` makes it durable before returning.
pub async fn write_file(path: &Path, bytes: &[u8], sync: bool) -> Result<()> {
    let file = DmaFile::create(path)
        .await
        .context(|| format!("creating {}", path.display()))?;
    if !bytes.is_empty() {
        let align = file.alignment() as usize;
        let mut buf = file.alloc_dma_buffer(bytes.len().next_multiple_of(align));
        let out = buf.as_bytes_mut();
        out[..bytes.len()].copy_from_slice(bytes);
        out[bytes.len()..].fill(0);
        file.write_at(buf, 0)
            .await
            .context(|| format!("writing {}", path.display()))?;
        file.truncate(bytes.len() as u64)
            .await
            .context(|| format!("truncating {}", path.display()))?;
    }
    if sync {
        file.fdatasync()
            .await
            .context(|| format!("syncing {}", path.display()))?;
    }
    file.close()
        .await
        .context(|| format!("closing {}", path.display()))
}

/// Reads a whole small file, or `None` if it does not exist.
pub async fn read_file(path: &Path) -> Result<Option<Bytes>> {
    let file = match DmaFile::open(path).await {
        Ok(f) => f,
        Err(e) => {
            let e: std::io::Error = e.into();
            if e.kind() == std::io::ErrorKind::NotFound {
                return Ok(None);
            }
            return Err(e).context(|| format!("opening {}", path.display()));
        }
    };
    let size = file
        .file_size()
        .await
        .context(|| format!("sizing {}", path.display()))?;
    let data = if size == 0 {
        Bytes::new()
    } else {
        let r = file
            .read_at(0, size as usize)
            .await
            .context(|| format!("reading {}", path.display()))?;
        Bytes::copy_from_slice(&r)
    };
    file.close()
        .await
        .context(|| format!("closing {}", path.display()))?;
    Ok(Some(data))
}
