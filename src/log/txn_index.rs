//! The aborted-transaction index: which transactions a segment's abort
//! markers ended, so a `read_committed` fetch can tell its client which
//! records to drop (Kafka's FetchResponse `aborted_transactions`).
//!
//! Kept in memory per segment (the segment of the abort marker) and on
//! disk as Kafka's `<base>.txnindex`: entries of 34 bytes, big-endian —
//! version i16 = 0, producer id i64, first offset i64, last offset (the
//! marker's) i64, last stable offset i64 (the LSO once the transaction
//! ended). A file is written whole when its segment rolls and before any
//! producer snapshot, so it holds every abort below the newest snapshot;
//! opening a partition re-derives the aborts after it from the log.

use super::offset::{Offset, ProducerId};
use super::segment::{file_name, read_file, write_file_durably};
use bytes::{Buf, BufMut};
use std::path::Path;

const VERSION: i16 = 0;
const ENTRY_LEN: usize = 34;

/// One aborted transaction of one producer on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer: ProducerId,
    pub first: Offset,
    /// The abort marker's offset.
    pub last: Offset,
    /// The partition's last stable offset once this transaction ended:
    /// every transaction still open then starts at or after it.
    pub last_stable: Offset,
}

#[derive(Debug, thiserror::Error)]
#[error("corrupt transaction index: {0}")]
pub struct CorruptTxnIndex(&'static str);

pub fn encode(entries: &[AbortedTxn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for e in entries {
        out.put_i16(VERSION);
        out.put_i64(e.producer.0);
        out.put_i64(e.first.to_i64());
        out.put_i64(e.last.to_i64());
        out.put_i64(e.last_stable.to_i64());
    }
    out
}

pub fn decode(mut raw: &[u8]) -> Result<Vec<AbortedTxn>, CorruptTxnIndex> {
    if !raw.len().is_multiple_of(ENTRY_LEN) {
        return Err(CorruptTxnIndex("length is not a whole number of entries"));
    }
    let offset = |v: i64| Offset::from_i64(v).ok_or(CorruptTxnIndex("negative offset"));
    let mut out = Vec::with_capacity(raw.len() / ENTRY_LEN);
    while raw.has_remaining() {
        if raw.get_i16() != VERSION {
            return Err(CorruptTxnIndex("unknown entry version"));
        }
        let producer = ProducerId(raw.get_i64());
        let first = offset(raw.get_i64())?;
        let last = offset(raw.get_i64())?;
        let last_stable = offset(raw.get_i64())?;
        if first > last {
            return Err(CorruptTxnIndex("first offset after last offset"));
        }
        out.push(AbortedTxn {
            producer,
            first,
            last,
            last_stable,
        });
    }
    Ok(out)
}

/// The aborts in segment `base`'s index file (none if it has no file);
/// `Ok(None)` if the file is damaged.
pub async fn load(dir: &Path, base: Offset) -> super::error::Result<Option<Vec<AbortedTxn>>> {
    let path = dir.join(file_name(base, "txnindex"));
    let Some(raw) = read_file(&path).await? else {
        return Ok(Some(Vec::new()));
    };
    match decode(&raw) {
        Ok(entries) => Ok(Some(entries)),
        Err(e) => {
            tracing::warn!(index = %path.display(), "{e}: rebuilt from the log");
            Ok(None)
        }
    }
}

/// Writes segment `base`'s index file whole, durably.
pub async fn write(dir: &Path, base: Offset, entries: &[AbortedTxn]) -> super::error::Result<()> {
    write_file_durably(&dir.join(file_name(base, "txnindex")), &encode(entries)).await
}

/// Kafka's `collectAbortedTxns`: from `entries` (in marker order, over
/// the segments from the one holding `from`), each transaction that may
/// have records in [`from`, `upper`) — it ended at or after `from` and
/// started before `upper`. Stops at the first entry whose last stable
/// offset passes `upper`: every later transaction started after it.
pub fn collect<'a>(
    entries: impl Iterator<Item = &'a AbortedTxn>,
    from: Offset,
    upper: Offset,
    out: &mut Vec<(ProducerId, Offset)>,
) {
    for e in entries {
        if e.last >= from && e.first < upper {
            out.push((e.producer, e.first));
        }
        if e.last_stable > upper {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(producer: i64, first: u64, last: u64, last_stable: u64) -> AbortedTxn {
        AbortedTxn {
            producer: ProducerId(producer),
            first: Offset::new(first),
            last: Offset::new(last),
            last_stable: Offset::new(last_stable),
        }
    }

    #[test]
    fn entries_round_trip_in_kafkas_layout() {
        let entries = vec![txn(7, 0, 10, 11), txn(8, 5, 20, 21)];
        let raw = encode(&entries);
        assert_eq!(raw.len(), 68);
        assert_eq!(&raw[0..2], &[0, 0]);
        assert_eq!(&raw[2..10], &7i64.to_be_bytes());
        assert_eq!(decode(&raw).unwrap(), entries);
        assert!(decode(&raw[..33]).is_err());
        let mut bad = raw.clone();
        bad[1] = 9;
        assert!(decode(&bad).is_err());
    }

    #[test]
    fn a_fetch_gets_the_aborts_overlapping_its_range() {
        // Txn 1 [0, 4] and txn 2 [2, 9] (ongoing when 1 ended: LSO 2),
        // then txn 3 [12, 15].
        let entries = [txn(1, 0, 4, 2), txn(2, 2, 9, 10), txn(3, 12, 15, 16)];
        let mut out = Vec::new();
        collect(entries.iter(), Offset::new(5), Offset::new(11), &mut out);
        assert_eq!(out, vec![(ProducerId(2), Offset::new(2))]);
        // Stops at txn 2 (its LSO 10 is past 3): txn 3 is not looked at.
        out.clear();
        collect(entries.iter(), Offset::new(0), Offset::new(3), &mut out);
        assert_eq!(
            out,
            vec![
                (ProducerId(1), Offset::new(0)),
                (ProducerId(2), Offset::new(2))
            ]
        );
        out.clear();
        collect(entries.iter(), Offset::new(13), Offset::new(14), &mut out);
        assert_eq!(out, vec![(ProducerId(3), Offset::new(12))]);
    }
}
