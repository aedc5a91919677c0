//! End-to-end load with a real Kafka client (librdkafka) against the real
//! `strom` binary on this machine: produce N x 1 KiB messages to a
//! 6-partition topic with acks=1 and with acks=all (throughput, broker CPU
//! seconds from /proc/PID/stat, produce-acknowledgement latency), then
//! consume them back cold (after a restart: the sendfile path) and hot
//! (right after producing: the tail cache).
//!
//!   cargo bench --bench kafka_load                  # 1,000,000 messages
//!   cargo bench --bench kafka_load -- --messages 200000 --shards 1
//!
//! Data goes to `target/bench-kafka/` and is removed afterwards.

use hdrhistogram::Histogram;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 6;
const MESSAGE_BYTES: usize = 1024;

struct Latency(Mutex<(Histogram<u64>, u64)>);

impl ClientContext for Latency {}

impl ProducerContext for Latency {
    type DeliveryOpaque = Box<Instant>;
    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Instant>) {
        let mut g = self.0.lock().expect("lock");
        if result.is_err() {
            g.1 += 1;
        }
        g.0.saturating_record(sent.elapsed().as_micros() as u64);
    }
}

struct Broker {
    child: Child,
    addr: String,
}

impl Broker {
    fn start(data: &Path, port: u16, shards: &str) -> Broker {
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_strom"))
            .args([
                "serve",
                "--shards",
                shards,
                "--listen",
                &addr,
                "--metrics-listen",
                "none",
                "--data-dir",
            ])
            .arg(data)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn strom");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "strom did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker { child, addr }
    }

    /// utime + stime of the broker process, in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("stat");
        let after_comm = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        // Fields 14 and 15 of stat(5), counted after the command name.
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        ticks as f64 / hz
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn produce(addr: &str, topic: &str, acks: &str, n: usize) -> (f64, Histogram<u64>) {
    let producer: BaseProducer<Latency> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("acks", acks)
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create_with_context(Latency(Mutex::new((
            Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram"),
            0,
        ))))
        .expect("producer");
    let payload = vec![b'x'; MESSAGE_BYTES];
    let start = Instant::now();
    for i in 0..n {
        let key = (i as u64).to_be_bytes();
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(Instant::now()))
            .payload(&payload[..])
            .key(&key[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let secs = start.elapsed().as_secs_f64();
    let (hist, failed) = std::mem::replace(
        &mut *producer.context().0.lock().expect("lock"),
        (Histogram::new(3).expect("histogram"), 0),
    );
    assert_eq!(failed, 0, "deliveries failed");
    assert_eq!(hist.len(), n as u64);
    ((n * MESSAGE_BYTES) as f64 / secs / 1e6, hist)
}

fn consume(addr: &str, topic: &str, n: usize) -> f64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "4194304")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let start = Instant::now();
    let mut got = 0;
    while got < n {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "consume stalled at {got}"
        );
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            got += 1;
        }
    }
    (n * MESSAGE_BYTES) as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn create_topic(addr: &str, topic: &str) {
    // Auto-creation with num.partitions would give 1; create explicitly.
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new()
            .set("bootstrap.servers", addr)
            .create()
            .expect("admin");
    let t = rdkafka::admin::NewTopic::new(
        topic,
        PARTITIONS,
        rdkafka::admin::TopicReplication::Fixed(1),
    );
    let res = futures_lite::future::block_on(
        admin.create_topics(&[t], &rdkafka::admin::AdminOptions::new()),
    )
    .expect("create");
    for r in res {
        r.expect("topic");
    }
}

fn pct(h: &Histogram<u64>) -> String {
    format!(
        "p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        h.value_at_quantile(0.999) as f64 / 1e3,
        h.max() as f64 / 1e3
    )
}

fn main() {
    let mut n = 1_000_000usize;
    let mut shards = std::thread::available_parallelism()
        .map_or(1, |c| c.get())
        .to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--messages" => {
                n = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--messages N")
            }
            "--shards" => shards = args.next().expect("--shards N"),
            _ => {} // cargo bench passes --bench
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-kafka");
    let _ = std::fs::remove_dir_all(&root);
    let data = root.join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    println!("strom kafka_load: {n} x {MESSAGE_BYTES} B messages, {PARTITIONS} partitions, {shards} shard(s), librdkafka on the same machine");
    let broker = Broker::start(&data, port, &shards);
    for (topic, acks) in [("load-acks1", "1"), ("load-acksall", "all")] {
        create_topic(&broker.addr, topic);
        let cpu0 = broker.cpu_seconds();
        let (mb_s, hist) = produce(&broker.addr, topic, acks, n);
        let cpu = broker.cpu_seconds() - cpu0;
        println!("produce acks={acks:<3}  {mb_s:>7.1} MB/s  broker cpu {cpu:>5.2} s ({:.0} MB per cpu-s)  ack latency {}", (n * MESSAGE_BYTES) as f64 / 1e6 / cpu.max(0.001), pct(&hist));
    }
    // Hot: a consumer tailing a fresh topic while a producer writes to it
    // (acks=1), so every fetch is served from the tail cache.
    create_topic(&broker.addr, "load-hot");
    let cpu0 = broker.cpu_seconds();
    let addr = broker.addr.clone();
    let tail = std::thread::spawn(move || consume(&addr, "load-hot", n));
    std::thread::sleep(Duration::from_millis(500));
    produce(&broker.addr, "load-hot", "1", n);
    let hot = tail.join().expect("consumer thread");
    println!(
        "consume hot (tailing a producer)  {hot:>7.1} MB/s  broker cpu {:>5.2} s (producer included)",
        broker.cpu_seconds() - cpu0
    );
    broker.stop();
    // Cold: a restarted broker has an empty tail cache.
    let broker = Broker::start(&data, port, &shards);
    let cpu0 = broker.cpu_seconds();
    let cold = consume(&broker.addr, "load-acks1", n);
    let cpu = broker.cpu_seconds() - cpu0;
    println!("consume cold (sendfile)  {cold:>7.1} MB/s  broker cpu {cpu:>5.2} s");
    broker.stop();
    let _ = std::fs::remove_dir_all(&root);
}
