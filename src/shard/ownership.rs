//! Which shard owns what: `ShardId`, and the stable function from
//! (topic, partition) and the shard count to the owning shard — the same
//! on every shard and across restarts with the same `--shards`. A topic's
//! partitions go round-robin over the shards from a starting shard picked
//! by the topic name's CRC32C.

use crate::log::PartitionId;

/// One executor of the broker: 0, 1, ... up to `--shards` - 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(usize);

impl ShardId {
    /// Shard 0 keeps the durable topic table.
    pub const FIRST: ShardId = ShardId(0);

    pub const fn new(index: usize) -> ShardId {
        ShardId(index)
    }

    pub const fn index(self) -> usize {
        self.0
    }

    /// Every shard of a broker of `count`.
    pub fn all(count: usize) -> impl Iterator<Item = ShardId> {
        (0..count).map(ShardId)
    }
}

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

pub fn owner(topic: &str, partition: PartitionId, shards: usize) -> ShardId {
    assert!(shards > 0, "a broker has at least one shard");
    let start = crc32c::crc32c(topic.as_bytes()) as usize;
    ShardId(start.wrapping_add(partition.index() as usize) % shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_spread_evenly_and_stably() {
        let mut per_shard = [0usize; 4];
        for p in PartitionId::first(64) {
            per_shard[owner("orders", p, 4).index()] += 1;
            assert_eq!(owner("orders", p, 4), owner("orders", p, 4));
        }
        assert_eq!(per_shard, [16, 16, 16, 16]);
        assert!(PartitionId::first(8).all(|p| owner("t", p, 1) == ShardId::FIRST));
    }
}
