//! Checked conversions between Kafka's wire integers and strom's types.
//! A value that does not convert is a Kafka error for that item, chosen
//! by the API at hand, never a cast.

use crate::log::{Offset, PartitionId, TopicPartition};

/// A topic and a wire partition index; `None` for a negative index.
pub fn topic_partition(topic: &str, index: i32) -> Option<TopicPartition> {
    let partition = PartitionId::try_from(index).ok()?;
    Some(TopicPartition::new(topic, partition))
}

/// A wire offset (INT64); `None` if negative.
pub fn offset(offset: i64) -> Option<Offset> {
    Offset::from_i64(offset)
}

/// An offset's wire form (INT64).
pub fn offset_to_wire(offset: Offset) -> i64 {
    offset.to_i64()
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
        assert_eq!(offset(5), Some(Offset::new(5)));
        assert_eq!(offset_to_wire(Offset::new(5)), 5);
        assert_eq!(size(-1), 0);
    }
}
