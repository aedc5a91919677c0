//! The numbers a log keeps about its records, as types: `Offset` (where a
//! record is in its partition), `LeaderEpoch` (which leader wrote it), and
//! `ProducerId` / `ProducerEpoch` (who produced it, for idempotence).
//!
//! Offsets are u64 in memory and INT64 on the wire and on disk; a log
//! never holds a negative one. Conversions from wire values are checked
//! (`protocol::wire`); those from a stored batch header go through
//! `RecordBatch`, which reads what the log itself wrote.

/// A record's position in its partition's log: 0, 1, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(u64);

impl Offset {
    pub const ZERO: Offset = Offset(0);

    pub const fn new(offset: u64) -> Offset {
        Offset(offset)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    /// `count` records later.
    pub const fn plus(self, count: u64) -> Offset {
        Offset(self.0 + count)
    }

    /// The offset after this one.
    pub const fn next(self) -> Offset {
        self.plus(1)
    }

    /// How many records lie from `earlier` up to this offset (0 if
    /// `earlier` is not earlier).
    pub fn since(self, earlier: Offset) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// This offset relative to a segment's base, as Kafka's offset and
    /// time indexes store it. A segment spans fewer than 2^32 offsets (the
    /// log rolls before it would not), so this always fits.
    pub fn relative_to(self, base: Offset) -> u32 {
        assert!(
            self >= base,
            "offset {self} is below its segment's base {base}"
        );
        u32::try_from(self.0 - base.0).expect("a segment spans fewer than 2^32 offsets")
    }

    /// The offset `relative` past a segment's base.
    pub fn at_relative(self, relative: u32) -> Offset {
        self.plus(u64::from(relative))
    }

    /// The INT64 form, as the wire and the batch header carry it. A log
    /// holds far fewer than 2^63 records, so this always fits.
    pub fn to_i64(self) -> i64 {
        i64::try_from(self.0).expect("offsets stay below 2^63")
    }

    /// An INT64 offset; `None` if negative.
    pub fn from_i64(offset: i64) -> Option<Offset> {
        u64::try_from(offset).ok().map(Offset)
    }
}

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The epoch of the leader that appended a batch (Kafka's
/// partitionLeaderEpoch). A single broker is the only leader there has
/// ever been: epoch 0. `NONE` (-1) is Kafka's "unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaderEpoch(pub i32);

impl LeaderEpoch {
    pub const NONE: LeaderEpoch = LeaderEpoch(-1);
    pub const FIRST: LeaderEpoch = LeaderEpoch(0);
}

/// A producer id, as InitProducerId hands them out; `NONE` (-1) marks a
/// batch from a producer without idempotence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProducerId(pub i64);

impl ProducerId {
    pub const NONE: ProducerId = ProducerId(-1);
}

/// A producer id's epoch: bumped to fence older instances of the same
/// producer; `NONE` (-1) without idempotence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProducerEpoch(pub i16);

impl ProducerEpoch {
    pub const NONE: ProducerEpoch = ProducerEpoch(-1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_and_convert_checked() {
        let base = Offset::new(1000);
        assert_eq!(base.plus(5).since(base), 5);
        assert_eq!(base.since(base.plus(5)), 0);
        assert_eq!(base.plus(7).relative_to(base), 7);
        assert_eq!(base.at_relative(7), Offset::new(1007));
        assert_eq!(Offset::from_i64(-1), None);
        assert_eq!(Offset::from_i64(42).map(Offset::to_i64), Some(42));
    }

    #[test]
    #[should_panic(expected = "below its segment's base")]
    fn an_offset_below_its_segment_is_a_bug() {
        Offset::new(3).relative_to(Offset::new(4));
    }
}
