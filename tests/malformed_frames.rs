//! Bad input on the wire: each malformed input closes only its own
//! connection (or gets UNSUPPORTED_VERSION where Kafka answers so), the
//! broker keeps serving, other connections keep working and nothing on disk
//! changes.

mod common;

use common::broker::Broker;
use common::test_dir;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A request frame: size, api key, version, correlation id, null client id,
/// then `body`.
fn frame(key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&key.to_be_bytes());
    f.extend_from_slice(&version.to_be_bytes());
    f.extend_from_slice(&7i32.to_be_bytes());
    f.extend_from_slice(&(-1i16).to_be_bytes());
    f.extend_from_slice(body);
    let mut out = (f.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&f);
    out
}

/// True once the broker closed the connection (EOF or reset).
fn closed_by_broker(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(0) | Err(_))
}

fn disk_state(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for e in walk(dir) {
        let meta = std::fs::metadata(&e).unwrap();
        out.push((e.display().to_string(), meta.len()));
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A Produce v7 frame for partition 0 of "keep" with the given records.
fn produce_frame(records: Option<bytes::Bytes>) -> Vec<u8> {
    let mut data = PartitionProduceData::default();
    data.index = 0;
    data.records = records;
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str("keep"));
    topic.partition_data = vec![data];
    let mut req = ProduceRequest::default();
    req.acks = 1;
    req.timeout_ms = 1000;
    req.topic_data = vec![topic];
    let mut body = bytes::BytesMut::new();
    req.encode(&mut body, 7).unwrap();
    frame(0, 7, &body)
}

fn kcat_metadata_ok(addr: &str) -> bool {
    let out = Command::new("kcat")
        .args(["-b", addr, "-L", "-m", "10"])
        .output()
        .expect("kcat is installed (.ci/run installs it)");
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("broker 0")
}

#[test]
fn malformed_input_closes_one_connection_and_nothing_else() {
    let dir = test_dir();
    let data = dir.path().join("data");
    let mut broker = Broker::start(&data);
    let produce = Command::new("kcat")
        .args(["-b", &broker.addr, "-t", "keep", "-P"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"one\ntwo\n")?;
            c.wait()
        })
        .expect("kcat produce");
    assert!(produce.success());
    let before = disk_state(&data);
    // A healthy connection opened before the abuse, used after it.
    let mut healthy = connect(&broker.addr);

    // 1. A frame over socket.request.max.bytes.
    let mut s = connect(&broker.addr);
    s.write_all(&i32::MAX.to_be_bytes()).unwrap();
    assert!(closed_by_broker(&mut s), "oversized frame");
    // 2. A negative size.
    let mut s = connect(&broker.addr);
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(closed_by_broker(&mut s), "negative size");
    // 3. Garbage bytes.
    let mut s = connect(&broker.addr);
    s.write_all(&[0, 0, 0, 12, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap();
    assert!(closed_by_broker(&mut s), "garbage");
    // 4. A truncated frame: the peer goes away mid-frame.
    let mut s = connect(&broker.addr);
    s.write_all(&[0, 0, 0, 100, 0, 18, 0, 3]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed_by_broker(&mut s), "truncated");
    // 5. An unknown API key.
    let mut s = connect(&broker.addr);
    s.write_all(&frame(999, 0, &[])).unwrap();
    assert!(closed_by_broker(&mut s), "unknown api");
    // 6. A known API at a version strom does not support.
    let mut s = connect(&broker.addr);
    s.write_all(&frame(0, 99, &[])).unwrap();
    assert!(closed_by_broker(&mut s), "unsupported produce version");
    // 7. An undecodable Produce v3 body.
    let mut s = connect(&broker.addr);
    s.write_all(&frame(0, 3, &[0xff, 0xff, 0, 0, 0, 1, 0, 0]))
        .unwrap();
    assert!(closed_by_broker(&mut s), "undecodable");
    // 8. ApiVersions at an unknown version: a v0 UNSUPPORTED_VERSION answer.
    let mut s = connect(&broker.addr);
    s.write_all(&frame(18, 99, &[])).unwrap();
    let mut head = [0u8; 10];
    s.read_exact(&mut head).unwrap();
    assert_eq!(
        i32::from_be_bytes(head[4..8].try_into().unwrap()),
        7,
        "correlation id"
    );
    assert_eq!(
        i16::from_be_bytes([head[8], head[9]]),
        35,
        "UNSUPPORTED_VERSION"
    );

    // 9. Produce requests with a null and an empty record set: answered
    // with INVALID_RECORD per partition, on the same connection.
    let mut s = connect(&broker.addr);
    for records in [None, Some(bytes::Bytes::new())] {
        s.write_all(&produce_frame(records)).unwrap();
        let mut size = [0u8; 4];
        s.read_exact(&mut size).unwrap();
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        s.read_exact(&mut body).unwrap();
        let mut body = bytes::Bytes::from(body);
        ResponseHeader::decode(&mut body, 0).unwrap();
        let r = ProduceResponse::decode(&mut body, 7).unwrap();
        assert_eq!(r.responses[0].partition_responses[0].error_code, 87);
    }

    // The broker is alive, the old connection still answers, clients work,
    // and nothing on disk changed.
    assert!(broker.is_running());
    healthy.write_all(&frame(18, 0, &[])).unwrap();
    let mut head = [0u8; 10];
    healthy.read_exact(&mut head).unwrap();
    assert_eq!(i16::from_be_bytes([head[8], head[9]]), 0);
    assert!(kcat_metadata_ok(&broker.addr));
    assert_eq!(disk_state(&data), before);
    let log = broker.log_text();
    assert!(log.contains("closing connection"), "{log}");
    broker.stop();
}
