//! `SegmentAppender`: the write path of the active segment, O_DIRECT through
//! glommio's `DmaFile`.
//!
//! Lives on the shard that owns the partition; single-threaded, never blocks
//! the executor. Appended bytes are copied into an aligned buffer; a full
//! buffer is written in the background (up to `write_behind` at once), and
//! `issue_flush` writes the partial tail, padded to the device alignment,
//! so the next flush rewrites that last block with more bytes in it.
//!
//! Contract:
//! - `append` returns once the bytes are in the buffer: visible to nobody on
//!   disk, durable nowhere.
//! - `wait_written(end)` resolves once every byte before file position `end`
//!   has been written to the file (not yet fdatasync'ed).
//! - Writes that touch the same block are ordered: a write never starts
//!   while an earlier write of an overlapping block is in flight, so a stale
//!   partial block can never land after a newer one.
//! - After any write fails the appender is failed for good; callers see the
//!   error and take the partition offline.
//! - Writes are aligned to at least 4 KiB, ext4's block size: ext4 handles a
//!   direct write that is not block-aligned as unaligned (exclusive inode
//!   lock), so io_uring cannot complete it without a worker thread.
//! - Zero-ahead (`zero_ahead_bytes`): a run of frequent flushes (less than
//!   a write buffer apart, as under acks=all) keeps a region of written zeros
//!   ahead of the write position, so a flushed partial block overwrites
//!   allocated blocks inside the file size: no extent or size change to
//!   journal, and the fdatasync after it only has data to write. A data
//!   write that would reach into a region being zeroed waits until the
//!   zeros under it are written, so zeros never land on data. The zeros
//!   beyond the log's end are removed when the segment is sealed (which
//!   waits for zeros in flight), and by recovery after a crash.

use super::config::LogConfig;
use super::error::IoFailure;
use super::fault;
use super::offset::Offset;
use glommio::io::{DmaBuffer, DmaFile};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

pub struct SegmentAppender {
    file: Rc<DmaFile>,
    align: usize,
    capacity: usize,
    buf: DmaBuffer,
    /// File position of `buf[0]`; always aligned.
    buf_pos: u64,
    buf_len: usize,
    /// Aligned prefix of `buf` already handed to a write.
    buf_issued: usize,
    /// Logical end of a partial write whose last block the next write of this
    /// buffer will overwrite; that write waits for it.
    gate: Option<u64>,
    progress: Rc<RefCell<WriteProgress>>,
    next_seq: u64,
    /// Bytes of zeros to keep ahead of the write buffer; 0 turns it off.
    zero_ahead: u64,
    /// Zeroing stops here (the segment cannot grow past it).
    zero_limit: u64,
    /// File positions below this are data or zeros already issued.
    zeroed_end: u64,
    /// Where the previous flush ended.
    last_flush_end: u64,
    /// The logical end of the newest write issued: every write's is larger
    /// than the one before, so `written >= end` means the write that ends
    /// at `end` and all before it are in the file.
    issued_end: u64,
    /// Flushes in a row that came less than a write buffer after the
    /// previous one.
    small_flushes: u32,
}

/// How many small flushes in a row make zeroing ahead worth it.
const SMALL_FLUSHES_BEFORE_ZEROING: u32 = 4;

/// The smallest alignment of file writes: ext4's block size and the disk's
/// physical sector here.
const MIN_WRITE_ALIGNMENT: u64 = 4096;

/// The alignment of the appender's writes to `file`; recovery re-reads the
/// partial block of this size at the end of a segment.
pub fn write_alignment(file: &DmaFile) -> u64 {
    file.alignment().max(MIN_WRITE_ALIGNMENT)
}

/// Zeros are written in pieces of this size, from one buffer per shard.
const ZERO_WRITE_BYTES: u64 = 256 << 10;

thread_local! {
    /// The shard's buffer of zeros. Allocating one per write cost more than
    /// the writes: once the io-memory arena is used up, buffers come from
    /// mmap, and mapping, faulting in and unmapping them contends for the
    /// process's mm lock with the other shards (ms-long stalls seen with
    /// perf sched).
    static ZEROS: Rc<DmaBuffer> = {
        let mut zeros = glommio::allocate_dma_buffer(ZERO_WRITE_BYTES as usize);
        zeros.as_bytes_mut().fill(0);
        Rc::new(zeros)
    };
}

/// Completion state shared between the appender and its write tasks.
struct WriteProgress {
    /// Issued writes in issue order: (sequence, logical end, completed).
    pending: VecDeque<(u64, u64, bool)>,
    /// Every byte before this file position is in the file.
    written: u64,
    /// (logical end of a batch, the offset after it), oldest first.
    marks: VecDeque<(u64, Offset)>,
    /// Every batch below this offset is in the file.
    written_offset: Offset,
    error: Option<IoFailure>,
    /// While a region is being zeroed: where it starts, and how far the
    /// zeros are written (pieces go in order).
    zeroing: Option<(u64, u64)>,
    /// Zeroing failed once (a full disk, say): the appender stops zeroing
    /// and writes extend the file as they would without it.
    zeroing_failed: bool,
    /// Every block below this file position is allocated, written and
    /// inside a file size that an fdatasync of this file made durable: a
    /// write below it is a pure overwrite, with no metadata to commit.
    synced_extent: u64,
    /// Zeroed regions made durable that `synced_extent` has not reached.
    durable_zeros: VecDeque<(u64, u64)>,
    /// The furthest block any data write issued so far reaches.
    issued_extent: u64,
    align: u64,
    wakers: Vec<Waker>,
}

impl WriteProgress {
    /// Extends `synced_extent` to `to`, and over the durable zeroed regions
    /// that then join it.
    fn synced_through(&mut self, to: u64) {
        self.synced_extent = self.synced_extent.max(to);
        while let Some(&(from, to)) = self.durable_zeros.front() {
            if from > self.synced_extent {
                break;
            }
            self.synced_extent = self.synced_extent.max(to);
            self.durable_zeros.pop_front();
        }
    }

    fn complete(&mut self, seq: u64, result: Result<(), IoFailure>) {
        match result {
            Ok(()) => {
                if let Some(entry) = self.pending.iter_mut().find(|e| e.0 == seq) {
                    entry.2 = true;
                }
                while let Some(&(_, end, true)) = self.pending.front() {
                    self.written = self.written.max(end);
                    self.pending.pop_front();
                }
                while let Some(&(end, next)) = self.marks.front() {
                    if end > self.written {
                        break;
                    }
                    self.written_offset = next;
                    self.marks.pop_front();
                }
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }
}

impl SegmentAppender {
    /// An appender that continues the file after `size` logical bytes,
    /// which is also the file's size. `tail_block` holds the bytes of the
    /// partial block at the end (`size % write_alignment` of them), which
    /// the next write must repeat.
    pub fn new(
        file: Rc<DmaFile>,
        config: &LogConfig,
        size: u64,
        tail_block: &[u8],
        next_offset: Offset,
    ) -> SegmentAppender {
        let align = write_alignment(&file) as usize;
        let capacity = config.write_buffer_bytes.max(align).next_multiple_of(align);
        let buf_pos = size - size % align as u64;
        assert_eq!(
            tail_block.len() as u64,
            size - buf_pos,
            "tail block must end the file"
        );
        let mut buf = file.alloc_dma_buffer(capacity);
        buf.as_bytes_mut()[..tail_block.len()].copy_from_slice(tail_block);
        SegmentAppender {
            file,
            align,
            capacity,
            buf,
            buf_pos,
            buf_len: tail_block.len(),
            buf_issued: 0,
            gate: None,
            progress: Rc::new(RefCell::new(WriteProgress {
                pending: VecDeque::new(),
                written: size,
                marks: VecDeque::new(),
                written_offset: next_offset,
                error: None,
                zeroing: None,
                zeroing_failed: false,
                // Nothing is known durable yet: the first flush commits
                // what it must.
                synced_extent: 0,
                durable_zeros: VecDeque::new(),
                issued_extent: 0,
                align: align as u64,
                wakers: Vec::new(),
            })),
            next_seq: 0,
            zero_ahead: config.zero_ahead_bytes.next_multiple_of(align as u64),
            zero_limit: config.segment_bytes.next_multiple_of(align as u64),
            zeroed_end: size.next_multiple_of(align as u64),
            last_flush_end: size,
            issued_end: size,
            small_flushes: 0,
        }
    }

    /// Logical bytes appended so far.
    pub fn size(&self) -> u64 {
        self.buf_pos + self.buf_len as u64
    }

    /// Every byte before this file position is in the file.
    pub fn written(&self) -> u64 {
        self.progress.borrow().written
    }

    /// Every batch below this offset is in the file.
    pub fn written_offset(&self) -> Offset {
        self.progress.borrow().written_offset
    }

    /// Writes issued and not yet all completed.
    pub fn in_flight(&self) -> usize {
        self.progress.borrow().pending.len()
    }

    pub fn error(&self) -> Option<IoFailure> {
        self.progress.borrow().error.clone()
    }

    /// Copies one batch in; `next_offset` is the offset after it. Full
    /// buffers are written in the background.
    pub fn append(&mut self, mut data: &[u8], next_offset: Offset) {
        while !data.is_empty() {
            let n = data.len().min(self.capacity - self.buf_len);
            self.buf.as_bytes_mut()[self.buf_len..self.buf_len + n].copy_from_slice(&data[..n]);
            self.buf_len += n;
            data = &data[n..];
            if self.buf_len == self.capacity {
                self.issue_full();
            }
        }
        self.progress
            .borrow_mut()
            .marks
            .push_back((self.size(), next_offset));
    }

    /// Writes what is buffered and not yet written, padding the last block.
    /// Returns the logical end to pass to `wait_written`.
    pub fn issue_flush(&mut self) -> u64 {
        let end = self.size();
        // Nothing appended since the newest write: rewriting the partial
        // block would add a write with the same logical end, which
        // `wait_written(end)` would not wait for (it may land after a
        // seal has cut the file).
        if self.buf_len > self.buf_issued && end > self.issued_end {
            let len = self.buf_len - self.buf_issued;
            let padded = len.next_multiple_of(self.align);
            let mut out = self.file.alloc_dma_buffer(padded);
            let bytes = out.as_bytes_mut();
            bytes[..len].copy_from_slice(&self.buf.as_bytes()[self.buf_issued..self.buf_len]);
            bytes[len..].fill(0);
            self.spawn_write(out, self.buf_pos + self.buf_issued as u64, end);
            self.buf_issued = self.buf_len - self.buf_len % self.align;
            if self.buf_issued < self.buf_len {
                self.gate = Some(end);
            }
            // Zeroing pays off for a run of small flushes (acks=all); for
            // flushes a buffer or more apart (a flush timer under steady
            // acks=1 load, which may flush twice in a row now and then) it
            // would only double what reaches the disk.
            if end - self.last_flush_end < self.capacity as u64 {
                self.small_flushes = self.small_flushes.saturating_add(1);
            } else {
                self.small_flushes = 0;
            }
            if self.small_flushes >= SMALL_FLUSHES_BEFORE_ZEROING {
                self.zero_ahead();
            }
        }
        self.last_flush_end = end;
        end
    }

    /// Starts zeroing the next region if fewer than half of
    /// `zero_ahead` bytes past the write buffer are zeroed. Only frequent
    /// flushes call this: full-buffer writes are large enough that
    /// extending the file costs them little.
    fn zero_ahead(&mut self) {
        {
            let p = self.progress.borrow();
            if self.zero_ahead == 0 || p.zeroing.is_some() || p.zeroing_failed {
                return;
            }
        }
        // No write issued so far reaches past the write buffer's end.
        let front = self.buf_pos + self.capacity as u64;
        if self.zeroed_end >= front + self.zero_ahead / 2 || self.zeroed_end >= self.zero_limit {
            return;
        }
        // The first region of a segment starts inside the write buffer, at
        // the block after the data; a write reaching into it waits only for
        // the pieces it covers.
        let from = self
            .zeroed_end
            .max(self.size().next_multiple_of(self.align as u64));
        let target = (from.max(front) + self.zero_ahead).min(self.zero_limit);
        if from >= target {
            return;
        }
        // Whole pieces: the last may pass the segment's limit a little; the
        // excess is cut when the segment is sealed.
        let to = from + (target - from).next_multiple_of(ZERO_WRITE_BYTES);
        self.zeroed_end = to;
        self.progress.borrow_mut().zeroing = Some((from, from));
        let (file, progress) = (self.file.clone(), self.progress.clone());
        glommio::spawn_local(async move {
            let result = write_zeros(&file, from, to, &progress).await;
            let mut p = progress.borrow_mut();
            match result {
                Ok(()) => {
                    p.durable_zeros.push_back((from, to));
                    let synced = p.synced_extent;
                    p.synced_through(synced);
                }
                Err(e) => {
                    tracing::warn!("zeroing ahead of the log end stopped: {e}");
                    p.zeroing_failed = true;
                }
            }
            p.zeroing = None;
            for w in p.wakers.drain(..) {
                w.wake();
            }
        })
        .detach();
    }

    fn issue_full(&mut self) {
        let fresh = self.file.alloc_dma_buffer(self.capacity);
        let full = std::mem::replace(&mut self.buf, fresh);
        let start = self.buf_issued;
        let out = if start == 0 {
            full
        } else {
            let mut rest = self.file.alloc_dma_buffer(self.capacity - start);
            rest.as_bytes_mut()
                .copy_from_slice(&full.as_bytes()[start..self.capacity]);
            rest
        };
        let end = self.buf_pos + self.capacity as u64;
        self.spawn_write(out, self.buf_pos + start as u64, end);
        self.buf_pos = end;
        self.buf_len = 0;
        self.buf_issued = 0;
    }

    fn spawn_write(&mut self, buf: DmaBuffer, pos: u64, logical_end: u64) {
        self.issued_end = logical_end;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.progress
            .borrow_mut()
            .pending
            .push_back((seq, logical_end, false));
        let gate = self.gate.take();
        let file = self.file.clone();
        let progress = self.progress.clone();
        let want = buf.len();
        let reach = pos + want as u64;
        {
            let mut p = self.progress.borrow_mut();
            p.issued_extent = p.issued_extent.max(reach);
        }
        glommio::spawn_local(async move {
            if let Some(gate_end) = gate {
                // Ignore a failure here: the error is already recorded.
                let _ = wait_until(&progress, |p| p.written >= gate_end).await;
            }
            let _ = wait_until(&progress, |p| {
                p.zeroing
                    .is_none_or(|(from, done)| reach <= from || reach <= done)
            })
            .await;
            let result = match fault::write_at(&file, buf, pos).await {
                Ok(n) if n == want => Ok(()),
                Ok(n) => Err(short_write(pos, n, want)),
                Err(e) => Err(IoFailure::new(format!("write at {pos}"), e)),
            };
            progress.borrow_mut().complete(seq, result);
        })
        .detach();
    }

    /// A handle to wait on this appender's writes without borrowing it.
    pub fn watch(&self) -> WriteWatch {
        WriteWatch(self.progress.clone())
    }
}

/// Writes zeros over `[from, to)` and makes them durable, so later writes
/// there are overwrites with no metadata to journal.
/// `to - from` is a multiple of `ZERO_WRITE_BYTES`. Each piece written
/// moves `zeroing`'s mark and wakes the data writes waiting for it.
async fn write_zeros(
    file: &DmaFile,
    from: u64,
    to: u64,
    progress: &RefCell<WriteProgress>,
) -> Result<(), IoFailure> {
    let zeros = ZEROS.with(Rc::clone);
    let len = zeros.len();
    let mut pos = from;
    while pos < to {
        match file.write_rc_at(zeros.clone(), pos).await {
            Ok(n) if n == len => {
                pos += len as u64;
                let mut p = progress.borrow_mut();
                p.zeroing = Some((from, pos));
                for w in p.wakers.drain(..) {
                    w.wake();
                }
            }
            Ok(n) => return Err(short_write(pos, n, len)),
            Err(e) => return Err(IoFailure::new(format!("writing zeros at {pos}"), e.into())),
        }
    }
    fault::fdatasync(file)
        .await
        .map_err(|e| IoFailure::new("fdatasync after zeroing", e))
}

/// A write the kernel took only part of: on a regular file, a full disk.
fn short_write(pos: u64, written: usize, wanted: usize) -> IoFailure {
    let why = std::io::Error::new(
        std::io::ErrorKind::WriteZero,
        format!("{written} of {wanted} bytes written"),
    );
    IoFailure::new(format!("short write at {pos}"), why)
}

/// Waits on an appender's background writes.
pub struct WriteWatch(Rc<RefCell<WriteProgress>>);

impl WriteWatch {
    /// Resolves once every byte before `end` is in the file.
    pub async fn wait_written(&self, end: u64) -> Result<(), IoFailure> {
        wait_until(&self.0, |p| p.written >= end).await
    }

    /// True if every data write issued so far is a pure overwrite (see
    /// `synced_extent`): an fdatasync after them has only the device cache
    /// to flush (`device_flush`).
    pub fn overwrites_synced(&self) -> bool {
        let p = self.0.borrow();
        p.issued_extent <= p.synced_extent
    }

    /// The blocks the writes completed so far cover (every block before
    /// `written`, the last one written padded): what an fdatasync started
    /// now makes durable, to pass to `synced_through` once it succeeded.
    pub fn written_extent(&self) -> u64 {
        let p = self.0.borrow();
        p.written.next_multiple_of(p.align)
    }

    /// An fdatasync of this file that started after every write below
    /// `extent` completed has succeeded.
    pub fn synced_through(&self, extent: u64) {
        self.0.borrow_mut().synced_through(extent);
    }

    /// Resolves once no zeros are being written. A segment waits for this
    /// before it is cut to its batches (sealed) or closed, so no zeros
    /// land after the cut.
    pub async fn wait_zeroing_done(&self) -> Result<(), IoFailure> {
        wait_until(&self.0, |p| p.zeroing.is_none()).await
    }

    /// Resolves once at most `limit` writes are in flight.
    pub async fn wait_in_flight_at_most(&self, limit: usize) -> Result<(), IoFailure> {
        wait_until(&self.0, |p| p.pending.len() <= limit).await
    }
}

/// Waits until `ready` holds for the progress, or a write has failed.
fn wait_until<'a>(
    progress: &'a Rc<RefCell<WriteProgress>>,
    ready: impl Fn(&WriteProgress) -> bool + 'a,
) -> impl Future<Output = Result<(), IoFailure>> + 'a {
    struct Wait<'a, F> {
        progress: &'a Rc<RefCell<WriteProgress>>,
        ready: F,
    }
    impl<F: Fn(&WriteProgress) -> bool> Future for Wait<'_, F> {
        type Output = Result<(), IoFailure>;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let mut p = self.progress.borrow_mut();
            if let Some(e) = &p.error {
                return Poll::Ready(Err(e.clone()));
            }
            if (self.ready)(&p) {
                return Poll::Ready(Ok(()));
            }
            p.wakers.push(cx.waker().clone());
            Poll::Pending
        }
    }
    Wait { progress, ready }
}
