//! The partition log's user-visible behaviour: offsets, hot and cold reads,
//! rolling, retention, time lookups, flush and group commit, reopening.

mod common;

use strom::log::housekeeping::Housekeeping;

use common::{batch, open, read_all, run, small_config, split, tag_of, test_dir};
use strom::log::{
    BatchError, ColdReads, Durability, Flushed, LogConfig, LogError, Offset, Partition, ReadChunk,
};

#[test]
fn appended_batches_get_dense_offsets_and_read_back_hot_and_cold() {
    for cold_reads in [ColdReads::Direct, ColdReads::Sendfile] {
        dense_offsets_hot_and_cold(cold_reads);
    }
}

/// Proves: offsets are assigned densely, and every batch reads back intact
/// whether it is still in the tail cache or only in the segment file, read
/// either way.
fn dense_offsets_hot_and_cold(cold_reads: ColdReads) {
    let dir = test_dir();
    let path = dir.path().join("t-0");
    run(move || async move {
        let config = LogConfig {
            cold_reads,
            ..small_config()
        };
        let p = open(&path, config).await;
        let mut expected = Vec::new();
        for tag in 0..200u64 {
            let info = p
                .append(vec![batch(tag, 3, 100, 1000)], Durability::Policy)
                .await
                .unwrap();
            assert_eq!(info.base_offset.get(), tag * 3);
            assert_eq!(info.last_offset.get(), tag * 3 + 2);
            expected.push(tag);
        }
        assert_eq!(p.next_offset().get(), 600);
        // The oldest batches have left the 16 KiB tail cache: a cold read.
        let cold = p.read(Offset::new(0), 1024).await.unwrap();
        match cold_reads {
            ColdReads::Direct => assert!(matches!(cold, ReadChunk::Read(_))),
            ColdReads::Sendfile => assert!(matches!(cold, ReadChunk::File(_))),
        }
        // The newest are hot.
        assert!(matches!(
            p.read(Offset::new(599), 1024).await.unwrap(),
            ReadChunk::Cached(_)
        ));
        let got: Vec<u64> = read_all(&p, 0).await.iter().map(tag_of).collect();
        assert_eq!(got, expected);
        // Reading from the middle of a batch returns that whole batch.
        let chunk = p.read(Offset::new(301), 1).await.unwrap();
        let batches = split(chunk.to_bytes_blocking().unwrap());
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].base_offset(), 300);
        p.close().await.unwrap();
    });
}

#[test]
fn reads_follow_kafka_rules_for_max_bytes_and_range() {
    // Proves: whole batches only, the first even when larger than max_bytes,
    // empty at the log end or with no bytes to spend, OFFSET_OUT_OF_RANGE
    // beyond it.
    let dir = test_dir();
    let path = dir.path().join("t-0");
    run(move || async move {
        let p = open(&path, small_config()).await;
        for tag in 0..50 {
            p.append(vec![batch(tag, 1, 2000, 1000)], Durability::Policy)
                .await
                .unwrap();
        }
        p.flush().await.unwrap();
        for offset in [0u64, 10, 49] {
            let chunk = p.read(Offset::new(offset), 10).await.unwrap();
            let batches = split(chunk.to_bytes_blocking().unwrap());
            assert_eq!(batches.len(), 1, "first batch always returned");
            assert_eq!(batches[0].base_offset(), offset as i64);
        }
        let chunk = p.read(Offset::new(0), 9000).await.unwrap();
        let batches = split(chunk.to_bytes_blocking().unwrap());
        assert!(batches.len() >= 2 && batches.iter().map(|b| b.len()).sum::<usize>() <= 9000);
        assert!(p.read(Offset::new(50), 100).await.unwrap().is_empty());
        // A fetch whose byte budget is spent reads nothing but still checks
        // the offset.
        assert!(p.read(Offset::new(0), 0).await.unwrap().is_empty());
        assert!(p.read(Offset::new(49), 0).await.unwrap().is_empty());
        assert!(matches!(
            p.read(Offset::new(51), 0).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        let out_of_range = p.read(Offset::new(51), 100).await;
        let Err(LogError::OffsetOutOfRange {
            requested,
            log_start,
            log_end,
        }) = out_of_range
        else {
            panic!("offset 51 is past the log end: {out_of_range:?}");
        };
        let range = (requested.get(), log_start.get(), log_end.get());
        assert_eq!(range, (51, 0, 50));
    });
}

#[test]
fn invalid_batches_are_refused_and_nothing_is_appended() {
    // Proves: one bad batch refuses the whole append with the Kafka-mapped
    // error, and the log is unchanged.
    let dir = test_dir();
    let path = dir.path().join("t-0");
    run(move || async move {
        let config = LogConfig {
            max_message_bytes: 1000,
            ..small_config()
        };
        let p = open(&path, config).await;
        let res = p
            .append(
                vec![batch(1, 1, 10, 0), batch(2, 1, 2000, 0)],
                Durability::Policy,
            )
            .await;
        assert!(matches!(
            res,
            Err(LogError::Batch(BatchError::MessageTooLarge { .. }))
        ));
        assert_eq!(p.next_offset().get(), 0);
        assert!(matches!(
            p.append(Vec::new(), Durability::Policy).await,
            Err(LogError::Batch(BatchError::InvalidRecord(_)))
        ));
        let mut raw = batch(3, 1, 10, 0).into_bytes().to_vec();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let corrupt = strom::log::RecordBatch::split_first(&mut bytes::Bytes::from(raw)).unwrap();
        assert!(matches!(
            p.append(vec![corrupt], Durability::Policy).await,
            Err(LogError::Batch(BatchError::CrcMismatch { .. }))
        ));
        assert_eq!(p.next_offset().get(), 0);
    });
}

#[test]
fn segments_roll_by_size_and_time_and_survive_reopen() {
    // Proves: segment.bytes and segment.ms roll segments named by base
    // offset, sealed segments get their index files, and a reopened log
    // serves the same batches.
    let dir = test_dir();
    let path = dir.path().join("t-0");
    run(move || async move {
        let p = open(&path, small_config()).await;
        for tag in 0..100 {
            p.append_at(vec![batch(tag, 2, 1000, 1000)], 1000, Durability::Policy)
                .await
                .unwrap();
        }
        let by_size = p.segment_count();
        assert!(by_size >= 2, "64 KiB segments must roll at ~100 KiB");
        // segment.ms: an append far in the future rolls a fresh segment.
        let config_ms = p.config().segment_ms;
        p.append_at(
            vec![batch(100, 1, 10, 1000)],
            1000 + config_ms,
            Durability::Policy,
        )
        .await
        .unwrap();
        assert_eq!(p.segment_count(), by_size + 1);
        let bases = p.segment_bases();
        for base in &bases[..bases.len() - 1] {
            for ext in ["log", "index", "timeindex"] {
                assert!(
                    path.join(format!("{base:020}.{ext}")).exists(),
                    "{base} {ext}"
                );
            }
        }
        p.close().await.unwrap();
        drop(p);
        let p = open(&path, small_config()).await;
        assert_eq!(p.segment_bases(), bases);
        let got: Vec<u64> = read_all(&p, 0).await.iter().map(tag_of).collect();
        assert_eq!(got, (0..=100).collect::<Vec<_>>());
    });
}

#[test]
fn retention_deletes_whole_old_segments_and_advances_log_start() {
    // Proves: retention.bytes and retention.ms delete whole sealed segments,
    // oldest first, never the active one, and the log start moves with them.
    let dir = test_dir();
    let path = dir.path().join("t-0");
    run(move || async move {
        let config = LogConfig {
            retention_bytes: 100 << 10,
            retention_ms: 60_000,
            ..small_config()
        };
        let p = open(&path, config).await;
        for tag in 0..400 {
            // Timestamps rise 1 s per batch.
            p.append_at(
                vec![batch(tag, 1, 1000, tag as i64 * 1000)],
                0,
                Durability::Policy,
            )
            .await
            .unwrap();
        }
        let before = p.segment_count();
        let deleted = p.enforce_retention(0).await.unwrap();
        assert!(deleted > 0 && p.segment_count() == before - deleted);
        assert!(p.size_bytes() <= (100 << 10) + (64 << 10));
        let start = p.log_start().get();
        assert_eq!(start, p.segment_bases()[0].get());
        assert!(matches!(
            p.read(Offset::new(0), 100).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        let first = split(
            p.read(Offset::new(start), 1)
                .await
                .unwrap()
                .to_bytes_blocking()
                .unwrap(),
        );
        assert_eq!(first[0].base_offset() as u64, start);
        assert!(!path.join(format!("{:020}.log", 0)).exists());
        // By time: everything older than 60 s before t = 400 s goes, except
        // the active segment.
        p.enforce_retention(400_000 + 60_000 + 1).await.unwrap();
        assert_eq!(p.segment_count(), 1);
        assert_eq!(p.log_start().get(), p.segment_bases()[0].get());
        assert_eq!(p.next_offset().get(), 400);
        p.close().await.unwrap();
        drop(p);
        let p = open(&path, small_config()).await;
        assert_eq!(p.next_offset().get(), 400);
        assert!(p.log_start().get() > 0);
    });
}

#[test]
fn offset_lookup_by_timestamp_finds_the_first_record_at_or_after() {
    // Proves: ListOffsets-by-time semantics over sealed and active segments.
    let dir = test_dir();
    let path = dir.path().join("t-0");
    run(move || async move {
        let p = open(&path, small_config()).await;
        for tag in 0..300u64 {
            p.append(
                vec![batch(tag, 2, 500, 10_000 + tag as i64 * 10)],
                Durability::Policy,
            )
            .await
            .unwrap();
        }
        assert!(p.segment_count() > 1);
        assert_eq!(
            p.offset_for_timestamp(0).await.unwrap(),
            Some((Offset::new(0), 10_000))
        );
        assert_eq!(
            p.offset_for_timestamp(10_000).await.unwrap(),
            Some((Offset::new(0), 10_000))
        );
        assert_eq!(
            p.offset_for_timestamp(10_001).await.unwrap(),
            Some((Offset::new(2), 10_010))
        );
        assert_eq!(
            p.offset_for_timestamp(11_500).await.unwrap(),
            Some((Offset::new(300), 11_500))
        );
        assert_eq!(
            p.offset_for_timestamp(12_990).await.unwrap(),
            Some((Offset::new(598), 12_990))
        );
        assert_eq!(p.offset_for_timestamp(12_991).await.unwrap(), None);
        drop(p);
        // The same after a reopen, through the sealed time indexes.
        let p = open(&path, small_config()).await;
        assert_eq!(
            p.offset_for_timestamp(11_505).await.unwrap(),
            Some((Offset::new(302), 11_510))
        );
    });
}

#[test]
fn concurrent_flushes_share_fdatasyncs() {
    // Proves group commit: 64 producers appending and flushing at once are
    // all made durable with far fewer fdatasyncs than flushes.
    let dir = test_dir();
    let path = dir.path().join("t-0");
    run(move || async move {
        let p = std::rc::Rc::new(open(&path, small_config()).await);
        let mut tasks = Vec::new();
        for tag in 0..64u64 {
            let p = p.clone();
            tasks.push(glommio::spawn_local(async move {
                let info = p
                    .append(vec![batch(tag, 1, 200, 0)], Durability::Policy)
                    .await
                    .unwrap();
                p.flush().await.unwrap();
                assert!(p.durable_offset().get() > info.last_offset.get());
            }));
        }
        for t in tasks {
            t.await;
        }
        assert_eq!(p.durable_offset().get(), 64);
        let syncs = p.fdatasyncs();
        assert!(syncs < 32, "{syncs} fdatasyncs for 64 flushes");
    });
}

#[test]
fn flush_policy_flushes_by_message_count_and_age() {
    // Proves: flush.messages flushes inside append; flush.ms makes
    // flush_if_due flush old data and leave fresh data alone.
    let dir = test_dir();
    let path = dir.path().join("t-0");
    run(move || async move {
        let config = LogConfig {
            flush_messages: 10,
            flush_ms: 1000,
            ..small_config()
        };
        let p = open(&path, config).await;
        p.append_at(vec![batch(0, 9, 10, 0)], 0, Durability::Policy)
            .await
            .unwrap();
        assert_eq!(p.durable_offset().get(), 0);
        p.append_at(vec![batch(1, 1, 10, 0)], 0, Durability::Policy)
            .await
            .unwrap();
        assert_eq!(p.durable_offset().get(), 10, "flush.messages=10 reached");
        p.append_at(vec![batch(2, 1, 10, 0)], 5_000, Durability::Policy)
            .await
            .unwrap();
        assert!(!p.flush_if_due(5_999).await.unwrap());
        assert_eq!(p.durable_offset().get(), 10);
        assert!(p.flush_if_due(6_000).await.unwrap());
        assert_eq!(p.durable_offset().get(), 11);
    });
}

#[test]
fn missing_or_damaged_indexes_are_rebuilt_on_open() {
    // Proves: a sealed segment whose .index is gone or garbage is reindexed
    // from the log, and reads by offset still land on the right batch.
    let dir = test_dir();
    let path = dir.path().join("t-0");
    run(move || async move {
        let p = open(&path, small_config()).await;
        for tag in 0..150 {
            p.append(vec![batch(tag, 1, 900, 5)], Durability::Policy)
                .await
                .unwrap();
        }
        p.close().await.unwrap();
        let bases = p.segment_bases();
        drop(p);
        std::fs::remove_file(path.join(format!("{:020}.index", bases[0]))).unwrap();
        std::fs::write(path.join(format!("{:020}.timeindex", bases[1])), b"garbage").unwrap();
        let p: Partition = open(&path, small_config()).await;
        for offset in [0u64, 37, 70, 149] {
            let got = split(
                p.read(Offset::new(offset), 1)
                    .await
                    .unwrap()
                    .to_bytes_blocking()
                    .unwrap(),
            );
            assert_eq!(got[0].base_offset() as u64, offset);
            assert_eq!(tag_of(&got[0]), offset);
        }
        assert!(path.join(format!("{:020}.index", bases[0])).exists());
    });
}

#[test]
fn an_append_never_waits_for_a_flush_ms_flush() {
    // Proves: flush.ms is the timer's job (as Kafka's log flusher): an
    // append made after the deadline passed returns without flushing, so an
    // acks=1 producer never waits for an fdatasync; the timer's check then
    // flushes everything.
    let dir = test_dir();
    let path = dir.path().join("t-0");
    run(move || async move {
        let config = LogConfig {
            flush_ms: 1000,
            ..small_config()
        };
        let p = open(&path, config).await;
        p.append_at(vec![batch(0, 1, 10, 0)], 0, Durability::Policy)
            .await
            .unwrap();
        p.append_at(vec![batch(1, 1, 10, 0)], 5_000, Durability::Policy)
            .await
            .unwrap();
        p.append_at(vec![batch(2, 1, 10, 0)], 9_000, Durability::Policy)
            .await
            .unwrap();
        assert_eq!(p.durable_offset().get(), 0);
        assert_eq!(p.fdatasyncs(), 0);
        assert!(p.flush_if_due(9_000).await.unwrap());
        assert_eq!(p.durable_offset().get(), 3);
    });
}

#[test]
fn flush_timer_makes_old_data_durable_without_an_explicit_flush() {
    // Proves flush.ms works on its own: appended data becomes durable within
    // a few ticks with nobody calling flush.
    let dir = test_dir();
    let path = dir.path().join("t-0");
    run(move || async move {
        let config = LogConfig {
            flush_ms: 40,
            ..small_config()
        };
        let p = std::rc::Rc::new(open(&path, config).await);
        let housekeeping = Housekeeping::start();
        housekeeping.add(&p);
        p.append(vec![batch(0, 5, 100, 0)], Durability::Policy)
            .await
            .unwrap();
        assert_eq!(p.durable_offset().get(), 0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while p.durable_offset().get() < 5 {
            assert!(
                std::time::Instant::now() < deadline,
                "flush.ms never flushed"
            );
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
        }
        drop(p);
        // The partition leaves the sweep once it is gone.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !housekeeping.is_empty() {
            assert!(std::time::Instant::now() < deadline, "still swept");
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
        }
    });
}

#[test]
fn housekeeping_applies_retention_without_being_asked() {
    // Proves the broker-side timer enforces retention.bytes on its own, as
    // Kafka's log.retention.check.interval.ms does.
    let dir = test_dir();
    let path = dir.path().join("t-0");
    run(move || async move {
        let config = LogConfig {
            retention_bytes: 64 << 10,
            retention_check_interval_ms: 20,
            ..small_config()
        };
        let p = std::rc::Rc::new(open(&path, config).await);
        for tag in 0..300 {
            p.append(vec![batch(tag, 1, 1000, 0)], Durability::Policy)
                .await
                .unwrap();
        }
        let before = p.segment_count();
        assert!(before > 3);
        let housekeeping = Housekeeping::start();
        housekeeping.add(&p);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while p.log_start().get() == 0 {
            assert!(std::time::Instant::now() < deadline, "retention never ran");
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(p.segment_count() < before);
        assert!(p.size_bytes() < (64 << 10) + (64 << 10));
    });
}

#[test]
fn flushes_keep_zeros_ahead_that_sealing_and_recovery_remove() {
    // Proves: with zero-ahead on, a flushed segment file holds written zeros
    // past the log end (so flushed appends overwrite blocks instead of
    // growing the file); a sealed segment is cut back to its batches; a
    // reopened partition trims the zeros, keeps every batch and appends on.
    let dir = test_dir();
    let path = dir.path().join("t-0");
    run(move || async move {
        let config = LogConfig {
            segment_bytes: 256 << 10,
            zero_ahead_bytes: 64 << 10,
            ..small_config()
        };
        let log_file = |base: u64| path.join(format!("{base:020}.log"));
        let p = open(&path, config.clone()).await;
        // A run of small flushes (as under acks=all) starts the zeroing; it
        // runs in the background and the last flush waits behind it.
        for tag in 0..6 {
            p.append(vec![batch(tag, 2, 1000, 1000)], Durability::Policy)
                .await
                .unwrap();
            p.flush().await.unwrap();
        }
        let logical = p.size_bytes();
        let on_disk = std::fs::read(log_file(0)).unwrap();
        assert!(
            on_disk.len() as u64 >= logical + (32 << 10),
            "{} bytes on disk for {logical} of log",
            on_disk.len()
        );
        assert!(on_disk[logical as usize..].iter().all(|&b| b == 0));
        let mut tag = 6;
        while p.segment_count() < 3 {
            p.append(vec![batch(tag, 2, 1000, 1000)], Durability::Policy)
                .await
                .unwrap();
            p.flush().await.unwrap();
            tag += 1;
        }
        let bases = p.segment_bases();
        let sealed_len = std::fs::metadata(log_file(bases[0].get())).unwrap().len();
        // Exactly its batches: no zeros, and no padded last block that a
        // late rewrite put back after the cut.
        let raw = std::fs::read(log_file(bases[0].get())).unwrap();
        let sealed_batches = split(bytes::Bytes::from(raw));
        assert_eq!(
            sealed_len,
            sealed_batches.iter().map(|b| b.len() as u64).sum::<u64>()
        );
        // Reopen without closing, as after a crash.
        drop(p);
        let p = open(&path, config).await;
        let got: Vec<u64> = read_all(&p, 0).await.iter().map(tag_of).collect();
        assert_eq!(got, (0..tag).collect::<Vec<_>>());
        // Recovery cut the active segment back to its batches.
        let on_disk: u64 = p
            .segment_bases()
            .iter()
            .map(|&b| std::fs::metadata(log_file(b.get())).unwrap().len())
            .sum();
        assert_eq!(on_disk, p.size_bytes());
        p.append(vec![batch(tag, 2, 1000, 1000)], Durability::Policy)
            .await
            .unwrap();
        p.flush().await.unwrap();
        let got: Vec<u64> = read_all(&p, 0).await.iter().map(tag_of).collect();
        assert_eq!(got, (0..=tag).collect::<Vec<_>>());
        p.close().await.unwrap();
    });
}

/// A one-record batch of idempotent producer 9, epoch 0, at `seq`.
fn idempotent(seq: i32) -> strom::log::RecordBatch {
    let plain = batch(seq as u64, 1, 900, 5);
    let mut raw = strom::log::batch::build::with_producer(
        plain.as_bytes(),
        strom::log::ProducerId(9),
        strom::log::ProducerEpoch(0),
        seq,
    );
    strom::log::RecordBatch::split_first(&mut raw).expect("batch")
}

#[test]
fn producer_retries_are_recognized_after_a_crash_from_the_roll_snapshot_and_the_log() {
    // Proves: the producer state a partition reopens with, without a clean
    // close, is the snapshot of its last roll plus the batches after it
    // replayed: the last five batches are retries (stored never again,
    // answered with their offsets), the next sequence follows, and a gap
    // is refused.
    let dir = test_dir();
    let path = dir.path().join("p-0");
    run(move || async move {
        let p = open(&path, small_config()).await;
        for seq in 0..150 {
            let info = p
                .append(vec![idempotent(seq)], Durability::Policy)
                .await
                .unwrap();
            assert_eq!(info.base_offset.get(), seq as u64);
        }
        assert!(p.segment_count() > 1, "the log rolled");
        p.flush().await.unwrap();
        drop(p); // a crash: no shutdown snapshot
        let snapshots = std::fs::read_dir(&path)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("snapshot".as_ref()))
            .count();
        assert!(
            (1..=2).contains(&snapshots),
            "{snapshots} roll snapshots kept"
        );

        let p = open(&path, small_config()).await;
        for seq in 145..150 {
            let retry = p.append(vec![idempotent(seq)], Durability::Policy).await;
            assert_eq!(
                retry.unwrap().base_offset.get(),
                seq as u64,
                "retry of {seq}"
            );
        }
        assert_eq!(p.next_offset().get(), 150, "retries stored nothing");
        let gap = p.append(vec![idempotent(152)], Durability::Policy).await;
        assert!(matches!(gap, Err(LogError::Producer(_))), "{gap:?}");
        let next = p.append(vec![idempotent(150)], Durability::Policy).await;
        assert_eq!(next.unwrap().base_offset.get(), 150);
    });
}

#[test]
fn a_consumer_reading_from_the_start_gets_each_next_range_read_ahead() {
    // Proves: after a cold read the next range is read ahead and answers the
    // next read at that offset with the same batches a plain read returns;
    // a read-ahead is not used past a moved log start, nor for another
    // byte limit, and the shard's read-ahead bytes stay within the budget.
    let dir = test_dir();
    let path = dir.path().join("t-0");
    let plain_path = dir.path().join("t-1");
    run(move || async move {
        let config = LogConfig {
            segment_bytes: 1 << 20,
            ..small_config()
        };
        let p = open(&path, config.clone()).await;
        let plain = open(
            &plain_path,
            LogConfig {
                read_ahead_bytes: 0,
                ..config
            },
        )
        .await;
        for tag in 0..300u64 {
            for log in [&p, &plain] {
                log.append(vec![batch(tag, 2, 500, 1000)], Durability::Policy)
                    .await
                    .unwrap();
            }
        }
        p.flush().await.unwrap();
        plain.flush().await.unwrap();
        let mut offset = Offset::new(0);
        let mut reads = 0;
        while offset.get() < 400 {
            let chunk = p.read(offset, 8 << 10).await.unwrap();
            assert!(matches!(chunk, ReadChunk::Read(_)), "cold at {offset}");
            let expected = plain.read(offset, 8 << 10).await.unwrap();
            let got = chunk.to_bytes_blocking().unwrap();
            assert_eq!(got, expected.to_bytes_blocking().unwrap(), "at {offset}");
            // The next range is being read ahead, within the budget.
            let held = strom::log::read_ahead::held_bytes();
            assert!(held > 0 && held <= config.read_ahead_bytes, "held {held}");
            // A consumer at the tail (a hot read) leaves it in place.
            let tail = p.read(Offset::new(599), 8 << 10).await.unwrap();
            assert!(matches!(tail, ReadChunk::Cached(_)));
            assert_eq!(strom::log::read_ahead::held_bytes(), held);
            offset = split(got).last().unwrap().next();
            reads += 1;
        }
        assert!(reads > 10);
        // Another byte limit: a plain read, still right.
        let small = p.read(offset, 1).await.unwrap();
        assert_eq!(split(small.to_bytes_blocking().unwrap()).len(), 1);
        // A read ahead of a log start that then moved is not answered.
        let next = p.read(offset, 8 << 10).await.unwrap();
        let after = split(next.to_bytes_blocking().unwrap())
            .last()
            .unwrap()
            .next();
        p.delete_records_before(Some(after.plus(10))).await.unwrap();
        assert!(matches!(
            p.read(after, 8 << 10).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        p.close().await.unwrap();
        plain.close().await.unwrap();
    });
}

#[test]
fn flushes_inside_durable_zeros_share_one_fdatasync_across_partitions() {
    // Proves: once a partition's flushes only overwrite zeroed, synced
    // blocks, they join the shard's shared fdatasync (one for several
    // partitions flushing at once), and what they acknowledged reads back
    // after a reopen without a close.
    let dir = test_dir();
    let paths = [dir.path().join("t-0"), dir.path().join("t-1")];
    run(move || async move {
        let config = LogConfig {
            segment_bytes: 1 << 20,
            zero_ahead_bytes: 256 << 10,
            ..small_config()
        };
        let a = open(&paths[0], config.clone()).await;
        let b = open(&paths[1], config.clone()).await;
        let shared_before = strom::log::device_flush::started();
        let (mut a_syncs, mut b_syncs) = (a.fdatasyncs(), b.fdatasyncs());
        let mut shared_rounds = 0;
        for tag in 0..40u64 {
            for p in [&a, &b] {
                p.append(vec![batch(tag, 2, 500, 1000)], Durability::Policy)
                    .await
                    .unwrap();
            }
            let shared = strom::log::device_flush::started();
            let (x, y) = futures_lite::future::zip(a.flush(), b.flush()).await;
            x.unwrap();
            y.unwrap();
            // Each partition still counts a sync that covers it.
            assert_eq!(a.fdatasyncs(), a_syncs + 1);
            assert_eq!(b.fdatasyncs(), b_syncs + 1);
            (a_syncs, b_syncs) = (a.fdatasyncs(), b.fdatasyncs());
            // Both shared one fdatasync this round.
            if strom::log::device_flush::started() == shared + 1 {
                shared_rounds += 1;
            }
        }
        assert!(
            shared_rounds >= 30,
            "{shared_rounds} of 40 rounds shared one fdatasync ({} shared in all)",
            strom::log::device_flush::started() - shared_before
        );
        drop((a, b));
        for path in &paths {
            let p = open(path, config.clone()).await;
            let got: Vec<u64> = read_all(&p, 0).await.iter().map(tag_of).collect();
            assert_eq!(got, (0..40).collect::<Vec<_>>());
            p.close().await.unwrap();
        }
    });
}

#[test]
fn a_pure_overwrite_leaves_its_fdatasync_to_the_caller_that_flushes_the_device() {
    // Proves: an acks=all flush on an owner shard whose writes only
    // overwrite synced blocks returns once written, without an fdatasync,
    // when the caller says it fdatasyncs the same device; any other flush
    // (first writes, another device) fdatasyncs as before; and what was
    // written reads back after a reopen without a close.
    let dir = test_dir();
    let path = dir.path().join("t-0");
    run(move || async move {
        let config = LogConfig {
            segment_bytes: 1 << 20,
            zero_ahead_bytes: 256 << 10,
            ..small_config()
        };
        let p = open(&path, config.clone()).await;
        let probe = glommio::io::DmaFile::open(path.join("00000000000000000000.log"))
            .await
            .expect("segment");
        let device = strom::log::device_flush::device_of(&probe);
        let elsewhere = (u32::MAX, u32::MAX);
        let (mut deferred, mut own) = (0, 0);
        for tag in 0..40u64 {
            p.append(vec![batch(tag, 2, 500, 1000)], Durability::Policy)
                .await
                .unwrap();
            let (syncs, shared) = (p.fdatasyncs(), strom::log::device_flush::started());
            let caller = if tag % 4 == 3 { elsewhere } else { device };
            match p.flush_or_defer(Some(caller)).await.unwrap() {
                Flushed::AwaitsDeviceFlush => {
                    assert_eq!(caller, device, "deferred to a caller on another device");
                    assert_eq!(p.fdatasyncs(), syncs, "a deferred flush fdatasynced");
                    assert_eq!(strom::log::device_flush::started(), shared);
                    deferred += 1;
                }
                Flushed::Durable => {
                    assert_eq!(p.fdatasyncs(), syncs + 1);
                    own += 1;
                }
            }
        }
        // The first flushes extend the file (its metadata must be
        // committed); after them every same-device flush is deferred.
        assert!(deferred >= 25, "{deferred} deferred, {own} fdatasynced");
        assert!(own >= 10, "{own} fdatasynced");
        drop((p, probe));
        let p = open(&path, config).await;
        let got: Vec<u64> = read_all(&p, 0).await.iter().map(tag_of).collect();
        assert_eq!(got, (0..40).collect::<Vec<_>>());
        p.close().await.unwrap();
    });
}
