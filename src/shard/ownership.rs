//! Which shard owns a partition: a stable function of (topic, partition)
//! and the shard count, the same on every shard and across restarts with
//! the same `--shards`. A topic's partitions go round-robin over the shards
//! from a starting shard picked by the topic name's CRC32C.

pub fn owner(topic: &str, partition: u32, shards: usize) -> usize {
    assert!(shards > 0, "a broker has at least one shard");
    let start = crc32c::crc32c(topic.as_bytes()) as usize;
    (start.wrapping_add(partition as usize)) % shards
}

#[cfg(test)]
mod tests {
    use super::owner;

    #[test]
    fn partitions_spread_evenly_and_stably() {
        let mut per_shard = [0usize; 4];
        for p in 0..64 {
            per_shard[owner("orders", p, 4)] += 1;
            assert_eq!(owner("orders", p, 4), owner("orders", p, 4));
        }
        assert_eq!(per_shard, [16, 16, 16, 16]);
        assert!((0..8).all(|p| owner("t", p, 1) == 0));
    }
}
