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
use super::batch::HEADER_LEN;
use super::config::ColdReads;
use super::error::{LogError, Result};
use super::offset::{Offset, ProducerId};
use super::partition::Partition;
use super::read_ahead::DirectRead;
use super::read_buffer;
use super::segment::{
    header_fields, index_position, BatchScanner, FileSlice, Scanned, SegmentFiles,
};
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
    /// shard's io_uring (`log.cold.reads = direct`), in pooled blocks.
    Read(Vec<Bytes>),
}

impl ReadChunk {
    pub fn len(&self) -> usize {
        match self {
            ReadChunk::Empty => 0,
            ReadChunk::Cached(v) => v.iter().map(Bytes::len).sum(),
            ReadChunk::File(f) => f.len as usize,
            ReadChunk::Read(v) => v.iter().map(Bytes::len).sum(),
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
            ReadChunk::Read(v) => Ok(v.concat().into()),
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
        // Hot reads (another consumer at the tail) leave the read-ahead be.
        let (files, from, end) = match self.locate(offset, max_bytes, upto)? {
            Located::Done(chunk) => return Ok(chunk),
            Located::File { files, from, end } => (files, from, end),
        };
        if let Some(ahead) = self.read_ahead.take(offset, max_bytes) {
            if let Ok(Some(read)) = ahead.await {
                if read.next <= upto && offset >= self.log_start() {
                    self.read_ahead_after(&read, files, end, max_bytes);
                    return Ok(ReadChunk::Read(read.parts));
                }
            }
        }
        let end = self.position_of(&files, end, upto).await?;
        if self.config().cold_reads == ColdReads::Direct {
            let slack = self.config().index_interval_bytes;
            let Some(read) = read_direct(&files, from, end, offset, max_bytes, slack).await? else {
                return Ok(ReadChunk::Empty);
            };
            self.read_ahead_after(&read, files, end, max_bytes);
            return Ok(ReadChunk::Read(read.parts));
        }
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
        Ok(ReadChunk::File(FileSlice {
            file: files.reader().await?,
            position: start,
            len: index_position(pos - start),
        }))
    }

    /// Starts reading the range after `read` (within the segment's
    /// readable `end`) for the consumer's next fetch (`read_ahead`).
    fn read_ahead_after(
        &self,
        read: &DirectRead,
        files: Rc<SegmentFiles>,
        end: u64,
        max_bytes: usize,
    ) {
        let config = self.config();
        if read.stop >= end || config.read_ahead_bytes == 0 {
            return;
        }
        let (from, offset, slack) = (read.stop, read.next, config.index_interval_bytes);
        let next = async move { read_direct(&files, from, end, offset, max_bytes, slack).await };
        self.read_ahead
            .start(offset, max_bytes, config.read_ahead_bytes, next);
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

/// The cold read of `log.cold.reads = direct`: one O_DIRECT read from the
/// indexed position `from` (at most about `slack`, one index interval,
/// before the batch holding `offset`) that covers that batch and
/// `max_bytes` after it; the batch boundaries are found in that buffer,
/// and only the answer is copied out of it (`read_buffer`). The read's
/// aligned size is `max_bytes` (a power of two for every client's
/// default), which the shard's buddy-allocated DMA arena serves without
/// rounding up. A second read happens only when the first batch is
/// larger than what the first read covered. `None`: nothing whole at or
/// after `offset` before `end`.
async fn read_direct(
    files: &SegmentFiles,
    from: u64,
    end: u64,
    offset: Offset,
    max_bytes: usize,
    slack: u64,
) -> Result<Option<DirectRead>> {
    let align = files.dma.alignment().max(1);
    let mut at = from;
    let mut len = (max_bytes as u64)
        .saturating_sub(from % align)
        .max(slack.max(HEADER_LEN as u64));
    loop {
        let want = len.min(end.saturating_sub(at)) as usize;
        if want == 0 {
            return Ok(None);
        }
        let buf = files.read_dma(at, want).await?;
        match walk(&buf, at, end, offset.to_i64(), max_bytes as u64) {
            Walk::Empty => return Ok(None),
            Walk::Range(start, stop, next) => {
                let bytes = &buf[(start - at) as usize..(stop - at) as usize];
                return Ok(Some(DirectRead {
                    parts: read_buffer::copy(bytes),
                    stop,
                    next: Offset::from_i64(next).unwrap_or(offset),
                }));
            }
            Walk::Reread {
                at: next,
                len: need,
            } => {
                // Progress: the next read starts later or is longer.
                if next == at && need <= want as u64 {
                    return Ok(None);
                }
                (at, len) = (next, need);
            }
        }
    }
}

/// What `walk` found in a buffer of a segment's bytes.
#[derive(Debug, PartialEq, Eq)]
enum Walk {
    /// Nothing whole at or after the offset before `end`.
    Empty,
    /// The answer: the file's bytes `[start, stop)`, whole batches, and
    /// the offset after their last record.
    Range(u64, u64, i64),
    /// The buffer ends inside the first batch wanted: read `len` bytes
    /// from `at` (the batch's start) instead.
    Reread { at: u64, len: u64 },
}

/// Walks the batch headers in `buf` (the file's bytes from `buf_pos`, the
/// segment readable up to `end`): from the first batch whose last offset
/// is at or after `offset`, whole batches within `max_bytes` (the first
/// one always). A header that does not parse ends the walk, as the end of
/// the segment does.
fn walk(buf: &[u8], buf_pos: u64, end: u64, offset: i64, max_bytes: u64) -> Walk {
    let view_end = end.min(buf_pos + buf.len() as u64);
    let mut pos = buf_pos;
    // (first batch's start, where the answer must stop)
    let mut found: Option<(u64, u64)> = None;
    // The offset after the last batch walked over.
    let mut next = offset;
    loop {
        let header = (pos + HEADER_LEN as u64 <= view_end)
            .then(|| header_fields(&buf[(pos - buf_pos) as usize..]))
            .flatten();
        let Some((len, _, last)) = header else {
            return match found {
                Some((start, _)) => Walk::Range(start, pos, next),
                // More of the segment than the buffer holds: read from here.
                None if pos + (HEADER_LEN as u64) <= end && view_end < end => Walk::Reread {
                    at: pos,
                    len: max_bytes.max(HEADER_LEN as u64),
                },
                None => Walk::Empty,
            };
        };
        match found {
            None if last < offset => {}
            None => {
                if pos + len > view_end {
                    return Walk::Reread {
                        at: pos,
                        len: len.max(max_bytes),
                    };
                }
                found = Some((pos, end.min(pos + len.max(max_bytes))));
            }
            Some((start, limit)) if pos + len > limit.min(view_end) => {
                return Walk::Range(start, pos, next);
            }
            Some(_) => {}
        }
        pos += len;
        next = last + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake segment: batches of the given (base offset, record count,
    /// total length), back to back; only their headers matter to `walk`.
    fn segment(batches: &[(i64, i32, usize)]) -> Vec<u8> {
        let mut out = Vec::new();
        for &(base, count, len) in batches {
            let mut b = vec![0u8; len];
            b[0..8].copy_from_slice(&base.to_be_bytes());
            b[8..12].copy_from_slice(&((len - 12) as i32).to_be_bytes());
            b[16] = 2; // magic
            b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
            out.extend_from_slice(&b);
        }
        out
    }

    #[test]
    fn walk_finds_whole_batches_within_the_limit() {
        // Offsets 0-9 (100 B), 10-19 (200 B), 20-29 (300 B), 30-39 (400 B).
        let seg = segment(&[(0, 10, 100), (10, 10, 200), (20, 10, 300), (30, 10, 400)]);
        let end = seg.len() as u64;
        // From an offset inside the second batch, 500 bytes: batches 2 and 3.
        assert_eq!(walk(&seg, 0, end, 15, 500), Walk::Range(100, 600, 30));
        // The first batch always goes, even past max_bytes.
        assert_eq!(walk(&seg, 0, end, 30, 10), Walk::Range(600, 1000, 40));
        // Everything.
        assert_eq!(walk(&seg, 0, end, 0, 1 << 20), Walk::Range(0, 1000, 40));
        // Past the last batch.
        assert_eq!(walk(&seg, 0, end, 40, 100), Walk::Empty);
        // A readable end before the last batch stops there.
        assert_eq!(walk(&seg, 0, 600, 0, 1 << 20), Walk::Range(0, 600, 30));
        assert_eq!(walk(&seg, 0, 600, 30, 1 << 20), Walk::Empty);
    }

    #[test]
    fn walk_asks_for_more_when_the_buffer_ends_inside_the_first_batch() {
        let seg = segment(&[(0, 10, 100), (10, 10, 5000)]);
        let end = seg.len() as u64;
        // The buffer holds 1000 bytes: the second batch's header but not the batch.
        assert_eq!(
            walk(&seg[..1000], 0, end, 10, 100),
            Walk::Reread { at: 100, len: 5000 }
        );
        // Reread from there: the whole batch.
        assert_eq!(
            walk(&seg[100..], 100, end, 10, 100),
            Walk::Range(100, 5100, 20)
        );
        // The buffer ends before the wanted batch's header.
        assert_eq!(
            walk(&seg[..50], 0, end, 10, 4096),
            Walk::Reread { at: 0, len: 4096 }
        );
        // A buffer of later batches that stops inside one answers what is whole.
        let seg = segment(&[(0, 10, 100), (10, 10, 100), (20, 10, 100)]);
        assert_eq!(
            walk(&seg[..250], 0, 300, 0, 1 << 20),
            Walk::Range(0, 200, 20)
        );
    }

    #[test]
    fn walk_stops_at_a_length_that_does_not_parse() {
        let mut seg = segment(&[(0, 10, 100), (10, 10, 100)]);
        seg[108..112].fill(0); // the second batch's length: zeros, as past a torn tail
        assert_eq!(walk(&seg, 0, 200, 0, 1 << 20), Walk::Range(0, 100, 10));
        assert_eq!(walk(&seg, 0, 200, 10, 1 << 20), Walk::Empty);
    }
}
