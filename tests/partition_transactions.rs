//! Transactions as one partition's log keeps them: the last stable offset
//! held by an open transaction, markers that end it, read_committed reads
//! capped there with the aborted transactions listed, and all of it as it
//! was after a clean restart and after a crash, across segment rolls.

mod common;

use common::{batch, open, run, small_config, split, test_dir};
use strom::log::batch::build;
use strom::log::control::Marker;
use strom::log::{Durability, LogError, Offset, Partition, ProducerEpoch, ProducerId, RecordBatch};

const EPOCH: ProducerEpoch = ProducerEpoch(0);

/// A transactional batch of `count` records of producer `producer` at `seq`.
fn txn(producer: i64, seq: i32, count: usize) -> RecordBatch {
    let plain = batch(seq as u64, count, 900, 5);
    let mut raw = build::transactional(plain.as_bytes(), ProducerId(producer), EPOCH, seq);
    RecordBatch::split_first(&mut raw).expect("batch")
}

async fn append(p: &Partition, b: RecordBatch) -> u64 {
    let info = p.append(vec![b], Durability::Policy).await.expect("append");
    info.base_offset.get()
}

/// Every batch a read_committed reader gets from `from`, and the aborted
/// transactions it is told of.
async fn read_committed(p: &Partition, from: u64) -> (Vec<RecordBatch>, Vec<(i64, u64)>) {
    let (mut out, mut aborted) = (Vec::new(), Vec::new());
    let mut offset = Offset::new(from);
    loop {
        let read = p.read_committed(offset, 16 << 10).await.expect("read");
        if read.chunk.is_empty() {
            return (out, aborted);
        }
        for (producer, first) in read.aborted {
            if !aborted.contains(&(producer.0, first.get())) {
                aborted.push((producer.0, first.get()));
            }
        }
        for b in split(read.chunk.to_bytes_blocking().expect("bytes")) {
            assert!(b.base() < read.last_stable, "read past the LSO");
            if b.next() > offset {
                offset = b.next();
                out.push(b);
            }
        }
    }
}

#[test]
fn open_transactions_hold_the_lso_and_aborts_are_listed_across_restarts() {
    let dir = test_dir();
    let path = dir.path().join("t-0");
    run(move || async move {
        let p = open(&path, small_config()).await;
        // Unverified: the coordinator did not add the partition.
        let refused = p.append(vec![txn(1, 0, 2)], Durability::Policy).await;
        assert!(matches!(refused, Err(LogError::Producer(_))), "{refused:?}");
        assert_eq!(p.next_offset().get(), 0, "nothing stored");

        p.expect_transaction(ProducerId(1), EPOCH);
        assert_eq!(append(&p, txn(1, 0, 2)).await, 0);
        assert_eq!(append(&p, batch(100, 1, 900, 5)).await, 2);
        assert_eq!(p.last_stable_offset().get(), 0, "held by the open txn");
        assert_eq!(read_committed(&p, 0).await.0.len(), 0);
        assert!(!p.read(Offset::new(0), 1 << 20).await.unwrap().is_empty());
        let commit = p
            .append_marker(ProducerId(1), EPOCH, Marker::Commit, 0)
            .await
            .unwrap();
        assert_eq!(commit.get(), 3);
        assert_eq!(p.last_stable_offset(), p.next_offset());

        // Producer 2's transaction spans many segments and is aborted;
        // producer 1's next one commits inside it.
        p.expect_transaction(ProducerId(2), EPOCH);
        let first2 = append(&p, txn(2, 0, 1)).await;
        p.expect_transaction(ProducerId(1), EPOCH);
        append(&p, txn(1, 2, 1)).await;
        for seq in 1..200 {
            append(&p, txn(2, seq, 1)).await;
        }
        assert_eq!(p.last_stable_offset().get(), first2);
        p.append_marker(ProducerId(1), EPOCH, Marker::Commit, 0)
            .await
            .unwrap();
        assert_eq!(p.last_stable_offset().get(), first2, "2's still open");
        let abort2 = p
            .append_marker(ProducerId(2), EPOCH, Marker::Abort, 0)
            .await
            .unwrap();
        assert!(p.segment_count() > 2, "the transaction spans segments");
        // A late batch of the ended transaction cannot reopen one.
        let late = p.append(vec![txn(2, 200, 1)], Durability::Policy).await;
        assert!(matches!(late, Err(LogError::Producer(_))), "{late:?}");

        // Producer 3 leaves one open, then the log rolls past the abort.
        p.expect_transaction(ProducerId(3), EPOCH);
        let first3 = append(&p, txn(3, 0, 1)).await;
        for tag in 0..100 {
            append(&p, batch(tag, 1, 900, 5)).await;
        }
        let expected = |lso: u64| {
            move |(batches, aborted): (Vec<RecordBatch>, Vec<(i64, u64)>)| {
                assert_eq!(aborted, vec![(2, first2)], "the aborted txn, once");
                let last = batches.last().expect("batches");
                assert_eq!(last.next().get(), lso, "read up to the LSO");
            }
        };
        expected(first3)(read_committed(&p, 0).await);
        // From inside the aborted transaction too.
        let (_, aborted) = read_committed(&p, abort2.get() - 5).await;
        assert_eq!(aborted, vec![(2, first2)]);

        // A clean restart (shutdown snapshot), then a crash.
        p.snapshot_producers().await.unwrap();
        p.close().await.unwrap();
        drop(p);
        let p = open(&path, small_config()).await;
        assert_eq!(p.last_stable_offset().get(), first3);
        expected(first3)(read_committed(&p, 0).await);
        for tag in 0..100 {
            append(&p, batch(tag, 1, 900, 5)).await;
        }
        p.flush().await.unwrap();
        drop(p); // a crash: the replay from the last roll's snapshot
        let p = open(&path, small_config()).await;
        assert_eq!(p.last_stable_offset().get(), first3);
        expected(first3)(read_committed(&p, 0).await);
        drop(p);
        // Without snapshots or index files: the whole log replays.
        for e in std::fs::read_dir(&path).unwrap() {
            let e = e.unwrap().path();
            let ext = e.extension().and_then(|x| x.to_str());
            if matches!(ext, Some("snapshot") | Some("txnindex")) {
                std::fs::remove_file(e).unwrap();
            }
        }
        let p = open(&path, small_config()).await;
        assert_eq!(p.last_stable_offset().get(), first3);
        expected(first3)(read_committed(&p, 0).await);
        p.append_marker(ProducerId(3), EPOCH, Marker::Commit, 0)
            .await
            .unwrap();
        let end = p.next_offset().get();
        assert_eq!(p.last_stable_offset().get(), end);
        expected(end)(read_committed(&p, 0).await);
        p.close().await.unwrap();
    });
}
