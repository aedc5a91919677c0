//! Micro-benchmarks of strom's hot paths, each timed over many iterations
//! and reported as the median of several runs:
//! batch validation (CRC32C), offset-index lookup, Produce request decode,
//! Fetch response encode, a cross-shard round trip over glommio's
//! channel mesh (parked and spinning executors), and the same through
//! strom's typed `Router` calls (in place on this shard, and to a peer).
//!
//!   cargo bench --bench hot_paths

use bytes::{Bytes, BytesMut};
use glommio::channels::channel_mesh::{Full, MeshBuilder};
use hdrhistogram::Histogram;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};
use strom::log::batch::build;
use strom::log::index::OffsetIndex;
use strom::log::{ReadChunk, RecordBatch};
use strom::protocol::fetch_response::{encode, PartitionResult, TopicResult};
use strom::shard::ownership::ShardId;
use strom::shard::router::{Call, Envelope, Router, Sharded};

const RUNS: usize = 5;

/// Median seconds per iteration of `f` over `RUNS` runs of `iters` each.
fn time_per_op(iters: u64, mut f: impl FnMut()) -> f64 {
    let mut runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() / iters as f64
        })
        .collect();
    runs.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    runs[RUNS / 2]
}

fn batch_of(bytes: usize) -> Bytes {
    let count = (bytes / 1024).max(1);
    build::simple(1_700_000_000_000, count, bytes / count - 20, b'v')
}

fn validation() {
    for size in [1usize << 10, 16 << 10, 1 << 20] {
        let raw = batch_of(size);
        let iters = (256 << 20) / raw.len() as u64;
        let secs = time_per_op(iters, || {
            let b = RecordBatch::split_first(&mut raw.clone()).expect("batch");
            b.validate_for_append(2 << 20).expect("valid");
            black_box(b);
        });
        println!(
            "validate batch {:>5} KiB: {:>8.0} ns/op  {:>6.2} GB/s",
            raw.len() >> 10,
            secs * 1e9,
            raw.len() as f64 / secs / 1e9
        );
    }
}

fn index_lookup() {
    let mut index = OffsetIndex::new();
    for i in 1..=131_072u32 {
        index.push(i * 4, i * 4096);
    }
    let mut probe = 0u32;
    let secs = time_per_op(2_000_000, || {
        probe = probe.wrapping_mul(2_654_435_761).wrapping_add(12_345) % (131_072 * 4);
        black_box(index.floor(probe));
    });
    println!(
        "offset index floor, 131072 entries: {:>6.1} ns/op",
        secs * 1e9
    );
}

fn produce_decode() {
    let mut data = PartitionProduceData::default();
    data.index = 3;
    data.records = Some(batch_of(16 << 10));
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str("orders"));
    topic.partition_data = vec![data];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 30_000;
    req.topic_data = vec![topic];
    for version in [7i16, 9] {
        let mut buf = BytesMut::new();
        req.encode(&mut buf, version).expect("encode");
        let frame = buf.freeze();
        let secs = time_per_op(500_000, || {
            let decoded = ProduceRequest::decode(&mut frame.clone(), version).expect("decode");
            black_box(decoded);
        });
        println!(
            "decode Produce v{version} (1 partition, 16 KiB): {:>6.0} ns/op",
            secs * 1e9
        );
    }
}

fn fetch_encode() {
    let chunks: Vec<Bytes> = (0..16).map(|_| batch_of(16 << 10)).collect();
    for version in [11i16, 12] {
        let secs = time_per_op(200_000, || {
            let partitions = (0..6)
                .map(|i| PartitionResult {
                    index: i,
                    error_code: 0,
                    high_watermark: 1_000_000,
                    last_stable_offset: 1_000_000,
                    log_start_offset: 0,
                    aborted: Vec::new(),
                    records: ReadChunk::Cached(chunks.clone()),
                })
                .collect();
            let topics = vec![TopicResult {
                name: Bytes::from_static(b"orders"),
                partitions,
            }];
            black_box(encode(version, 7, topics));
        });
        println!(
            "encode Fetch v{version} (6 partitions x 16 cached batches, 1.5 MiB, no copy): {:>6.0} ns/op",
            secs * 1e9
        );
    }
}

/// Round trips between two executors over the mesh; `spin` keeps the
/// executors spinning that long before parking.
fn cross_shard_hop(spin: Duration) -> Histogram<u64> {
    const TRIPS: u64 = 50_000;
    let mesh = MeshBuilder::<u64, Full>::full(2, 64);
    on_two_shards(spin, move |id| {
        let mesh = mesh.clone();
        async move {
            let (senders, mut receivers) = mesh.join().await.expect("mesh");
            let mut hist = round_trips();
            let (_, rx) = receivers.streams().into_iter().next().expect("peer");
            let peer = 1 - id;
            for i in 0..TRIPS {
                if id == 0 {
                    let t = Instant::now();
                    senders.send_to(peer, i).await.expect("send");
                    rx.recv().await.expect("reply");
                    hist.saturating_record(t.elapsed().as_nanos() as u64);
                } else {
                    let v = rx.recv().await.expect("request");
                    senders.send_to(peer, v).await.expect("reply");
                }
            }
            hist
        }
    })
}

fn round_trips() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).expect("histogram")
}

/// Runs `body(0)` and `body(1)` on two pinned executors that spin `spin`
/// before parking; returns shard 0's histogram.
fn on_two_shards<B, F>(spin: Duration, body: B) -> Histogram<u64>
where
    B: Fn(usize) -> F + Clone + Send + 'static,
    F: std::future::Future<Output = Histogram<u64>> + 'static,
{
    let handles: Vec<_> = (0..2)
        .map(|id| {
            let body = body.clone();
            glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(id))
                .spin_before_park(spin)
                .spawn(move || body(id))
                .expect("executor")
        })
        .collect();
    let mut hists: Vec<Histogram<u64>> = handles
        .into_iter()
        .map(|h| h.join().expect("join"))
        .collect();
    hists.swap_remove(0)
}

/// A sharded service with one call, to time the router itself.
struct Echo {
    router: Router<Echo>,
}

impl Sharded for Echo {
    fn router(&self) -> &Router<Echo> {
        &self.router
    }
}

struct Ping(u64);

impl Call<Echo> for Ping {
    type Reply = u64;

    async fn run(self, _: &Rc<Echo>) -> u64 {
        self.0 + 1
    }
}

/// A typed call run in place on this shard: what every call to a
/// partition or group this shard owns costs on top of its work.
fn local_call() {
    const CALLS: u64 = 2_000_000;
    let per_call = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(|| async move {
            let echo = Rc::new(Echo {
                router: Router::single(Rc::default()),
            });
            let mut runs: Vec<f64> = Vec::new();
            for _ in 0..RUNS {
                let t = Instant::now();
                for i in 0..CALLS {
                    let reply = echo.router.call(&echo, ShardId::FIRST, Ping(i)).await;
                    black_box(reply.expect("local calls always run"));
                }
                runs.push(t.elapsed().as_secs_f64() / CALLS as f64);
            }
            runs.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
            runs[RUNS / 2]
        })
        .expect("executor")
        .join()
        .expect("join");
    println!(
        "typed call, in place on this shard: {:>6.1} ns/op",
        per_call * 1e9
    );
}

/// Typed calls from shard 0 to shard 1 and back through `Router`.
fn routed_round_trip(spin: Duration) -> Histogram<u64> {
    const TRIPS: u64 = 50_000;
    let mesh = MeshBuilder::<Envelope<Echo>, Full>::full(2, 64);
    let hist = on_two_shards(spin, move |id| {
        let mesh = mesh.clone();
        async move {
            let (senders, receivers) = mesh.join().await.expect("mesh");
            let echo = Rc::new(Echo {
                router: Router::new(senders, Rc::default()),
            });
            Router::serve(&echo, receivers);
            let mut hist = round_trips();
            if id == 0 {
                for i in 0..TRIPS {
                    let t = Instant::now();
                    let reply = echo.router.call(&echo, ShardId::new(1), Ping(i)).await;
                    assert_eq!(reply.expect("peer answers"), i + 1);
                    hist.saturating_record(t.elapsed().as_nanos() as u64);
                }
                STOP.store(true, std::sync::atomic::Ordering::SeqCst);
            } else {
                while !STOP.load(std::sync::atomic::Ordering::SeqCst) {
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
            }
            hist
        }
    });
    STOP.store(false, std::sync::atomic::Ordering::SeqCst);
    hist
}

/// Ends the serving shard of `routed_round_trip`.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn main() {
    println!("strom hot paths, median of {RUNS} runs");
    validation();
    index_lookup();
    produce_decode();
    fetch_encode();
    for (name, spin) in [
        ("parked", Duration::ZERO),
        ("spin 10 ms", Duration::from_millis(10)),
    ] {
        let raw = cross_shard_hop(spin);
        let typed = routed_round_trip(spin);
        for (what, h) in [
            ("cross-shard round trip", raw),
            ("typed call to a peer", typed),
        ] {
            println!(
                "{what} ({name}): p50 {:>5.1} us  p99 {:>6.1} us  max {:>7.1} us",
                h.value_at_quantile(0.5) as f64 / 1e3,
                h.value_at_quantile(0.99) as f64 / 1e3,
                h.max() as f64 / 1e3
            );
        }
    }
    local_call();
}
