//! Control batches: the commit and abort markers a transaction
//! coordinator writes to every partition of a transaction when it ends.
//!
//! Kafka's format: a RecordBatch with the transactional and control
//! attribute bits, the producer's id and epoch, no sequence (-1), and one
//! record whose key is the ControlRecordType (version i16 = 0, type i16:
//! 0 abort, 1 commit) and whose value is the EndTransactionMarker (version
//! i16 = 0, coordinator epoch i32). Clients skip control batches when they
//! fetch; the partition reads them to end the producer's transaction.

use super::batch::{build, RecordBatch, ATTRIBUTE_CONTROL, ATTRIBUTE_TRANSACTIONAL};
use super::offset::{ProducerEpoch, ProducerId};
use bytes::{BufMut, Bytes};

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Abort,
    Commit,
}

impl Marker {
    const ABORT: i16 = 0;
    const COMMIT: i16 = 1;

    fn code(self) -> i16 {
        match self {
            Marker::Abort => Marker::ABORT,
            Marker::Commit => Marker::COMMIT,
        }
    }
}

/// The marker batch ending producer `producer`'s transaction, stamped
/// `timestamp_ms`.
pub fn marker_batch(
    producer: ProducerId,
    epoch: ProducerEpoch,
    marker: Marker,
    coordinator_epoch: i32,
    timestamp_ms: i64,
) -> Bytes {
    let mut key = Vec::with_capacity(4);
    key.put_i16(0);
    key.put_i16(marker.code());
    let mut value = Vec::with_capacity(6);
    value.put_i16(0);
    value.put_i32(coordinator_epoch);
    let record = build::Record {
        key: Some(&key),
        value: &value,
        timestamp_delta: 0,
    };
    let body = build::records_body(&[record]);
    let attributes = ATTRIBUTE_TRANSACTIONAL | ATTRIBUTE_CONTROL;
    let raw = build::wrap(timestamp_ms, 0, 1, attributes, &body);
    build::with_producer(&raw, producer, epoch, -1)
}

/// The end of one producer's transaction, as the coordinator has each
/// partition of the transaction write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnEnd {
    pub producer: ProducerId,
    pub epoch: ProducerEpoch,
    pub marker: Marker,
    pub coordinator_epoch: i32,
}

/// What a marker batch says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndMarker {
    pub marker: Marker,
    pub coordinator_epoch: i32,
}

/// The marker a control batch holds, if it is one this broker knows.
pub fn marker_of(batch: &RecordBatch) -> Option<EndMarker> {
    if !batch.is_control() {
        return None;
    }
    let record = batch.records().next()?;
    let (key, value) = (record.key?, record.value?);
    if key.len() < 4 || value.len() < 6 {
        return None;
    }
    let marker = match i16::from_be_bytes([key[2], key[3]]) {
        Marker::ABORT => Marker::Abort,
        Marker::COMMIT => Marker::Commit,
        _ => return None,
    };
    let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
    Some(EndMarker {
        marker,
        coordinator_epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_valid_control_batches_that_read_back() {
        for marker in [Marker::Abort, Marker::Commit] {
            let mut raw = marker_batch(ProducerId(12), ProducerEpoch(3), marker, 4, 1_000);
            let batch = RecordBatch::split_first(&mut raw).expect("a whole batch");
            batch.validate().expect("a valid CRC");
            assert!(batch.is_control() && batch.is_transactional());
            assert_eq!(batch.producer_id(), ProducerId(12));
            assert_eq!(batch.producer_epoch(), ProducerEpoch(3));
            assert_eq!(batch.base_sequence(), -1);
            assert_eq!(batch.record_count(), 1);
            let expected = EndMarker {
                marker,
                coordinator_epoch: 4,
            };
            assert_eq!(marker_of(&batch), Some(expected));
            // A client may not write one.
            assert!(batch.validate_for_append(1 << 20).is_err());
        }
        let plain = RecordBatch::split_first(&mut build::simple(1, 1, 1, b'x')).unwrap();
        assert_eq!(marker_of(&plain), None);
    }
}
