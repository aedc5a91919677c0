//! Proves the glommio io-poll pitfall (DESIGN.md §8) is handled: on a fresh,
//! empty data directory, on a fresh executor thread, the broker's own
//! startup path (`Shard::open`) leaves DMA reads working, so a partition
//! created there can be recovered and read back through O_DIRECT reads.
//! Without the probe, the first DMA file opened would be a new, empty
//! segment and every later DMA read would fail with EOPNOTSUPP.

mod common;

use common::{batch, run, tag_of, test_dir};
use std::rc::Rc;
use strom::config::BrokerConfig;
use strom::log::{Durability, Offset, PartitionId, TopicPartition};
use strom::shard::router::Router;
use strom::shard::Shard;

#[test]
fn dma_reads_work_on_a_fresh_empty_data_dir() {
    let dir = test_dir();
    let data_dir = dir.path().join("data");
    run(move || async move {
        let config = Rc::new(BrokerConfig::new("127.0.0.1:0".parse().unwrap(), data_dir));
        let shard = Shard::open(config.clone(), Router::single(Rc::default()))
            .await
            .unwrap();
        let fresh = TopicPartition::new("fresh", PartitionId::new(0).unwrap());
        assert!(shard.topics().is_empty());
        shard
            .create_topic("fresh", 1, Default::default(), false)
            .await
            .unwrap();
        let p = shard.partition(&fresh).unwrap();
        for tag in 0..10 {
            p.append(vec![batch(tag, 1, 100, 0)], Durability::Policy)
                .await
                .unwrap();
        }
        p.close().await.unwrap();
        drop((p, shard));
        // Reopening recovers the segment with DMA reads; read_batches on a
        // reopened log (empty tail cache) reads the file with DMA too.
        let shard = Shard::open(config, Router::single(Rc::default()))
            .await
            .unwrap();
        let p = shard.partition(&fresh).unwrap();
        assert_eq!(p.next_offset().get(), 10);
        let batches = p.read_batches(Offset::new(0), 1 << 20).await.unwrap();
        let tags: Vec<u64> = batches.iter().map(tag_of).collect();
        assert_eq!(tags, (0..10).collect::<Vec<_>>());
    });
}
