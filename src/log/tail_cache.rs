//! `TailCache`: the most recent batches of a partition, in memory as `Bytes`.
//!
//! Consumers at the tail are served from here with vectored writes and no
//! disk read. Invariant: every batch not yet written to its segment file is
//! in the cache — eviction only drops batches below the written offset, even
//! when that keeps the cache above its byte budget for a while. Together with
//! the rule that cold reads stop at the written position, a reader can never
//! see a byte the file does not hold yet.

use super::offset::Offset;
use bytes::Bytes;
use std::collections::VecDeque;

struct Entry {
    base_offset: Offset,
    next_offset: Offset,
    bytes: Bytes,
}

#[derive(Default)]
pub struct TailCache {
    entries: VecDeque<Entry>,
    bytes: usize,
}

impl TailCache {
    pub fn push(&mut self, base_offset: Offset, next_offset: Offset, bytes: Bytes) {
        if let Some(last) = self.entries.back() {
            assert_eq!(
                last.next_offset, base_offset,
                "tail cache must be contiguous"
            );
        }
        self.bytes += bytes.len();
        self.entries.push_back(Entry {
            base_offset,
            next_offset,
            bytes,
        });
    }

    /// The lowest offset the cache can serve, if any.
    pub fn first_offset(&self) -> Option<Offset> {
        self.entries.front().map(|e| e.base_offset)
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops the oldest batches while over `budget`, but never one at or
    /// past `written_offset`.
    pub fn evict(&mut self, budget: usize, written_offset: Offset) {
        while self.bytes > budget {
            match self.entries.front() {
                Some(e) if e.next_offset <= written_offset => {
                    self.bytes -= e.bytes.len();
                    self.entries.pop_front();
                }
                _ => break,
            }
        }
    }

    /// Drops every batch that ends at or before `offset` (retention).
    pub fn drop_below(&mut self, offset: Offset) {
        while let Some(e) = self.entries.front() {
            if e.next_offset > offset {
                break;
            }
            self.bytes -= e.bytes.len();
            self.entries.pop_front();
        }
    }

    /// Whole batches from the one holding `offset`, as many as fit in
    /// `max_bytes` but at least one, none starting at or after `upto`.
    /// Empty if `offset` is not cached.
    pub fn read(&self, offset: Offset, max_bytes: usize, upto: Offset) -> Vec<Bytes> {
        let start = self.entries.partition_point(|e| e.next_offset <= offset);
        let mut entries = self.entries.range(start..);
        let mut out = Vec::new();
        let Some(first) = entries.next().filter(|e| e.base_offset < upto) else {
            return out;
        };
        let mut total = first.bytes.len();
        out.push(first.bytes.clone());
        for e in entries {
            if total + e.bytes.len() > max_bytes || e.base_offset >= upto {
                break;
            }
            total += e.bytes.len();
            out.push(e.bytes.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn at(offset: u64) -> Offset {
        Offset::new(offset)
    }

    fn cache() -> TailCache {
        let mut c = TailCache::default();
        c.push(at(0), at(2), Bytes::from(vec![0u8; 100]));
        c.push(at(2), at(5), Bytes::from(vec![1u8; 100]));
        c.push(at(5), at(6), Bytes::from(vec![2u8; 100]));
        c
    }

    #[test]
    fn read_returns_whole_batches_and_at_least_one() {
        let c = cache();
        let end = at(6);
        assert_eq!(c.read(at(3), 150, end).len(), 1);
        assert_eq!(c.read(at(3), 200, end).len(), 2);
        assert_eq!(c.read(at(0), 10, end).len(), 1);
        assert_eq!(c.read(at(6), 1000, end).len(), 0);
        assert_eq!(c.read(at(1), 1000, end)[0][0], 0);
        // A read_committed read stops at the last stable offset.
        assert_eq!(c.read(at(0), 1000, at(5)).len(), 2);
        assert_eq!(c.read(at(0), 1000, at(2)).len(), 1);
        assert_eq!(c.read(at(2), 1000, at(2)).len(), 0);
    }

    #[test]
    fn eviction_never_drops_unwritten_batches() {
        let mut c = cache();
        c.evict(0, at(2));
        assert_eq!(c.first_offset(), Some(at(2)));
        assert_eq!(c.bytes(), 200);
        c.evict(0, at(6));
        assert_eq!(c.first_offset(), None);
    }
}
