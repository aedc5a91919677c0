//! Checked conversions between Kafka's wire integers and strom's types.
//! A value that does not convert is a Kafka error for that item, chosen
//! by the API at hand, never a cast.

use crate::log::{PartitionId, TopicPartition};

/// A topic and a wire partition index; `None` for a negative index.
pub fn topic_partition(topic: &str, index: i32) -> Option<TopicPartition> {
    let partition = PartitionId::try_from(index).ok()?;
    Some(TopicPartition::new(topic, partition))
}

/// A wire offset (INT64); `None` if negative.
pub fn offset(offset: i64) -> Option<u64> {
    u64::try_from(offset).ok()
}

/// An offset's wire form (INT64). Offsets stay below 2^63: each is one
/// past a record the log stored, and a log holds far fewer.
pub fn offset_to_wire(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

/// A non-negative wire count or size (INT32), as a `usize`; negative
/// values count as zero.
pub fn size(value: i32) -> usize {
    usize::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_wire_values_do_not_convert() {
        assert!(topic_partition("t", -1).is_none());
        assert_eq!(
            topic_partition("t", 3).map(|tp| tp.partition.index()),
            Some(3)
        );
        assert_eq!(offset(-2), None);
        assert_eq!(offset(5), Some(5));
        assert_eq!(offset_to_wire(u64::MAX), i64::MAX);
        assert_eq!(size(-1), 0);
    }
}
