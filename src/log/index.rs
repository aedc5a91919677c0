//! `OffsetIndex`: the sparse `.index` of one segment, offset -> position.
//!
//! Kafka's file format: 8-byte entries of (offset relative to the segment's
//! base offset: u32, position in the `.log`: u32), both big-endian, one per
//! `index.interval.bytes` of log. Every entry points at the first byte of a
//! batch, so an entry is also a safe place to end a read.
//!
//! Invariants: relative offsets and positions strictly increase. The index of
//! the active segment lives in memory and is written when the segment is
//! sealed; recovery rebuilds it from the log, so it never needs to be durable
//! before the log itself.

pub const ENTRY_LEN: usize = 8;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

/// Why an index file was not trusted (it is then rebuilt from the log).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum IndexMismatch {
    #[error("index size {0} is not a multiple of the entry size")]
    Ragged(usize),
    #[error("entry {0} does not increase")]
    NotIncreasing(usize),
    #[error("entry {0} points past the end of the segment")]
    PastEnd(usize),
}

impl OffsetIndex {
    pub fn new() -> Self {
        OffsetIndex::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds an entry for the batch at `position` whose base offset is
    /// `relative_offset` past the segment base.
    pub fn push(&mut self, relative_offset: u32, position: u32) {
        if let Some(&(o, p)) = self.entries.last() {
            assert!(relative_offset > o && position > p, "index must increase");
        }
        self.entries.push((relative_offset, position));
    }

    /// The last entry at or before `relative_offset`: where to start looking
    /// for it. `(0, 0)` when the offset precedes every entry.
    pub fn floor(&self, relative_offset: u32) -> (u32, u32) {
        let i = self.entries.partition_point(|&(o, _)| o <= relative_offset);
        if i == 0 {
            (0, 0)
        } else {
            self.entries[i - 1]
        }
    }

    /// The last entry whose position is at or before `position`: a batch
    /// boundary no further than `position`.
    pub fn floor_by_position(&self, position: u32) -> Option<(u32, u32)> {
        let i = self.entries.partition_point(|&(_, p)| p <= position);
        i.checked_sub(1).map(|i| self.entries[i])
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for &(o, p) in &self.entries {
            out.extend_from_slice(&o.to_be_bytes());
            out.extend_from_slice(&p.to_be_bytes());
        }
        out
    }

    /// Parses an index file, checking it against the segment it describes.
    pub fn decode(raw: &[u8], segment_size: u64) -> Result<OffsetIndex, IndexMismatch> {
        if !raw.len().is_multiple_of(ENTRY_LEN) {
            return Err(IndexMismatch::Ragged(raw.len()));
        }
        let mut entries: Vec<(u32, u32)> = Vec::with_capacity(raw.len() / ENTRY_LEN);
        for (i, chunk) in raw.chunks_exact(ENTRY_LEN).enumerate() {
            let o = u32::from_be_bytes(chunk[0..4].try_into().expect("4 bytes"));
            let p = u32::from_be_bytes(chunk[4..8].try_into().expect("4 bytes"));
            if let Some(&(lo, lp)) = entries.last() {
                if o <= lo || p <= lp {
                    return Err(IndexMismatch::NotIncreasing(i));
                }
            }
            if u64::from(p) >= segment_size {
                return Err(IndexMismatch::PastEnd(i));
            }
            entries.push((o, p));
        }
        Ok(OffsetIndex { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_finds_the_entry_at_or_before_an_offset() {
        let mut idx = OffsetIndex::new();
        idx.push(10, 4096);
        idx.push(20, 8192);
        assert_eq!(idx.floor(0), (0, 0));
        assert_eq!(idx.floor(10), (10, 4096));
        assert_eq!(idx.floor(19), (10, 4096));
        assert_eq!(idx.floor(1000), (20, 8192));
        assert_eq!(idx.floor_by_position(8191), Some((10, 4096)));
        assert_eq!(idx.floor_by_position(100), None);
    }

    #[test]
    fn encode_decode_round_trips_and_rejects_inconsistent_files() {
        let mut idx = OffsetIndex::new();
        idx.push(3, 100);
        idx.push(9, 300);
        let raw = idx.encode();
        assert_eq!(OffsetIndex::decode(&raw, 1000).unwrap(), idx);
        assert_eq!(
            OffsetIndex::decode(&raw[..5], 1000),
            Err(IndexMismatch::Ragged(5))
        );
        assert_eq!(
            OffsetIndex::decode(&raw, 300),
            Err(IndexMismatch::PastEnd(1))
        );
        let mut swapped = raw[8..].to_vec();
        swapped.extend_from_slice(&raw[..8]);
        assert_eq!(
            OffsetIndex::decode(&swapped, 1000),
            Err(IndexMismatch::NotIncreasing(1))
        );
    }
}
