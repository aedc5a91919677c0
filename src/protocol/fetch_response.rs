//! The Fetch response, v4–v12, encoded by hand so record bytes are never
//! copied: the response is a list of parts — encoded fields as `Bytes`, then
//! each partition's records as the tail cache's own `Bytes` (hot) or a file
//! range for `sendfile` (cold) — which the connection writes in order.
//!
//! The field layout follows Kafka's FetchResponse schema; a test checks the
//! bytes against the `kafka-protocol` crate's encoder for every version.

use super::{Part, Response};
use crate::log::ReadChunk;
use bytes::{BufMut, Bytes, BytesMut};

/// The first flexible (tagged-field, compact-encoding) version.
const FLEXIBLE: i16 = 12;

pub struct PartitionResult {
    pub index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// A read_committed fetch's aborted transactions: (producer id, first
    /// offset).
    pub aborted: Vec<(i64, i64)>,
    pub records: ReadChunk,
}

pub struct TopicResult {
    pub name: Bytes,
    pub partitions: Vec<PartitionResult>,
}

/// Encodes a whole response frame (size prefix included).
pub fn encode(version: i16, correlation_id: i32, topics: Vec<TopicResult>) -> Response {
    assert!(
        (4..=FLEXIBLE).contains(&version),
        "fetch v{version} is not encoded here"
    );
    let flexible = version >= FLEXIBLE;
    let mut w = Writer {
        parts: Vec::new(),
        buf: BytesMut::with_capacity(256),
        flexible,
    };
    w.buf.put_i32(correlation_id);
    if flexible {
        w.tags();
    }
    w.buf.put_i32(0); // throttle_time_ms
    if version >= 7 {
        w.buf.put_i16(0); // error_code
        w.buf.put_i32(0); // session_id: sessionless
    }
    w.array_len(topics.len());
    for topic in topics {
        w.string(&topic.name);
        w.array_len(topic.partitions.len());
        for p in topic.partitions {
            w.buf.put_i32(p.index);
            w.buf.put_i16(p.error_code);
            w.buf.put_i64(p.high_watermark);
            w.buf.put_i64(p.last_stable_offset);
            if version >= 5 {
                w.buf.put_i64(p.log_start_offset);
            }
            w.array_len(p.aborted.len());
            for (producer, first) in p.aborted {
                w.buf.put_i64(producer);
                w.buf.put_i64(first);
                if flexible {
                    w.tags();
                }
            }
            if version >= 11 {
                w.buf.put_i32(-1); // preferred_read_replica
            }
            w.records(p.records);
            if flexible {
                w.tags();
            }
        }
        if flexible {
            w.tags();
        }
    }
    if flexible {
        w.tags();
    }
    w.finish()
}

struct Writer {
    parts: Vec<Part>,
    buf: BytesMut,
    flexible: bool,
}

impl Writer {
    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    fn tags(&mut self) {
        self.uvarint(0);
    }

    fn array_len(&mut self, n: usize) {
        if self.flexible {
            self.uvarint(n as u64 + 1);
        } else {
            self.buf.put_i32(n as i32);
        }
    }

    fn string(&mut self, s: &[u8]) {
        if self.flexible {
            self.uvarint(s.len() as u64 + 1);
        } else {
            self.buf.put_i16(s.len() as i16);
        }
        self.buf.put_slice(s);
    }

    fn records(&mut self, records: ReadChunk) {
        let len = records.len();
        if self.flexible {
            self.uvarint(len as u64 + 1);
        } else {
            self.buf.put_i32(len as i32);
        }
        match records {
            ReadChunk::Empty => {}
            ReadChunk::Cached(chunks) | ReadChunk::Read(chunks) => {
                self.cut();
                self.parts.extend(chunks.into_iter().map(Part::Bytes));
            }
            ReadChunk::File(slice) => {
                self.cut();
                self.parts.push(Part::File(slice));
            }
        }
    }

    /// Ends the current run of encoded fields as one part.
    fn cut(&mut self) {
        if !self.buf.is_empty() {
            self.parts.push(Part::Bytes(self.buf.split().freeze()));
        }
    }

    fn finish(mut self) -> Response {
        self.cut();
        let size: usize = self.parts.iter().map(Part::len).sum();
        let mut parts = Vec::with_capacity(self.parts.len() + 1);
        parts.push(Part::Bytes(Bytes::copy_from_slice(
            &(size as i32).to_be_bytes(),
        )));
        parts.extend(self.parts);
        Response(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{FetchResponse, ProducerId, ResponseHeader, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn ours(version: i16, records: &[Bytes]) -> Vec<u8> {
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| PartitionResult {
                index: i as i32,
                error_code: if i == 1 { 1 } else { 0 },
                high_watermark: 100 + i as i64,
                last_stable_offset: 100 + i as i64,
                log_start_offset: 7,
                aborted: if i == 2 {
                    vec![(5, 40), (6, 41)]
                } else {
                    vec![]
                },
                records: if r.is_empty() {
                    ReadChunk::Empty
                } else {
                    ReadChunk::Cached(vec![r.slice(..1), r.slice(1..)])
                },
            })
            .collect();
        let topics = vec![TopicResult {
            name: Bytes::from_static(b"orders"),
            partitions,
        }];
        let response = encode(version, 42, topics);
        let mut out = Vec::new();
        for part in response.0 {
            match part {
                Part::Bytes(b) => out.extend_from_slice(&b),
                Part::File(_) => unreachable!("no files in this test"),
            }
        }
        out
    }

    fn theirs(version: i16, records: &[Bytes]) -> Vec<u8> {
        let mut t = FetchableTopicResponse::default();
        t.topic = TopicName(StrBytes::from_static_str("orders"));
        for (i, r) in records.iter().enumerate() {
            let mut p = PartitionData::default();
            p.partition_index = i as i32;
            p.error_code = if i == 1 { 1 } else { 0 };
            p.high_watermark = 100 + i as i64;
            p.last_stable_offset = 100 + i as i64;
            if version >= 5 {
                p.log_start_offset = 7;
            }
            let mut aborted = Vec::new();
            if i == 2 {
                for (producer, first) in [(5, 40), (6, 41)] {
                    let mut a = AbortedTransaction::default();
                    a.producer_id = ProducerId(producer);
                    a.first_offset = first;
                    aborted.push(a);
                }
            }
            p.aborted_transactions = Some(aborted);
            p.records = Some(r.clone());
            t.partitions.push(p);
        }
        let mut resp = FetchResponse::default();
        resp.responses = vec![t];
        let mut buf = BytesMut::new();
        let mut header = ResponseHeader::default();
        header.correlation_id = 42;
        header
            .encode(&mut buf, if version >= FLEXIBLE { 1 } else { 0 })
            .unwrap();
        resp.encode(&mut buf, version).unwrap();
        let mut out = (buf.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&buf);
        out
    }

    #[test]
    fn hand_encoding_matches_kafka_protocol_for_every_version() {
        let records = [
            Bytes::from_static(b"first-partition-records"),
            Bytes::new(),
            Bytes::from(vec![9u8; 300]),
        ];
        for version in 4..=FLEXIBLE {
            assert_eq!(
                ours(version, &records),
                theirs(version, &records),
                "v{version}"
            );
        }
    }
}
