//! A view of one Kafka RecordBatch (magic v2) over `bytes::Bytes`.
//!
//! Owns: parsing and validating the 61-byte batch header, the CRC32C check,
//! rewriting the two fields that are not under the CRC (baseOffset and
//! partitionLeaderEpoch), and splitting a buffer of concatenated batches.
//!
//! Invariants: a `RecordBatch` value always covers exactly one whole batch
//! (`len() == 12 + batchLength`) whose length fields have been bounds-checked;
//! header accessors therefore never read out of bounds. The CRC is checked by
//! `validate`, not on construction, so recovery can tell a torn tail (too
//! short) from a corrupt batch (bad CRC) and a producer's batch can be
//! rejected with the right Kafka error.

use super::offset::{LeaderEpoch, Offset, ProducerEpoch, ProducerId};
use bytes::{Bytes, BytesMut};

/// Bytes before the `batchLength` field's value starts counting.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the RecordBatch v2 header, records excluded.
pub const HEADER_LEN: usize = 61;

const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const PARTITION_LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORD_COUNT: usize = 57;

const _: () = assert!(RECORD_COUNT + 4 == HEADER_LEN);
const _: () = assert!(PRODUCER_ID + 8 == PRODUCER_EPOCH && PRODUCER_EPOCH + 2 == BASE_SEQUENCE);
const _: () = assert!(CRC + 4 == ATTRIBUTES);

/// The compression codec bits of `attributes`.
const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_LOG_APPEND: i16 = 0x08;
/// The attribute bits of a transaction's batches, and of its markers.
pub const ATTRIBUTE_TRANSACTIONAL: i16 = 0x10;
pub const ATTRIBUTE_CONTROL: i16 = 0x20;

/// Why a batch was refused. Each maps to one Kafka error code at the
/// protocol edge (see `protocol::error_code`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than a header, or than the batch claims: a torn write on
    /// disk, a malformed record set on the wire. Kafka: CORRUPT_MESSAGE.
    #[error("truncated batch: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    /// batchLength below the header size or negative. Kafka: CORRUPT_MESSAGE.
    #[error("invalid batch length {0}")]
    InvalidLength(i32),
    /// Only RecordBatch v2 is accepted. Kafka: CORRUPT_MESSAGE.
    #[error("unsupported magic {0}, only magic 2 is accepted")]
    BadMagic(i8),
    /// Kafka: CORRUPT_MESSAGE.
    #[error("crc mismatch: header says {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    /// Inconsistent header fields. Kafka: INVALID_RECORD.
    #[error("invalid record batch: {0}")]
    InvalidRecord(&'static str),
    /// One batch above `max.message.bytes`. Kafka: MESSAGE_TOO_LARGE.
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: usize },
    /// A batch larger than a whole segment. Kafka: RECORD_LIST_TOO_LARGE.
    #[error("batch of {size} bytes exceeds segment.bytes {max}")]
    RecordListTooLarge { size: usize, max: usize },
}

/// One whole RecordBatch v2, sharing the caller's buffer.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
}

impl std::fmt::Debug for RecordBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordBatch")
            .field("base_offset", &self.base_offset())
            .field("last_offset_delta", &self.last_offset_delta())
            .field("len", &self.len())
            .finish()
    }
}

/// Reads the total size (header included) of the batch starting at `buf[0]`,
/// checking only the length field. Used to walk batches in files and buffers.
pub fn peek_batch_size(buf: &[u8]) -> Result<usize, BatchError> {
    if buf.len() < LOG_OVERHEAD {
        return Err(BatchError::Truncated {
            needed: LOG_OVERHEAD,
            available: buf.len(),
        });
    }
    let length = read_i32(buf, BATCH_LENGTH);
    if length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(BatchError::InvalidLength(length));
    }
    Ok(LOG_OVERHEAD + length as usize)
}

impl RecordBatch {
    /// Takes the first whole batch off the front of `buf`. Checks the length
    /// fields only; call [`RecordBatch::validate`] for magic and CRC.
    pub fn split_first(buf: &mut Bytes) -> Result<RecordBatch, BatchError> {
        let size = peek_batch_size(buf)?;
        if buf.len() < size {
            return Err(BatchError::Truncated {
                needed: size,
                available: buf.len(),
            });
        }
        Ok(RecordBatch {
            bytes: buf.split_to(size),
        })
    }

    /// Splits a buffer of concatenated batches (a produce request's record
    /// set) into whole batches, checking lengths only: the log validates
    /// each batch (CRC included) once, when it appends it. A trailing
    /// partial batch is an error: a producer never sends one.
    pub fn split_all(mut buf: Bytes) -> Result<Vec<RecordBatch>, BatchError> {
        let mut batches = Vec::new();
        while !buf.is_empty() {
            batches.push(RecordBatch::split_first(&mut buf)?);
        }
        Ok(batches)
    }

    /// Checks what makes a batch safe to store and serve: magic 2 and the
    /// CRC32C over attributes..end.
    pub fn validate(&self) -> Result<(), BatchError> {
        let magic = self.magic();
        if magic != 2 {
            return Err(BatchError::BadMagic(magic));
        }
        let stored = self.crc();
        let computed = crc32c::crc32c(&self.bytes[ATTRIBUTES..]);
        if stored != computed {
            return Err(BatchError::CrcMismatch { stored, computed });
        }
        Ok(())
    }

    /// The stricter checks Kafka applies to a batch a producer sends (on top
    /// of [`RecordBatch::validate`]): a positive record count that matches
    /// the offset span, and no control batch from a client.
    pub fn validate_for_append(&self, max_message_bytes: usize) -> Result<(), BatchError> {
        self.validate()?;
        if self.len() > max_message_bytes {
            return Err(BatchError::MessageTooLarge {
                size: self.len(),
                max: max_message_bytes,
            });
        }
        let count = self.record_count();
        if count <= 0 {
            return Err(BatchError::InvalidRecord("record count must be positive"));
        }
        if self.last_offset_delta() < 0
            || i64::from(self.last_offset_delta()) + 1 != i64::from(count)
        {
            return Err(BatchError::InvalidRecord(
                "record count does not match lastOffsetDelta",
            ));
        }
        if self.is_control() {
            return Err(BatchError::InvalidRecord(
                "clients may not write control batches",
            ));
        }
        if self.is_transactional() && self.producer_id().0 < 0 {
            return Err(BatchError::InvalidRecord(
                "a transactional batch has a producer id",
            ));
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    pub fn base_offset(&self) -> i64 {
        read_i64(&self.bytes, BASE_OFFSET)
    }

    /// Offset of the batch's last record: `baseOffset + lastOffsetDelta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + i64::from(self.last_offset_delta())
    }

    /// The first record's offset in a batch the log stored (the log gave
    /// it). A negative header — possible only in a batch a producer sent,
    /// before the log assigns its offsets — reads as 0.
    pub fn base(&self) -> Offset {
        Offset::from_i64(self.base_offset()).unwrap_or(Offset::ZERO)
    }

    /// The offset after the batch's last record, in a batch the log stored
    /// (a negative delta, which `validate_for_append` refuses, counts as 0).
    pub fn next(&self) -> Offset {
        let delta = u64::try_from(self.last_offset_delta()).unwrap_or(0);
        self.base().plus(delta).next()
    }

    /// How many offsets the batch spans (at least one).
    pub fn offset_count(&self) -> u64 {
        self.next().since(self.base())
    }

    pub fn partition_leader_epoch(&self) -> LeaderEpoch {
        LeaderEpoch(read_i32(&self.bytes, PARTITION_LEADER_EPOCH))
    }

    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC] as i8
    }

    pub fn crc(&self) -> u32 {
        u32::from_be_bytes(self.bytes[CRC..CRC + 4].try_into().expect("4 bytes"))
    }

    pub fn attributes(&self) -> i16 {
        i16::from_be_bytes([self.bytes[ATTRIBUTES], self.bytes[ATTRIBUTES + 1]])
    }

    /// 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes() & COMPRESSION_MASK) as u8
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & TIMESTAMP_TYPE_LOG_APPEND != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes() & ATTRIBUTE_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes() & ATTRIBUTE_CONTROL != 0
    }

    pub fn last_offset_delta(&self) -> i32 {
        read_i32(&self.bytes, LAST_OFFSET_DELTA)
    }

    pub fn base_timestamp(&self) -> i64 {
        read_i64(&self.bytes, BASE_TIMESTAMP)
    }

    pub fn max_timestamp(&self) -> i64 {
        read_i64(&self.bytes, MAX_TIMESTAMP)
    }

    pub fn producer_id(&self) -> ProducerId {
        ProducerId(read_i64(&self.bytes, PRODUCER_ID))
    }

    pub fn producer_epoch(&self) -> ProducerEpoch {
        ProducerEpoch(i16::from_be_bytes([
            self.bytes[PRODUCER_EPOCH],
            self.bytes[PRODUCER_EPOCH + 1],
        ]))
    }

    /// The sequence of the batch's first record (-1 without idempotence).
    pub fn base_sequence(&self) -> i32 {
        read_i32(&self.bytes, BASE_SEQUENCE)
    }

    /// The sequence of the batch's last record: sequences wrap from
    /// i32::MAX to 0, as Kafka's `DefaultRecordBatch.incrementSequence`.
    pub fn last_sequence(&self) -> i32 {
        let base = self.base_sequence();
        let delta = self.last_offset_delta().max(0);
        if base > i32::MAX - delta {
            delta - (i32::MAX - base) - 1
        } else {
            base + delta
        }
    }

    pub fn record_count(&self) -> i32 {
        read_i32(&self.bytes, RECORD_COUNT)
    }

    /// Replaces baseOffset and partitionLeaderEpoch. Neither field is under
    /// the CRC, so the batch stays valid. The bytes are patched in place when
    /// this batch is their only owner (a request buffer split per batch);
    /// only a shared buffer is copied first.
    pub fn assign_offset_and_epoch(&mut self, base_offset: Offset, leader_epoch: LeaderEpoch) {
        let shared = std::mem::take(&mut self.bytes);
        let mut out = shared
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        out[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_i64().to_be_bytes());
        out[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4]
            .copy_from_slice(&leader_epoch.0.to_be_bytes());
        self.bytes = out.freeze();
    }

    /// The records of an uncompressed batch; none for a compressed one
    /// (the broker never decompresses).
    pub fn records(&self) -> RecordWalk<'_> {
        let buf = if self.compression() == 0 {
            &self.bytes[HEADER_LEN..]
        } else {
            &[][..]
        };
        RecordWalk { buf }
    }

    /// The offset and timestamp of the first record whose timestamp is at
    /// least `target`, or `None` if no record in the batch qualifies.
    /// Compressed batches are not decompressed here: the batch's first
    /// record (offset and timestamp from the header) stands for all of them
    /// when the batch's max timestamp qualifies, so a seek by time starts at
    /// most one batch early, never late.
    pub fn first_offset_at_or_after(&self, target: i64) -> Option<(Offset, i64)> {
        if self.max_timestamp() < target {
            return None;
        }
        if self.compression() != 0 || self.is_log_append_time() {
            return Some((self.base(), self.base_timestamp()));
        }
        let base_ts = self.base_timestamp();
        for record in self.records() {
            let ts = base_ts.saturating_add(record.timestamp_delta);
            if ts >= target {
                let delta = u64::try_from(record.offset_delta).unwrap_or(0);
                return Some((self.base().plus(delta), ts));
            }
        }
        Some((self.base(), self.max_timestamp()))
    }
}

/// One record of an uncompressed batch, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// Walks the records of an uncompressed batch. Stops quietly on a malformed
/// record: the batch's CRC already vouched for the bytes, and callers use
/// this to refine a time lookup or to read values back in tools.
pub struct RecordWalk<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for RecordWalk<'a> {
    type Item = RecordView<'a>;

    fn next(&mut self) -> Option<RecordView<'a>> {
        let (len, n) = read_varlong(self.buf)?;
        let len = usize::try_from(len).ok()?;
        let body = self.buf.get(n..n + len)?;
        self.buf = &self.buf[n + len..];
        // attributes i8, timestampDelta varlong, offsetDelta varint, key,
        // value (varint length, -1 for null), headers.
        let mut at = 1;
        let (timestamp_delta, m) = read_varlong(body.get(at..)?)?;
        at += m;
        let (offset_delta, m) = read_varlong(body.get(at..)?)?;
        at += m;
        let (key, m) = read_bytes(body.get(at..)?)?;
        at += m;
        let (value, _) = read_bytes(body.get(at..)?)?;
        Some(RecordView {
            timestamp_delta,
            offset_delta: i32::try_from(offset_delta).ok()?,
            key,
            value,
        })
    }
}

/// A varint-length-prefixed nullable byte string; returns it and the bytes
/// consumed.
fn read_bytes(buf: &[u8]) -> Option<(Option<&[u8]>, usize)> {
    let (len, n) = read_varlong(buf)?;
    if len < 0 {
        return Some((None, n));
    }
    let len = usize::try_from(len).ok()?;
    Some((Some(buf.get(n..n + len)?), n + len))
}

/// Zig-zag varint as Kafka encodes record fields. Returns the value and the
/// bytes consumed.
fn read_varlong(buf: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, byte) in buf.iter().enumerate().take(10) {
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let value = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
            return Some((value, i + 1));
        }
    }
    None
}

fn read_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn read_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

/// Builds valid RecordBatch v2 bytes. Used by tests, benchmarks and the bench
/// tool's producer; the broker itself never encodes batches.
pub mod build {
    use super::*;

    /// One record: (key, value, timestamp delta from the batch's base).
    pub struct Record<'a> {
        pub key: Option<&'a [u8]>,
        pub value: &'a [u8],
        pub timestamp_delta: i64,
    }

    /// Encodes an uncompressed batch with base offset 0.
    pub fn batch(base_timestamp: i64, records: &[Record<'_>]) -> Bytes {
        assert!(!records.is_empty(), "a batch holds at least one record");
        let body = records_body(records);
        let max_delta = records.iter().map(|r| r.timestamp_delta).max().unwrap_or(0);
        wrap(base_timestamp, max_delta.max(0), records.len(), 0, &body)
    }

    /// The records section of a batch, uncompressed.
    pub fn records_body(records: &[Record<'_>]) -> Vec<u8> {
        let mut body = Vec::new();
        for (i, record) in records.iter().enumerate() {
            let mut rec = vec![0u8]; // attributes
            put_varlong(&mut rec, record.timestamp_delta);
            put_varlong(&mut rec, i as i64);
            match record.key {
                Some(k) => {
                    put_varlong(&mut rec, k.len() as i64);
                    rec.extend_from_slice(k);
                }
                None => put_varlong(&mut rec, -1),
            }
            put_varlong(&mut rec, record.value.len() as i64);
            rec.extend_from_slice(record.value);
            put_varlong(&mut rec, 0); // headers
            put_varlong(&mut body, rec.len() as i64);
            body.extend_from_slice(&rec);
        }
        body
    }

    /// A batch of `count` records around a records section `body` (as
    /// `records_body` makes it, compressed or not — `attributes` says which
    /// codec), with base offset 0 and a valid CRC.
    pub fn wrap(
        base_timestamp: i64,
        max_timestamp_delta: i64,
        count: usize,
        attributes: i16,
        body: &[u8],
    ) -> Bytes {
        assert!(count > 0, "a batch holds at least one record");
        let max_ts = base_timestamp + max_timestamp_delta;
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&0i64.to_be_bytes());
        out.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + body.len()) as i32).to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        out.push(2); // magic
        out.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
        out.extend_from_slice(&attributes.to_be_bytes());
        out.extend_from_slice(&((count - 1) as i32).to_be_bytes());
        out.extend_from_slice(&base_timestamp.to_be_bytes());
        out.extend_from_slice(&max_ts.to_be_bytes());
        out.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
        out.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
        out.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
        out.extend_from_slice(&(count as i32).to_be_bytes());
        out.extend_from_slice(body);
        let crc = crc32c::crc32c(&out[ATTRIBUTES..]);
        out[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(out)
    }

    /// The same batch as an idempotent producer sends it: its producer
    /// id, epoch and first sequence set, the CRC recomputed (the fields
    /// are under it).
    pub fn with_producer(
        batch: &[u8],
        producer: ProducerId,
        epoch: ProducerEpoch,
        base_sequence: i32,
    ) -> Bytes {
        stamped(batch.to_vec(), producer, epoch, base_sequence)
    }

    /// Sets the producer fields of a batch and recomputes its CRC.
    fn stamped(
        mut out: Vec<u8>,
        producer: ProducerId,
        epoch: ProducerEpoch,
        base_sequence: i32,
    ) -> Bytes {
        out[PRODUCER_ID..PRODUCER_ID + 8].copy_from_slice(&producer.0.to_be_bytes());
        out[PRODUCER_EPOCH..PRODUCER_EPOCH + 2].copy_from_slice(&epoch.0.to_be_bytes());
        out[BASE_SEQUENCE..BASE_SEQUENCE + 4].copy_from_slice(&base_sequence.to_be_bytes());
        let crc = crc32c::crc32c(&out[ATTRIBUTES..]);
        out[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(out)
    }

    /// The same batch as a transactional producer sends it: as
    /// `with_producer`, with the transactional attribute bit.
    pub fn transactional(
        batch: &[u8],
        producer: ProducerId,
        epoch: ProducerEpoch,
        base_sequence: i32,
    ) -> Bytes {
        let mut out = batch.to_vec();
        let attributes = i16::from_be_bytes([out[ATTRIBUTES], out[ATTRIBUTES + 1]]);
        let attributes = attributes | super::ATTRIBUTE_TRANSACTIONAL;
        out[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        stamped(out, producer, epoch, base_sequence)
    }

    /// A batch of `count` records of `value_len` bytes each, all stamped
    /// `timestamp`, values filled with `fill`.
    pub fn simple(timestamp: i64, count: usize, value_len: usize, fill: u8) -> Bytes {
        let value = vec![fill; value_len];
        let records: Vec<Record<'_>> = (0..count)
            .map(|_| Record {
                key: None,
                value: &value,
                timestamp_delta: 0,
            })
            .collect();
        batch(timestamp, &records)
    }

    fn put_varlong(out: &mut Vec<u8>, value: i64) {
        let mut raw = ((value << 1) ^ (value >> 63)) as u64;
        while raw >= 0x80 {
            out.push((raw as u8) | 0x80);
            raw >>= 7;
        }
        out.push(raw as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::build::{batch, simple, Record};
    use super::*;

    fn valid() -> Bytes {
        simple(1_700_000_000_000, 3, 10, b'x')
    }

    #[test]
    fn built_batch_validates_and_reports_its_header() {
        let mut buf = valid();
        let b = RecordBatch::split_first(&mut buf).unwrap();
        assert!(buf.is_empty());
        b.validate_for_append(1 << 20).unwrap();
        assert_eq!(b.record_count(), 3);
        assert_eq!(b.last_offset_delta(), 2);
        assert_eq!(b.magic(), 2);
        assert_eq!(b.compression(), 0);
        assert_eq!(b.max_timestamp(), 1_700_000_000_000);
    }

    #[test]
    fn bad_crc_is_refused() {
        let mut raw = valid().to_vec();
        let last = raw.len() - 1;
        raw[last] ^= 0xff;
        let b = RecordBatch::split_first(&mut Bytes::from(raw)).unwrap();
        assert!(matches!(b.validate(), Err(BatchError::CrcMismatch { .. })));
    }

    #[test]
    fn bad_magic_is_refused() {
        let mut raw = valid().to_vec();
        raw[MAGIC] = 1;
        let b = RecordBatch::split_first(&mut Bytes::from(raw)).unwrap();
        assert_eq!(b.validate(), Err(BatchError::BadMagic(1)));
    }

    #[test]
    fn truncated_batches_are_refused_at_every_cut() {
        let raw = valid();
        for cut in 0..raw.len() {
            let mut part = raw.slice(..cut);
            let err = RecordBatch::split_first(&mut part).unwrap_err();
            assert!(
                matches!(err, BatchError::Truncated { .. }),
                "cut {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn lengths_that_overflow_or_undershoot_are_refused() {
        for bad in [i32::MAX, i32::MIN, -1, 0, 48] {
            let mut raw = valid().to_vec();
            raw[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&bad.to_be_bytes());
            let res = RecordBatch::split_first(&mut Bytes::from(raw));
            assert!(res.is_err(), "length {bad} accepted");
        }
    }

    #[test]
    fn inconsistent_record_count_is_an_invalid_record() {
        let mut raw = valid().to_vec();
        raw[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&7i32.to_be_bytes());
        let crc = crc32c::crc32c(&raw[ATTRIBUTES..]);
        raw[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        let b = RecordBatch::split_first(&mut Bytes::from(raw)).unwrap();
        b.validate().unwrap();
        assert!(matches!(
            b.validate_for_append(1 << 20),
            Err(BatchError::InvalidRecord(_))
        ));
    }

    #[test]
    fn oversized_batch_is_message_too_large() {
        let b = RecordBatch::split_first(&mut valid()).unwrap();
        assert!(matches!(
            b.validate_for_append(10),
            Err(BatchError::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn rewriting_offset_and_epoch_keeps_the_crc_valid() {
        let b = RecordBatch::split_first(&mut valid()).unwrap();
        let mut moved = b.clone();
        moved.assign_offset_and_epoch(Offset::new(12_345), LeaderEpoch(7));
        moved.validate().unwrap();
        assert_eq!(moved.base_offset(), 12_345);
        assert_eq!(moved.last_offset(), 12_347);
        assert_eq!(moved.partition_leader_epoch(), LeaderEpoch(7));
        assert_eq!(
            (moved.base(), moved.next()),
            (Offset::new(12_345), Offset::new(12_348))
        );
        assert_eq!(&moved.as_bytes()[21..], &b.as_bytes()[21..]);
    }

    #[test]
    fn split_all_separates_concatenated_batches_and_rejects_a_partial_tail() {
        let one = valid();
        let mut two = one.to_vec();
        two.extend_from_slice(&one);
        let batches = RecordBatch::split_all(Bytes::from(two.clone())).unwrap();
        assert_eq!(batches.len(), 2);
        two.extend_from_slice(&one[..20]);
        assert!(RecordBatch::split_all(Bytes::from(two)).is_err());
    }

    #[test]
    fn records_walk_yields_keys_values_and_deltas() {
        let recs = [
            Record {
                key: Some(b"k1"),
                value: b"v1",
                timestamp_delta: 0,
            },
            Record {
                key: None,
                value: b"",
                timestamp_delta: 7,
            },
        ];
        let b = RecordBatch::split_first(&mut batch(5, &recs)).unwrap();
        let got: Vec<RecordView<'_>> = b.records().collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].key, got[0].value, got[0].offset_delta),
            (Some(&b"k1"[..]), Some(&b"v1"[..]), 0)
        );
        assert_eq!(
            (got[1].key, got[1].value, got[1].timestamp_delta),
            (None, Some(&b""[..]), 7)
        );
    }

    #[test]
    fn time_lookup_finds_the_first_record_at_or_after_the_target() {
        let recs: Vec<Record<'_>> = [0i64, 10, 20]
            .iter()
            .map(|d| Record {
                key: Some(b"k"),
                value: b"v",
                timestamp_delta: *d,
            })
            .collect();
        let mut b = RecordBatch::split_first(&mut batch(1000, &recs)).unwrap();
        b.assign_offset_and_epoch(Offset::new(100), LeaderEpoch::FIRST);
        let at = |o| Some((Offset::new(o), 1000 + (o as i64 - 100) * 10));
        assert_eq!(b.first_offset_at_or_after(0), at(100));
        assert_eq!(b.first_offset_at_or_after(1005), at(101));
        assert_eq!(b.first_offset_at_or_after(1020), at(102));
        assert_eq!(b.first_offset_at_or_after(1021), None);
    }
}
