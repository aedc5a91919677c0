//! Producer state snapshots: Kafka's `<offset>.snapshot` files beside a
//! partition's segments, so a partition opens by loading the newest valid
//! snapshot and replaying only the batches after it, instead of reading
//! its whole log.
//!
//! Format (Kafka's ProducerSnapshot v1, big-endian): version i16 = 1,
//! crc u32 (CRC32C of every byte after it), count i32, then per producer:
//! producer id i64, epoch i16, last sequence i32, last offset i64, offset
//! delta i32, timestamp i64, coordinator epoch i32, current transaction's
//! first offset i64 (-1: none). As in Kafka, a snapshot keeps each
//! producer's last batch only. The file is named by the offset it
//! describes the log up to (the state of every batch below it).
//!
//! A snapshot that fails to parse or to match its CRC is ignored (and
//! deleted): the older one, or the log itself, rebuilds the state.

use super::error::IoContext;
use super::offset::{Offset, ProducerEpoch, ProducerId};
use super::producer_state::BatchMeta;
use super::segment::{read_file, write_file};
use bytes::{Buf, BufMut};
use std::path::Path;

const VERSION: i16 = 1;
const CRC_AT: usize = 2;
const ENTRIES_AT: usize = 6;
const ENTRY_LEN: usize = 46;

/// One producer as a snapshot keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotEntry {
    pub producer: ProducerId,
    pub epoch: ProducerEpoch,
    /// The producer's last batch (none: it has only an epoch).
    pub last: Option<BatchMeta>,
    /// The epoch of the coordinator of its last marker (-1: none).
    pub coordinator_epoch: i32,
    /// Where its open transaction starts on the partition.
    pub txn_first: Option<Offset>,
}

#[derive(Debug, thiserror::Error)]
#[error("corrupt producer snapshot: {0}")]
pub struct CorruptSnapshot(&'static str);

pub fn file_name(offset: Offset) -> String {
    format!("{:020}.snapshot", offset.get())
}

/// The offset a snapshot file describes, from its name.
pub fn offset_of(name: &str) -> Option<Offset> {
    let digits = name.strip_suffix(".snapshot")?;
    digits.parse::<u64>().ok().map(Offset::new)
}

pub fn encode(entries: &[SnapshotEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENTRIES_AT + 4 + entries.len() * ENTRY_LEN);
    out.put_i16(VERSION);
    out.put_u32(0); // the CRC, below
    let count = i32::try_from(entries.len()).expect("fewer than 2^31 producers");
    out.put_i32(count);
    for e in entries {
        out.put_i64(e.producer.0);
        out.put_i16(e.epoch.0);
        match e.last {
            Some(b) => {
                let delta = b.last_offset.since(b.first_offset);
                out.put_i32(b.last_seq);
                out.put_i64(b.last_offset.to_i64());
                out.put_i32(i32::try_from(delta).expect("a batch spans fewer than 2^31 offsets"));
                out.put_i64(b.max_timestamp);
            }
            None => {
                out.put_i32(-1);
                out.put_i64(-1);
                out.put_i32(0);
                out.put_i64(-1);
            }
        }
        out.put_i32(e.coordinator_epoch);
        out.put_i64(e.txn_first.map_or(-1, Offset::to_i64));
    }
    let crc = crc32c::crc32c(&out[ENTRIES_AT..]);
    out[CRC_AT..ENTRIES_AT].copy_from_slice(&crc.to_be_bytes());
    out
}

pub fn decode(raw: &[u8]) -> Result<Vec<SnapshotEntry>, CorruptSnapshot> {
    if raw.len() < ENTRIES_AT + 4 {
        return Err(CorruptSnapshot("too short"));
    }
    let mut head = &raw[..ENTRIES_AT];
    if head.get_i16() != VERSION {
        return Err(CorruptSnapshot("unknown version"));
    }
    if head.get_u32() != crc32c::crc32c(&raw[ENTRIES_AT..]) {
        return Err(CorruptSnapshot("CRC mismatch"));
    }
    let mut body = &raw[ENTRIES_AT..];
    let count = usize::try_from(body.get_i32()).map_err(|_| CorruptSnapshot("negative count"))?;
    if body.len() != count * ENTRY_LEN {
        return Err(CorruptSnapshot("length does not match the count"));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let producer = ProducerId(body.get_i64());
        let epoch = ProducerEpoch(body.get_i16());
        let last_seq = body.get_i32();
        let last_offset = body.get_i64();
        let delta = body.get_i32();
        let max_timestamp = body.get_i64();
        let coordinator_epoch = body.get_i32();
        let txn_first = body.get_i64();
        out.push(SnapshotEntry {
            producer,
            epoch,
            last: last_batch(last_seq, last_offset, delta, max_timestamp)?,
            coordinator_epoch,
            txn_first: Offset::from_i64(txn_first),
        });
    }
    Ok(out)
}

fn last_batch(
    last_seq: i32,
    last_offset: i64,
    delta: i32,
    max_timestamp: i64,
) -> Result<Option<BatchMeta>, CorruptSnapshot> {
    let Some(last) = Offset::from_i64(last_offset) else {
        return Ok(None); // -1: the producer has no batch
    };
    let span = u64::try_from(delta).map_err(|_| CorruptSnapshot("negative offset delta"))?;
    if span > last.get() {
        return Err(CorruptSnapshot("offset delta before offset 0"));
    }
    Ok(Some(BatchMeta {
        first_seq: first_sequence(last_seq, delta),
        last_seq,
        first_offset: Offset::new(last.get() - span),
        last_offset: last,
        max_timestamp,
    }))
}

/// Kafka's `decrementSequence`: sequences wrap from i32::MAX to 0. (A
/// damaged value cannot overflow: the arithmetic wraps.)
fn first_sequence(last_seq: i32, delta: i32) -> i32 {
    if last_seq < delta {
        i32::MAX
            .wrapping_sub(delta.wrapping_sub(last_seq))
            .wrapping_add(1)
    } else {
        last_seq.wrapping_sub(delta)
    }
}

/// Writes the snapshot of the log up to `offset`; `sync` makes it durable
/// (at shutdown). A roll's snapshot is not synced, as in Kafka: a power
/// cut may leave it damaged, and a damaged snapshot only means more of
/// the log is replayed.
pub async fn write(
    dir: &Path,
    offset: Offset,
    entries: &[SnapshotEntry],
    sync: bool,
) -> super::Result<()> {
    write_file(&dir.join(file_name(offset)), &encode(entries), sync).await
}

/// The newest valid snapshot among `offsets` (oldest first) in `dir`;
/// damaged ones are deleted on the way, with a warning.
pub async fn load_newest(
    dir: &Path,
    offsets: &[Offset],
) -> super::Result<Option<(Offset, Vec<SnapshotEntry>)>> {
    for &offset in offsets.iter().rev() {
        let path = dir.join(file_name(offset));
        let Some(raw) = read_file(&path).await? else {
            continue;
        };
        match decode(&raw) {
            Ok(entries) => return Ok(Some((offset, entries))),
            Err(e) => {
                tracing::warn!(snapshot = %path.display(), "ignoring it, the log rebuilds it: {e}");
                remove(dir, offset).await?;
            }
        }
    }
    Ok(None)
}

/// Deletes the snapshot at `offset`, if it is there.
pub async fn remove(dir: &Path, offset: Offset) -> super::Result<()> {
    let path = dir.join(file_name(offset));
    match glommio::io::remove(&path).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let e: std::io::Error = e.into();
            if e.kind() == std::io::ErrorKind::NotFound {
                return Ok(());
            }
            Err(e).context(|| format!("deleting {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_round_trip_and_damage_is_detected() {
        let entries = vec![
            SnapshotEntry {
                producer: ProducerId(7),
                epoch: ProducerEpoch(2),
                last: Some(BatchMeta {
                    first_seq: 10,
                    last_seq: 14,
                    first_offset: Offset::new(100),
                    last_offset: Offset::new(104),
                    max_timestamp: 1_700_000_000_000,
                }),
                coordinator_epoch: 3,
                txn_first: Some(Offset::new(90)),
            },
            SnapshotEntry {
                producer: ProducerId(8),
                epoch: ProducerEpoch(0),
                last: None,
                coordinator_epoch: -1,
                txn_first: None,
            },
        ];
        let raw = encode(&entries);
        assert_eq!(raw.len(), ENTRIES_AT + 4 + 2 * ENTRY_LEN);
        assert_eq!(decode(&raw).unwrap(), entries);
        for at in [0, 3, 11, raw.len() - 1] {
            let mut bad = raw.clone();
            bad[at] ^= 0x40;
            assert!(decode(&bad).is_err(), "byte {at} flipped");
        }
        assert!(decode(&raw[..raw.len() - 1]).is_err());
        assert_eq!(
            offset_of(&file_name(Offset::new(42))),
            Some(Offset::new(42))
        );
        assert_eq!(first_sequence(1, 3), i32::MAX - 1);
    }
}
