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
}

/// Completion state shared between the appender and its write tasks.
struct WriteProgress {
    /// Issued writes in issue order: (sequence, logical end, completed).
    pending: VecDeque<(u64, u64, bool)>,
    /// Every byte before this file position is in the file.
    written: u64,
    /// (logical end of a batch, the offset after it), oldest first.
    marks: VecDeque<(u64, u64)>,
    /// Every batch below this offset is in the file.
    written_offset: u64,
    error: Option<String>,
    wakers: Vec<Waker>,
}

impl WriteProgress {
    fn complete(&mut self, seq: u64, result: Result<(), String>) {
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
    /// An appender that continues the file after `size` logical bytes.
    /// `tail_block` holds the bytes of the partial block at the end
    /// (`size % alignment` of them), which the next write must repeat.
    pub fn new(
        file: Rc<DmaFile>,
        capacity: usize,
        size: u64,
        tail_block: &[u8],
        next_offset: u64,
    ) -> SegmentAppender {
        let align = file.alignment() as usize;
        let capacity = capacity.max(align).next_multiple_of(align);
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
                wakers: Vec::new(),
            })),
            next_seq: 0,
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
    pub fn written_offset(&self) -> u64 {
        self.progress.borrow().written_offset
    }

    /// Writes issued and not yet all completed.
    pub fn in_flight(&self) -> usize {
        self.progress.borrow().pending.len()
    }

    pub fn error(&self) -> Option<String> {
        self.progress.borrow().error.clone()
    }

    /// Copies one batch in; `next_offset` is the offset after it. Full
    /// buffers are written in the background.
    pub fn append(&mut self, mut data: &[u8], next_offset: u64) {
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
        if self.buf_len > self.buf_issued {
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
        }
        end
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
        let seq = self.next_seq;
        self.next_seq += 1;
        self.progress
            .borrow_mut()
            .pending
            .push_back((seq, logical_end, false));
        let gate = self.gate.take();
        let file = self.file.clone();
        let progress = self.progress.clone();
        glommio::spawn_local(async move {
            if let Some(gate_end) = gate {
                // Ignore a failure here: the error is already recorded.
                let _ = wait_until(&progress, |p| p.written >= gate_end).await;
            }
            let want = buf.len();
            let result = match file.write_at(buf, pos).await {
                Ok(n) if n == want => Ok(()),
                Ok(n) => Err(format!("short write at {pos}: {n} of {want} bytes")),
                Err(e) => Err(format!("write at {pos}: {e}")),
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

/// Waits on an appender's background writes.
pub struct WriteWatch(Rc<RefCell<WriteProgress>>);

impl WriteWatch {
    /// Resolves once every byte before `end` is in the file.
    pub async fn wait_written(&self, end: u64) -> Result<(), String> {
        wait_until(&self.0, |p| p.written >= end).await
    }

    /// Resolves once at most `limit` writes are in flight.
    pub async fn wait_in_flight_at_most(&self, limit: usize) -> Result<(), String> {
        wait_until(&self.0, |p| p.pending.len() <= limit).await
    }
}

/// Waits until `ready` holds for the progress, or a write has failed.
fn wait_until<'a>(
    progress: &'a Rc<RefCell<WriteProgress>>,
    ready: impl Fn(&WriteProgress) -> bool + 'a,
) -> impl Future<Output = Result<(), String>> + 'a {
    struct Wait<'a, F> {
        progress: &'a Rc<RefCell<WriteProgress>>,
        ready: F,
    }
    impl<F: Fn(&WriteProgress) -> bool> Future for Wait<'_, F> {
        type Output = Result<(), String>;
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
