//! Which partition: `PartitionId`, a partition's index in its topic, and
//! `TopicPartition`, the key every layer uses for one partition.
//!
//! Invariant: a `PartitionId` fits Kafka's INT32 partition index (topics
//! are created and grown with INT32 counts), so it always has a wire form.
//! Conversions from and to the wire live in `protocol::wire`.

/// A partition's index in its topic: 0, 1, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId(u32);

impl PartitionId {
    /// The largest index: Kafka's partition counts are INT32.
    pub const MAX: PartitionId = PartitionId(i32::MAX.unsigned_abs());

    /// `None` above `PartitionId::MAX`.
    pub const fn new(index: u32) -> Option<PartitionId> {
        if index <= PartitionId::MAX.0 {
            Some(PartitionId(index))
        } else {
            None
        }
    }

    pub const fn index(self) -> u32 {
        self.0
    }

    /// The first `count` partitions of a topic (a count comes from the
    /// topic table, which holds no more than `PartitionId::MAX`).
    pub fn first(count: u32) -> impl Iterator<Item = PartitionId> {
        (0..count.min(PartitionId::MAX.0)).map(PartitionId)
    }
}

/// Kafka's INT32 index (the wire, and Kafka's record schemas on disk).
impl From<PartitionId> for i32 {
    fn from(p: PartitionId) -> i32 {
        // PartitionId::MAX is i32::MAX: always fits.
        p.0 as i32
    }
}

/// A negative index is no partition.
impl TryFrom<i32> for PartitionId {
    type Error = std::num::TryFromIntError;

    fn try_from(index: i32) -> Result<PartitionId, Self::Error> {
        u32::try_from(index).map(PartitionId)
    }
}

impl std::fmt::Display for PartitionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: PartitionId,
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: PartitionId) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_ids_fit_the_wire() {
        assert_eq!(PartitionId::new(7).map(PartitionId::index), Some(7));
        assert_eq!(PartitionId::new(i32::MAX as u32), Some(PartitionId::MAX));
        assert_eq!(PartitionId::new(i32::MAX as u32 + 1), None);
        assert_eq!(PartitionId::first(3).count(), 3);
        assert!(PartitionId::try_from(-1).is_err());
        assert_eq!(
            i32::from(PartitionId::try_from(i32::MAX).unwrap()),
            i32::MAX
        );
        let tp = TopicPartition::new("orders", PartitionId::new(12).unwrap());
        assert_eq!(tp.to_string(), "orders-12");
    }
}
