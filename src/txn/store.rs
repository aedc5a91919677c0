//! The records of the internal `__transaction_state` log, in Kafka's
//! schemas: key TransactionLogKey v0 (i16 version, transactional id) →
//! value TransactionLogValue v0 (producer id, epoch, timeout, status,
//! the partitions by topic — null for Empty —, last update and start
//! times). An empty value is a tombstone. The latest record per key wins
//! on replay.

use super::state::{Status, Transaction};
use crate::log::fields::{get_i16, get_i32, get_i64, get_i8, get_str, put_str, Malformed};
use crate::log::{PartitionId, ProducerEpoch, ProducerId, TopicPartition};
use bytes::BufMut;
use std::collections::{BTreeMap, BTreeSet};

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.put_i16(KEY_VERSION);
    put_str(&mut out, transactional_id);
    out
}

pub fn decode_key(mut buf: &[u8]) -> Result<String, Malformed> {
    match get_i16(&mut buf)? {
        KEY_VERSION => get_str(&mut buf),
        _ => Err(Malformed("unknown transaction key version")),
    }
}

pub fn encode_value(t: &Transaction) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.put_i16(VALUE_VERSION);
    out.put_i64(t.producer_id.0);
    out.put_i16(t.epoch.0);
    out.put_i32(t.timeout_ms);
    out.put_i8(t.status.code());
    if t.status == Status::Empty {
        out.put_i32(-1);
    } else {
        let mut by_topic: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for tp in &t.partitions {
            by_topic
                .entry(&tp.topic)
                .or_default()
                .push(tp.partition.index());
        }
        out.put_i32(by_topic.len() as i32);
        for (topic, partitions) in by_topic {
            put_str(&mut out, topic);
            out.put_i32(partitions.len() as i32);
            for p in partitions {
                out.put_i32(p as i32);
            }
        }
    }
    out.put_i64(t.last_update_ms);
    out.put_i64(t.start_ms);
    out
}

pub fn decode_value(mut buf: &[u8]) -> Result<Transaction, Malformed> {
    if get_i16(&mut buf)? != VALUE_VERSION {
        return Err(Malformed("unknown transaction value version"));
    }
    let producer_id = ProducerId(get_i64(&mut buf)?);
    let epoch = ProducerEpoch(get_i16(&mut buf)?);
    let timeout_ms = get_i32(&mut buf)?;
    let status = Status::from_code(get_i8(&mut buf)?).ok_or(Malformed("unknown status"))?;
    let mut partitions = BTreeSet::new();
    let topics = get_i32(&mut buf)?;
    for _ in 0..topics.max(0) {
        let topic = get_str(&mut buf)?;
        let count = get_i32(&mut buf)?;
        for _ in 0..count.max(0) {
            let index = u32::try_from(get_i32(&mut buf)?)
                .ok()
                .and_then(PartitionId::new)
                .ok_or(Malformed("negative partition"))?;
            partitions.insert(TopicPartition::new(&topic, index));
        }
    }
    let last_update_ms = get_i64(&mut buf)?;
    let start_ms = get_i64(&mut buf)?;
    Ok(Transaction {
        producer_id,
        epoch,
        last_epoch: ProducerEpoch::NONE,
        last_producer_id: ProducerId::NONE,
        timeout_ms,
        status,
        partitions,
        start_ms,
        last_update_ms,
        pending: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_in_kafkas_layout() {
        let mut t = Transaction::new(ProducerId(42), 60_000, 1_000);
        t.epoch = ProducerEpoch(3);
        t.status = Status::Ongoing;
        t.start_ms = 900;
        t.partitions
            .insert(TopicPartition::new("a", PartitionId::new(1).unwrap()));
        t.partitions
            .insert(TopicPartition::new("a", PartitionId::new(0).unwrap()));
        t.partitions
            .insert(TopicPartition::new("b", PartitionId::new(2).unwrap()));
        let value = encode_value(&t);
        // version, producer id, epoch, timeout, status as Kafka lays them.
        assert_eq!(&value[..2], &[0, 0]);
        assert_eq!(&value[2..10], &42i64.to_be_bytes());
        assert_eq!(&value[10..12], &3i16.to_be_bytes());
        assert_eq!(&value[12..16], &60_000i32.to_be_bytes());
        assert_eq!(value[16], 1);
        assert_eq!(&value[17..21], &2i32.to_be_bytes()); // two topics
        assert_eq!(decode_value(&value).unwrap(), t);
        let key = encode_key("my-txn");
        assert_eq!(key, [&[0u8, 0, 0, 6][..], b"my-txn"].concat());
        assert_eq!(decode_key(&key).unwrap(), "my-txn");
        // Empty keeps no partitions: null.
        let empty = Transaction::new(ProducerId(1), 1000, 5);
        let value = encode_value(&empty);
        assert_eq!(&value[17..21], &(-1i32).to_be_bytes());
        assert_eq!(decode_value(&value).unwrap(), empty);
        for cut in 0..value.len() {
            assert!(decode_value(&value[..cut]).is_err());
        }
    }
}
