//! Proves the glommio io-poll pitfall (DESIGN.md §8) is handled: on a fresh,
//! empty data directory, on a fresh executor thread, the normal startup path
//! (`log_dir::open_all`) leaves DMA reads working, so a partition created
//! there can be recovered and read back through O_DIRECT reads. Without the
//! probe, the first DMA file opened would be a new, empty segment and every
//! later DMA read would fail with EOPNOTSUPP.

mod common;

use common::{batch, run, tag_of, test_dir};
use strom::log::log_dir::{open_all, TopicPartition};
use strom::log::{LogConfig, Partition};

#[test]
fn dma_reads_work_on_a_fresh_empty_data_dir() {
    let dir = test_dir();
    let data_dir = dir.path().join("data");
    run(move || async move {
        let config = LogConfig::default();
        let (ready, existing) = open_all(&data_dir, &config).await.unwrap();
        assert!(existing.is_empty());
        let tp = TopicPartition::new("fresh", 0);
        let p = Partition::open(&tp.dir(&data_dir), config.clone(), &ready)
            .await
            .unwrap();
        for tag in 0..10 {
            p.append(vec![batch(tag, 1, 100, 0)]).await.unwrap();
        }
        p.close().await.unwrap();
        drop(p);
        // Reopening recovers the segment with DMA reads; read_batches on a
        // reopened log (empty tail cache) reads the file with DMA too.
        let p = Partition::open(&tp.dir(&data_dir), config, &ready)
            .await
            .unwrap();
        assert_eq!(p.next_offset(), 10);
        let batches = p.read_batches(0, 1 << 20).await.unwrap();
        let tags: Vec<u64> = batches.iter().map(tag_of).collect();
        assert_eq!(tags, (0..10).collect::<Vec<_>>());
    });
}
