//! `TimeIndex`: the sparse `.timeindex` of one segment, timestamp -> offset.
//!
//! Kafka's file format: 12-byte entries of (timestamp: i64, offset relative
//! to the segment base: u32), big-endian. An entry (t, o) says: no record in
//! a batch at or before offset `o` has a timestamp above `t`. Entries are
//! added with the offset index and only when the largest timestamp seen grows,
//! so timestamps strictly increase; the last entry written at seal time
//! carries the segment's largest timestamp.

pub const ENTRY_LEN: usize = 12;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    pub fn new() -> Self {
        TimeIndex::default()
    }

    /// Records that timestamps up to `max_timestamp` are covered through the
    /// batch at `relative_offset`. Ignored unless the timestamp grew.
    pub fn maybe_push(&mut self, max_timestamp: i64, relative_offset: u32) {
        match self.entries.last() {
            Some(&(t, o)) if max_timestamp <= t || relative_offset < o => {}
            Some(&(_, o)) if relative_offset == o => {
                let last = self.entries.len() - 1;
                self.entries[last].0 = max_timestamp;
            }
            _ => self.entries.push((max_timestamp, relative_offset)),
        }
    }

    /// The largest timestamp any entry records.
    pub fn max_timestamp(&self) -> Option<i64> {
        self.entries.last().map(|&(t, _)| t)
    }

    /// A relative offset from which a scan for the first record with a
    /// timestamp `>= target` can start: every batch before it is older.
    pub fn scan_start(&self, target: i64) -> u32 {
        let i = self.entries.partition_point(|&(t, _)| t < target);
        if i == 0 {
            0
        } else {
            self.entries[i - 1].1
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for &(t, o) in &self.entries {
            out.extend_from_slice(&t.to_be_bytes());
            out.extend_from_slice(&o.to_be_bytes());
        }
        out
    }

    /// Parses a time index file; `None` if it is not well formed (it is then
    /// rebuilt from the log).
    pub fn decode(raw: &[u8], relative_offset_end: u64) -> Option<TimeIndex> {
        if !raw.len().is_multiple_of(ENTRY_LEN) {
            return None;
        }
        let mut entries: Vec<(i64, u32)> = Vec::with_capacity(raw.len() / ENTRY_LEN);
        for chunk in raw.chunks_exact(ENTRY_LEN) {
            let t = i64::from_be_bytes(chunk[0..8].try_into().expect("8 bytes"));
            let o = u32::from_be_bytes(chunk[8..12].try_into().expect("4 bytes"));
            if let Some(&(lt, lo)) = entries.last() {
                if t <= lt || o < lo {
                    return None;
                }
            }
            if u64::from(o) >= relative_offset_end.max(1) {
                return None;
            }
            entries.push((t, o));
        }
        Some(TimeIndex { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_start_never_skips_a_qualifying_batch() {
        let mut idx = TimeIndex::new();
        idx.maybe_push(100, 0);
        idx.maybe_push(90, 5); // older timestamp: no entry
        idx.maybe_push(200, 10);
        idx.maybe_push(300, 20);
        assert_eq!(idx.max_timestamp(), Some(300));
        assert_eq!(idx.scan_start(50), 0);
        assert_eq!(idx.scan_start(100), 0);
        assert_eq!(idx.scan_start(150), 0);
        assert_eq!(idx.scan_start(201), 10);
        assert_eq!(TimeIndex::decode(&idx.encode(), 21), Some(idx.clone()));
        assert_eq!(TimeIndex::decode(&idx.encode(), 20), None);
    }
}
