//! The read side of a `Partition`: fetch reads (`read`, whole batches as a
//! tail-cache slice or a file range), the log's own in-memory reads
//! (`read_batches`), and the lookup by timestamp.
//!
//! Invariant, kept with the tail cache (`tail_cache.rs`): a read never
//! returns a byte its segment file does not hold yet — cold reads stop at
//! `Segment::readable_end`, and whatever is not written is still cached.
//! A `read_committed` read also stops at the last stable offset, which is
//! always a batch's first offset (an open transaction's first batch).

use super::batch::RecordBatch;
use super::config::ColdReads;
use super::error::{LogError, Result};
use super::offset::{Offset, ProducerId};
use super::partition::Partition;
use super::segment::{index_position, BatchScanner, FileSlice, Scanned, SegmentFiles};
use super::txn_index;
use bytes::Bytes;
use std::rc::Rc;

/// Where the bytes of a read are.
#[derive(Debug)]
pub enum ReadChunk {
    /// Nothing at or after the offset yet (offset == log end).
    Empty,
    /// Hot: batches from the tail cache, ready for a vectored write.
    Cached(Vec<Bytes>),
    /// Cold: a byte range of a segment file, ready for `sendfile`
    /// (`log.cold.reads = sendfile`).
    File(FileSlice),
    /// Cold: the same range read from the segment with O_DIRECT on the
    /// shard's io_uring (`log.cold.reads = direct`).
    Read(Bytes),
}

impl ReadChunk {
    pub fn len(&self) -> usize {
        match self {
            ReadChunk::Empty => 0,
            ReadChunk::Cached(v) => v.iter().map(Bytes::len).sum(),
            ReadChunk::File(f) => f.len as usize,
            ReadChunk::Read(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the bytes into memory with a blocking `pread`. For tests and
    /// tools only: the broker sends a `File` chunk with `sendfile`.
    pub fn to_bytes_blocking(&self) -> std::io::Result<Bytes> {
        use std::os::unix::fs::FileExt;
        match self {
            ReadChunk::Empty => Ok(Bytes::new()),
            ReadChunk::Cached(v) => Ok(v.concat().into()),
            ReadChunk::Read(b) => Ok(b.clone()),
            ReadChunk::File(f) => {
                let mut out = vec![0u8; f.len as usize];
                f.file.read_exact_at(&mut out, f.position)?;
                Ok(out.into())
            }
        }
    }
}

/// Where a read starts: done already (tail cache, log end), or a segment
/// file to scan from an indexed position.
enum Located {
    Done(ReadChunk),
    File {
        files: Rc<SegmentFiles>,
        from: u64,
        end: u64,
    },
}

/// What a `read_committed` read returned.
#[derive(Debug)]
pub struct CommittedRead {
    pub chunk: ReadChunk,
    /// The last stable offset the read stopped at.
    pub last_stable: Offset,
    /// The aborted transactions (producer, first offset) that may have
    /// records in the chunk, for the client to drop.
    pub aborted: Vec<(ProducerId, Offset)>,
}

impl Partition {
    /// Reads whole batches from the one holding `offset`, up to `max_bytes`
    /// (at least one batch). Kafka's rules: OFFSET_OUT_OF_RANGE outside
    /// `[log_start, log_end]`, empty at the log end.
    pub async fn read(&self, offset: Offset, max_bytes: usize) -> Result<ReadChunk> {
        let end = self.next_offset();
        self.read_below(offset, max_bytes, end).await
    }

    /// A `read_committed` read: as `read`, but only below the last stable
    /// offset, with the aborted transactions among what it returns.
    pub async fn read_committed(&self, offset: Offset, max_bytes: usize) -> Result<CommittedRead> {
        let last_stable = self.last_stable_offset();
        let chunk = self.read_below(offset, max_bytes, last_stable).await?;
        let mut aborted = Vec::new();
        if !chunk.is_empty() {
            let st = self.state.borrow();
            let from_segment = st
                .segments
                .range(..=offset)
                .next_back()
                .map_or(offset, |(&base, _)| base);
            let entries = st
                .segments
                .range(from_segment..)
                .flat_map(|(_, s)| s.aborted.iter());
            txn_index::collect(entries, offset, last_stable, &mut aborted);
        }
        Ok(CommittedRead {
            chunk,
            last_stable,
            aborted,
        })
    }

    /// Whole batches from the one holding `offset`, none starting at or
    /// after `upto`.
    async fn read_below(
        &self,
        offset: Offset,
        max_bytes: usize,
        upto: Offset,
    ) -> Result<ReadChunk> {
        if max_bytes == 0 || offset >= upto {
            // A fetch whose byte budget is spent, or at the last stable
            // offset: the offset is still checked (OFFSET_OUT_OF_RANGE),
            // nothing is read.
            return self.check_offset(offset).map(|()| ReadChunk::Empty);
        }
        let (files, from, end) = match self.locate(offset, max_bytes, upto)? {
            Located::Done(chunk) => return Ok(chunk),
            Located::File { files, from, end } => (files, from, end),
        };
        let end = self.position_of(&files, end, upto).await?;
        let mut scanner = BatchScanner::new(&files, end);
        let mut pos = from;
        let (start, first_len) = loop {
            let Some((len, _, last)) = scanner.header(pos).await? else {
                return Ok(ReadChunk::Empty);
            };
            if last >= offset.to_i64() {
                break (pos, len);
            }
            pos += len;
        };
        let limit = end.min(start + first_len.max(max_bytes as u64));
        // Jump to the last indexed batch boundary inside the limit, then walk
        // the few batches after it.
        let mut pos = start + first_len;
        if let Some(p) = self.boundary_before(files.base_offset, limit) {
            pos = pos.max(p);
        }
        while let Some((len, _, _)) = scanner.header(pos).await? {
            if pos + len > limit {
                break;
            }
            pos += len;
        }
        let len = pos - start;
        match self.config().cold_reads {
            ColdReads::Direct => Ok(ReadChunk::Read(files.read(start, len as usize).await?)),
            ColdReads::Sendfile => Ok(ReadChunk::File(FileSlice {
                file: files.reader().await?,
                position: start,
                len: index_position(len),
            })),
        }
    }

    /// Where in `files` (readable up to `end`) the batch starting at
    /// `upto` is: `end` if `upto` is past the segment.
    async fn position_of(&self, files: &SegmentFiles, end: u64, upto: Offset) -> Result<u64> {
        let from = {
            let st = self.state.borrow();
            match st.segments.get(&files.base_offset) {
                Some(s) if upto < s.next_offset => {
                    let (_, p) = s.index.floor(upto.relative_to(s.base_offset()));
                    u64::from(p)
                }
                _ => return Ok(end),
            }
        };
        let mut scanner = BatchScanner::new(files, end);
        let mut pos = from;
        while let Some((len, base, _)) = scanner.header(pos).await? {
            if base >= upto.to_i64() {
                break;
            }
            pos += len;
        }
        Ok(pos)
    }

    fn boundary_before(&self, base: Offset, limit: u64) -> Option<u64> {
        let st = self.state.borrow();
        let segment = st.segments.get(&base)?;
        let (_, p) = segment
            .index
            .floor_by_position(index_position(limit.min(u64::from(u32::MAX))))?;
        Some(u64::from(p))
    }

    /// OFFSET_OUT_OF_RANGE unless `offset` is in [log start, log end].
    pub(super) fn check_offset(&self, offset: Offset) -> Result<()> {
        let st = self.state.borrow();
        if offset < st.log_start || offset > st.next {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start: st.log_start,
                log_end: st.next,
            });
        }
        Ok(())
    }

    fn locate(&self, offset: Offset, max_bytes: usize, upto: Offset) -> Result<Located> {
        self.check_offset(offset)?;
        let st = self.state.borrow();
        if offset == st.next {
            return Ok(Located::Done(ReadChunk::Empty));
        }
        if st.tail.first_offset().is_some_and(|first| first <= offset) {
            return Ok(Located::Done(ReadChunk::Cached(
                st.tail.read(offset, max_bytes, upto),
            )));
        }
        let segment = st
            .segments
            .range(..=offset)
            .next_back()
            .map(|(_, s)| s)
            .filter(|s| offset < s.next_offset)
            .ok_or_else(|| LogError::Corrupt(format!("no segment holds offset {offset}")))?;
        let (_, from) = segment
            .index
            .floor(offset.relative_to(segment.base_offset()));
        Ok(Located::File {
            files: segment.files.clone(),
            from: u64::from(from),
            end: segment.readable_end(),
        })
    }

    /// Whole batches from the one holding `offset`, in memory. Used by the
    /// log's own lookups and by tests; fetches use [`Partition::read`].
    pub async fn read_batches(&self, offset: Offset, max_bytes: usize) -> Result<Vec<RecordBatch>> {
        let end = self.next_offset();
        let (files, from, end) = match self.locate(offset, max_bytes, end)? {
            Located::Done(ReadChunk::Cached(chunks)) => {
                return chunks
                    .into_iter()
                    .map(|mut b| RecordBatch::split_first(&mut b).map_err(LogError::from))
                    .collect();
            }
            Located::Done(_) => return Ok(Vec::new()),
            Located::File { files, from, end } => (files, from, end),
        };
        let mut scanner = BatchScanner::new(&files, end);
        let mut pos = from;
        let mut out: Vec<RecordBatch> = Vec::new();
        let mut total = 0usize;
        while let Scanned::Batch(batch) = scanner.batch(pos).await? {
            pos += batch.len() as u64;
            if batch.next() <= offset {
                continue;
            }
            if !out.is_empty() && total + batch.len() > max_bytes {
                break;
            }
            total += batch.len();
            out.push(batch);
        }
        Ok(out)
    }

    /// The offset (and timestamp) of the first record with a timestamp at or
    /// after `timestamp` (ListOffsets by time), or `None` if every record is
    /// older.
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(Offset, i64)>> {
        let mut offset = {
            let st = self.state.borrow();
            let Some(segment) = st.segments.values().find(|s| s.max_timestamp >= timestamp) else {
                return Ok(None);
            };
            let relative = segment.time_index.scan_start(timestamp);
            segment
                .base_offset()
                .at_relative(relative)
                .max(st.log_start)
        };
        loop {
            let batches = self.read_batches(offset, 1 << 20).await?;
            if batches.is_empty() {
                return Ok(None);
            }
            for batch in batches {
                if let Some((found, ts)) = batch.first_offset_at_or_after(timestamp) {
                    return Ok(Some((found.max(offset), ts)));
                }
                offset = batch.next();
            }
        }
    }
}
