//! End-to-end load with the client users run (librdkafka) against a real
//! broker on this machine: the `strom` binary this bench starts, or any
//! Kafka-compatible broker already running (`--bootstrap`, with `--pid`
//! for its CPU seconds), so peers are measured by the same client in the
//! same way. Broker CPU seconds come from /proc/PID/stat.
//!
//! Workloads (each on a fresh topic of `--partitions`), as issue #12's
//! table names them:
//! - `acks1`, `acksall`: unbounded produce for `--duration` seconds;
//! - `rate`: acks=all at `--rate` msg/s, open loop: each message is due at
//!   `start + i / rate` and its latency runs from then to its delivery
//!   report, so time spent queued in the client counts;
//! - `e2e`: the same, with a consumer tailing the topic; latency from due
//!   time to consumption (the due time travels in the value);
//! - `consume`: `--duration` seconds of acks=1 data, then one consumer
//!   reads all of it from the start.
//!
//!   cargo bench --bench kafka_load                          # every workload, strom with 2 shards
//!   cargo bench --bench kafka_load -- --only rate --linger-ms 1
//!   cargo bench --bench kafka_load -- --bootstrap 127.0.0.1:9092 --pid 1234   # a peer
//!
//! `STROM=path` runs that strom binary instead of this build's. Client
//! settings unless given: 1 KiB values, `batch.size` 131072,
//! `linger.ms` 5, 4 partitions, 5 s, 20,000 msg/s. Data of the strom it
//! starts goes to `target/bench-kafka/` and is removed afterwards.

use hdrhistogram::Histogram;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The clock values carry their due time on (micros since this).
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn micros_since_epoch(t: Instant) -> u64 {
    t.saturating_duration_since(*EPOCH.get_or_init(Instant::now))
        .as_micros() as u64
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram")
}

#[derive(Clone)]
struct Settings {
    message_bytes: usize,
    batch_size: usize,
    linger_ms: f64,
    partitions: i32,
    duration: Duration,
    rate: u64,
}

/// Delivery reports: latency from each message's due time, and failures.
struct Deliveries(Mutex<(Histogram<u64>, u64)>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Instant>;
    fn delivery(&self, result: &DeliveryResult<'_>, due: Box<Instant>) {
        let mut g = self.0.lock().expect("lock");
        if result.is_err() {
            g.1 += 1;
        }
        g.0.saturating_record(due.elapsed().as_micros() as u64);
    }
}

/// The broker measured: one this bench started, or a running one.
enum Target {
    Strom { child: Child, data: PathBuf },
    Running { pid: Option<u32> },
}

struct Broker {
    target: Target,
    addr: String,
}

impl Broker {
    fn start_strom(data: &Path, shards: &str) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let addr = format!("127.0.0.1:{port}");
        // $STROM runs another build (an A/B of two binaries).
        let binary = std::env::var_os("STROM").unwrap_or(env!("CARGO_BIN_EXE_strom").into());
        let child = Command::new(binary)
            .args(["serve", "--shards", shards, "--listen", &addr])
            .args(["--metrics-listen", "none", "--data-dir"])
            .arg(data)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn strom");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "strom did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker {
            target: Target::Strom {
                child,
                data: data.to_path_buf(),
            },
            addr,
        }
    }

    fn pid(&self) -> Option<u32> {
        match &self.target {
            Target::Strom { child, .. } => Some(child.id()),
            Target::Running { pid } => *pid,
        }
    }

    /// utime + stime of the broker process, in seconds (0 unknown).
    fn cpu_seconds(&self) -> f64 {
        let Some(pid) = self.pid() else { return 0.0 };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return 0.0;
        };
        let after_comm = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        // Fields 14 and 15 of stat(5), counted after the command name.
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        ticks as f64 / hz
    }

    fn stop(self) {
        if let Target::Strom { mut child, data } = self.target {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(data);
        }
    }
}

fn producer(addr: &str, acks: &str, s: &Settings) -> BaseProducer<Deliveries> {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("acks", acks)
        .set("linger.ms", s.linger_ms.to_string())
        .set("batch.size", s.batch_size.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create_with_context(Deliveries(Mutex::new((histogram(), 0))))
        .expect("producer")
}

/// What one produce run did.
struct Produced {
    messages: u64,
    seconds: f64,
    latency: Histogram<u64>,
}

/// Produces for `s.duration`: unbounded, or open loop at `s.rate`.
fn produce(addr: &str, topic: &str, acks: &str, s: &Settings, rate: Option<u64>) -> Produced {
    let p = producer(addr, acks, s);
    let mut value = vec![b'x'; s.message_bytes.max(8)];
    let start = Instant::now();
    let mut sent = 0u64;
    loop {
        let now = Instant::now();
        if now.duration_since(start) >= s.duration {
            break;
        }
        let due = match rate {
            Some(r) => {
                let due = start + Duration::from_secs_f64(sent as f64 / r as f64);
                if due > now {
                    p.poll(Duration::ZERO);
                    std::thread::sleep((due - now).min(Duration::from_micros(200)));
                    continue;
                }
                due
            }
            None => now,
        };
        value[..8].copy_from_slice(&micros_since_epoch(due).to_be_bytes());
        let key = sent.to_be_bytes();
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(due))
            .payload(&value[..])
            .key(&key[..]);
        loop {
            match p.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    p.poll(Duration::from_millis(1));
                }
            }
        }
        sent += 1;
        if sent.is_multiple_of(256) {
            p.poll(Duration::ZERO);
        }
    }
    p.flush(Duration::from_secs(120)).expect("flush");
    let seconds = start.elapsed().as_secs_f64();
    let (latency, failed) =
        std::mem::replace(&mut *p.context().0.lock().expect("lock"), (histogram(), 0));
    assert_eq!(failed, 0, "deliveries failed");
    Produced {
        messages: sent,
        seconds,
        latency,
    }
}

fn consumer(addr: &str, topic: &str, partitions: i32, from: Offset) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "kafka-load")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "4194304")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, from).expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    c
}

/// Reads `n` messages from the start; MB/s.
fn consume_all(addr: &str, topic: &str, s: &Settings, n: u64) -> f64 {
    let c = consumer(addr, topic, s.partitions, Offset::Beginning);
    let start = Instant::now();
    let (mut got, mut bytes) = (0u64, 0usize);
    while got < n {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "consume stalled at {got} of {n}"
        );
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            got += 1;
            bytes += m.payload().map_or(0, <[u8]>::len);
        }
    }
    bytes as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn create_topic(addr: &str, topic: &str, partitions: i32) {
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new()
            .set("bootstrap.servers", addr)
            .create()
            .expect("admin");
    let t = rdkafka::admin::NewTopic::new(
        topic,
        partitions,
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

/// One workload against `broker`; prints its line.
fn run(workload: &str, broker: &Broker, s: &Settings) {
    // Unique across runs against one broker, and across bench processes.
    let topic = format!(
        "load-{workload}-{}-{}",
        std::process::id(),
        micros_since_epoch(Instant::now())
    );
    create_topic(&broker.addr, &topic, s.partitions);
    let cpu0 = broker.cpu_seconds();
    let line = match workload {
        "acks1" | "acksall" => {
            let acks = if workload == "acks1" { "1" } else { "all" };
            let p = produce(&broker.addr, &topic, acks, s, None);
            let mb = (p.messages as usize * s.message_bytes) as f64 / 1e6;
            let cpu = broker.cpu_seconds() - cpu0;
            format!(
                "{:>8.1} MB/s  cpu {cpu:>5.2} s  {:>6.0} MB/cpu-s  ack {}",
                mb / p.seconds,
                mb / cpu.max(0.001),
                pct(&p.latency)
            )
        }
        "rate" => {
            let p = produce(&broker.addr, &topic, "all", s, Some(s.rate));
            let cpu = broker.cpu_seconds() - cpu0;
            format!(
                "{:>8.0} msg/s  cpu {cpu:>5.2} s  ack {}",
                p.messages as f64 / s.duration.as_secs_f64(),
                pct(&p.latency)
            )
        }
        "e2e" => {
            let done = Arc::new(AtomicBool::new(false));
            let (addr, t, parts, stop) = (
                broker.addr.clone(),
                topic.clone(),
                s.partitions,
                done.clone(),
            );
            let reader = std::thread::spawn(move || {
                let c = consumer(&addr, &t, parts, Offset::End);
                let mut h = histogram();
                let quiet_after = Duration::from_secs(2);
                let mut last = Instant::now();
                while !(stop.load(Ordering::Relaxed) && last.elapsed() > quiet_after) {
                    if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                        let now = micros_since_epoch(Instant::now());
                        if let Some(v) = m.payload().filter(|v| v.len() >= 8) {
                            let due = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
                            h.saturating_record(now.saturating_sub(due).max(1));
                        }
                        last = Instant::now();
                    }
                }
                h
            });
            // The consumer's assignment settles before the first send.
            std::thread::sleep(Duration::from_secs(1));
            let p = produce(&broker.addr, &topic, "all", s, Some(s.rate));
            done.store(true, Ordering::Relaxed);
            let e2e = reader.join().expect("consumer thread");
            let cpu = broker.cpu_seconds() - cpu0;
            format!(
                "{:>8.0} msg/s  cpu {cpu:>5.2} s  consumed {} of {}  end to end {}",
                p.messages as f64 / s.duration.as_secs_f64(),
                e2e.len(),
                p.messages,
                pct(&e2e)
            )
        }
        "consume" => {
            let p = produce(&broker.addr, &topic, "1", s, None);
            let cpu1 = broker.cpu_seconds();
            let mb_s = consume_all(&broker.addr, &topic, s, p.messages);
            let cpu = broker.cpu_seconds() - cpu1;
            let mb = (p.messages as usize * s.message_bytes) as f64 / 1e6;
            format!(
                "{mb_s:>8.1} MB/s  cpu {cpu:>5.2} s  {:>6.0} MB/cpu-s  ({:.0} MB from the start)",
                mb / cpu.max(0.001),
                mb
            )
        }
        other => panic!("unknown workload {other}: acks1, acksall, rate, e2e, consume"),
    };
    println!("{workload:<8} {line}");
}

fn main() {
    let mut s = Settings {
        message_bytes: 1024,
        batch_size: 131_072,
        linger_ms: 5.0,
        partitions: 4,
        duration: Duration::from_secs(5),
        rate: 20_000,
    };
    let mut shards = "2".to_string();
    let mut bootstrap: Option<String> = None;
    let mut pid: Option<u32> = None;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        match a.as_str() {
            "--shards" => shards = value("--shards"),
            "--bootstrap" => bootstrap = Some(value("--bootstrap")),
            "--pid" => pid = value("--pid").parse().ok(),
            "--only" => only = Some(value("--only")),
            "--linger-ms" => s.linger_ms = value("--linger-ms").parse().expect("--linger-ms MS"),
            "--batch-size" => s.batch_size = value("--batch-size").parse().expect("--batch-size B"),
            "--partitions" => s.partitions = value("--partitions").parse().expect("--partitions N"),
            "--message-bytes" => {
                s.message_bytes = value("--message-bytes").parse().expect("--message-bytes B")
            }
            "--duration" => {
                s.duration =
                    Duration::from_secs_f64(value("--duration").parse().expect("--duration S"))
            }
            "--rate" => s.rate = value("--rate").parse().expect("--rate MSGS"),
            _ => {} // cargo bench passes --bench
        }
    }
    EPOCH.get_or_init(Instant::now);
    let broker = match bootstrap {
        Some(addr) => Broker {
            target: Target::Running { pid },
            addr,
        },
        None => {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-kafka");
            let _ = std::fs::remove_dir_all(&root);
            Broker::start_strom(&root.join("data"), &shards)
        }
    };
    println!(
        "kafka_load: {} B values, batch.size {}, linger.ms {}, {} partitions, {:?} per run, {} msg/s for rate/e2e; broker {} (pid {:?}); librdkafka on the same machine",
        s.message_bytes, s.batch_size, s.linger_ms, s.partitions, s.duration, s.rate, broker.addr, broker.pid()
    );
    let all = ["acks1", "acksall", "rate", "e2e", "consume"];
    for w in all {
        if only.as_deref().is_none_or(|o| o.split(',').any(|x| x == w)) {
            run(w, &broker, &s);
        }
    }
    broker.stop();
}
