//! `--compression`: the bench producer compresses each batch's records the
//! way Kafka clients do (KIP-110 codecs, via the `kafka-protocol` crate's
//! codecs), so a broker is measured with the bytes real producers send.

use crate::log::batch::build;
use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The codec's number in a batch's attributes.
    fn attribute(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// A RecordBatch of `records`, compressed with this codec.
    pub fn batch(
        self,
        base_timestamp: i64,
        records: &[build::Record<'_>],
    ) -> anyhow::Result<Bytes> {
        if self == Compression::None {
            return Ok(build::batch(base_timestamp, records));
        }
        let body = build::records_body(records);
        let fill = |buf: &mut BytesMut| {
            buf.put_slice(&body);
            Ok(())
        };
        let mut compressed = BytesMut::with_capacity(body.len() / 2 + 64);
        match self {
            Compression::None => unreachable!("handled above"),
            Compression::Gzip => Gzip::compress(&mut compressed, fill),
            Compression::Snappy => Snappy::compress(&mut compressed, fill),
            Compression::Lz4 => Lz4::compress(&mut compressed, fill),
            Compression::Zstd => Zstd::compress(&mut compressed, fill),
        }
        .with_context(|| format!("{self:?} compression"))?;
        let max_delta = records.iter().map(|r| r.timestamp_delta).max().unwrap_or(0);
        Ok(build::wrap(
            base_timestamp,
            max_delta.max(0),
            records.len(),
            self.attribute(),
            &compressed,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::RecordBatch;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn compressed_batches_are_valid_and_decode_to_the_records() {
        let value = vec![b'v'; 1000];
        let records: Vec<build::Record<'_>> = (0..10)
            .map(|i| build::Record {
                key: Some(b"key"),
                value: &value,
                timestamp_delta: i,
            })
            .collect();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut bytes = codec.batch(1_000, &records).expect("compressed");
            let batch = RecordBatch::split_first(&mut bytes.clone()).expect("one batch");
            batch.validate().expect("valid CRC and counts");
            assert_eq!(batch.compression() as i16, codec.attribute(), "{codec:?}");
            assert_eq!(batch.record_count(), 10);
            assert_eq!(batch.max_timestamp(), 1_009);
            if codec != Compression::None {
                assert!(batch.len() < 10 * 1000 / 2, "{codec:?} did not compress");
            }
            let decoded = RecordBatchDecoder::decode(&mut bytes).expect("a client decodes it");
            assert_eq!(decoded.records.len(), 10, "{codec:?}");
            assert_eq!(decoded.records[3].value.as_deref(), Some(&value[..]));
        }
    }
}
