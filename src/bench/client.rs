//! `KafkaClient`: a minimal Kafka protocol client on one glommio TCP
//! connection, for the bench tool: encode a request with the
//! `kafka-protocol` crate, send it, and read responses in order (the broker
//! answers each connection in request order, so pipelined requests are
//! matched first-in first-out). `split` gives a sending and a receiving
//! half, so a producer can keep sending while acknowledgements arrive.

use crate::net::frame::read_frame;
use anyhow::{bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use futures_lite::io::{split, ReadHalf, WriteHalf};
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Responses larger than this are refused (a bench fetch asks for less).
const RESPONSE_BYTES_MAX: usize = 256 << 20;

pub struct KafkaClient {
    requests: RequestWriter,
    responses: ResponseReader,
}

/// The sending half of a connection.
pub struct RequestWriter {
    stream: WriteHalf<TcpStream>,
    next_correlation: i32,
}

/// The receiving half of a connection.
pub struct ResponseReader {
    stream: ReadHalf<TcpStream>,
}

impl KafkaClient {
    pub async fn connect(addr: &str) -> anyhow::Result<KafkaClient> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(std::io::Error::from)
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true).map_err(std::io::Error::from)?;
        let (read, write) = split(stream);
        Ok(KafkaClient {
            requests: RequestWriter {
                stream: write,
                next_correlation: 0,
            },
            responses: ResponseReader { stream: read },
        })
    }

    pub fn split(self) -> (RequestWriter, ResponseReader) {
        (self.requests, self.responses)
    }

    /// Sends a request and waits for its response.
    pub async fn call<Q: Encodable, R: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Q,
    ) -> anyhow::Result<R> {
        let correlation = self.requests.send(api, version, body).await?;
        self.responses.receive(api, version, correlation).await
    }
}

impl RequestWriter {
    /// Sends one request; returns its correlation id.
    pub async fn send<R: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &R,
    ) -> anyhow::Result<i32> {
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let mut header = RequestHeader::default();
        header.request_api_key = api as i16;
        header.request_api_version = version;
        header.correlation_id = correlation;
        header.client_id = Some(StrBytes::from_static_str("strom-bench"));
        let mut buf = BytesMut::with_capacity(256);
        buf.put_i32(0);
        header.encode(&mut buf, api.request_header_version(version))?;
        body.encode(&mut buf, version)?;
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).await?;
        Ok(correlation)
    }
}

impl ResponseReader {
    /// Reads the next response, which must answer `correlation`.
    pub async fn receive<R: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        correlation: i32,
    ) -> anyhow::Result<R> {
        let Some(mut frame): Option<Bytes> =
            read_frame(&mut self.stream, RESPONSE_BYTES_MAX).await?
        else {
            bail!("broker closed the connection");
        };
        let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))?;
        if header.correlation_id != correlation {
            bail!(
                "response {} does not answer request {correlation}",
                header.correlation_id
            );
        }
        R::decode(&mut frame, version)
    }
}
