//! The `strom` binary: `strom serve` runs the broker.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::os::fd::{IntoRawFd, RawFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use strom::broker::{Broker, Meshes};
use strom::config::BrokerConfig;
use strom::log::{Durability, LogConfig};
use strom::net::listener;
use strom::shard::Shard;

#[derive(Parser)]
#[command(
    name = "strom",
    version,
    about = "A Kafka-compatible broker, thread-per-core on io_uring"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker: recover the data directory, then serve Kafka clients.
    Serve(ServeArgs),
    /// Load a Kafka-API broker (strom or any other) and report throughput
    /// and HDR latency percentiles.
    Bench(strom::bench::BenchArgs),
    /// Print a running broker's measurements (its `/metrics`) as tables:
    /// latency per stage, requests and errors per API, partitions.
    Stats {
        /// The broker's --metrics-listen address.
        #[arg(long, default_value = strom::config::METRICS_LISTEN_DEFAULT)]
        metrics: String,
    },
    /// Test tool: append and flush batches to one partition directory until
    /// killed, printing "<tag> <offset>" for each batch once its flush
    /// returned. The crash test SIGKILLs it and checks what survived.
    #[command(hide = true)]
    LogWriter {
        #[arg(long)]
        dir: PathBuf,
        /// Tag of the first batch; each batch carries its tag in its value.
        #[arg(long, default_value_t = 0)]
        first_tag: u64,
        /// Concurrent append+flush loops (exercises group commit).
        #[arg(long, default_value_t = 4)]
        writers: u64,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::Bench(args) => strom::bench::run(args),
        Command::Stats { metrics } => stats(&metrics),
        Command::LogWriter {
            dir,
            first_tag,
            writers,
        } => log_writer(dir, first_tag, writers),
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address every shard listens on [default: 127.0.0.1:9092].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// host:port clients are told to connect to (advertised.listeners);
    /// defaults to the listen address.
    #[arg(long)]
    advertised_listener: Option<String>,
    /// Where partitions and metadata live (log.dirs) [default: ./data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Executors, one per core, each pinned [default: every core].
    #[arg(long)]
    shards: Option<usize>,
    /// num.partitions: partitions of topics created without a count [default: 1].
    #[arg(long)]
    num_partitions: Option<u32>,
    /// auto.create.topics.enable
    #[arg(long, action = clap::ArgAction::Set)]
    auto_create_topics: Option<bool>,
    /// Requests of one connection handled at once (connection.pipeline.depth)
    /// [default: 8; 1 = one at a time, as Kafka].
    #[arg(long)]
    pipeline_depth: Option<usize>,
    /// Where `/metrics` (Prometheus text) is served, or `none`
    /// (metrics.listen) [default: 127.0.0.1:9644].
    #[arg(long)]
    metrics_listen: Option<String>,
    /// Microseconds an idle shard polls before parking
    /// (shard.spin.before.park.us) [default: 0].
    #[arg(long)]
    spin_before_park_us: Option<u64>,
    /// Threads per shard for blocking work such as cold-read sendfile
    /// (shard.blocking.threads) [default: 4].
    #[arg(long)]
    blocking_threads: Option<usize>,
    /// Partitions this broker holds at most (max.broker.partitions)
    /// [default: no limit but the file descriptors left].
    #[arg(long)]
    max_broker_partitions: Option<u64>,
    /// Test hook: a produce to this topic panics its owner shard.
    #[arg(long, hide = true)]
    crash_on_produce_to: Option<String>,
    /// Test hook: make matching storage calls fail
    /// (`write|fdatasync:PATH_PART[:after=N][:errno=E]`, `log::fault`).
    #[arg(long, hide = true)]
    fail_io: Vec<String>,
    /// A TOML file of Kafka broker settings (num.partitions,
    /// log.segment.bytes, log.retention.ms, socket.request.max.bytes, ...);
    /// flags given on the command line win.
    #[arg(long)]
    config: Option<PathBuf>,
}

static SHUTDOWN: AtomicBool = AtomicBool::new(false);

extern "C" fn request_shutdown(_: libc::c_int) {
    SHUTDOWN.store(true, Ordering::SeqCst);
}

fn install_shutdown_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; `signal` has no other preconditions.
        unsafe {
            libc::signal(signal, request_shutdown as *const () as libc::sighandler_t);
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if !args.fail_io.is_empty() {
        strom::log::fault::install(&args.fail_io).map_err(anyhow::Error::msg)?;
        tracing::warn!(rules = ?args.fail_io, "test hook: storage calls will fail");
    }
    let mut config = broker_config(args)?;
    strom::log::state_log::pin_partition_count(
        &config.data_dir,
        strom::group::OFFSETS_TOPIC,
        "offsets.topic.num.partitions",
        config.group.offsets_partitions,
    )?;
    strom::log::state_log::pin_partition_count(
        &config.data_dir,
        strom::txn::coordinator::TRANSACTION_TOPIC,
        "transaction.state.log.num.partitions",
        config.txn.partitions,
    )?;
    // Held until every shard has bound its own SO_REUSEPORT listener, so
    // the port (picked by the kernel for port 0) stays ours meanwhile.
    let (listen, _reservation) = reserve_listen_port(config.listen)
        .with_context(|| format!("listening on {}", config.listen))?;
    if config.advertised_port == 0 {
        // Nobody can connect to port 0: advertise the port picked.
        config.advertised_port = listen.port();
    }
    config.listen = listen;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => {
            let l = bind_exclusive(addr).with_context(|| format!("metrics listener on {addr}"))?;
            // Port 0 picks a free one; the startup line names it.
            config.metrics_listen = Some(l.local_addr()?);
            Some(l.into_raw_fd())
        }
        None => None,
    };
    install_shutdown_handlers();
    let handles = start_shards(config, metrics_listener)?;
    let (mut hot, mut cold) = (0, 0);
    let mut failure = None;
    for (id, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(Ok((h, c))) => {
                hot += h;
                cold += c;
            }
            // The shard that failed says why; the others only stopped.
            Ok(Err(e)) if e.is::<PeerFailed>() => {}
            Ok(Err(e)) => failure = Some(e.context(format!("shard {id}"))),
            Err(e) => failure = Some(anyhow::anyhow!("shard {id} panicked: {e}")),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    tracing::info!(fetch_hot_bytes = hot, fetch_cold_bytes = cold, "stopped");
    Ok(())
}

/// The broker's settings: defaults, then the config file, then flags.
fn broker_config(args: ServeArgs) -> anyhow::Result<BrokerConfig> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let default_listen: SocketAddr = "127.0.0.1:9092".parse().expect("valid address");
    let mut config = BrokerConfig::new(default_listen, PathBuf::from("./data"));
    config.shards = cores;
    if let Some(path) = &args.config {
        config
            .apply_file(path)
            .with_context(|| format!("config file {}", path.display()))?;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
        if args.advertised_listener.is_none() {
            config.advertised_host = listen.ip().to_string();
            config.advertised_port = listen.port();
        }
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(n) = args.num_partitions {
        config.num_partitions = n.max(1);
    }
    if let Some(enabled) = args.auto_create_topics {
        config.auto_create_topics = enabled;
    }
    if let Some(n) = args.shards {
        config.shards = n.max(1);
    }
    config.crash_on_produce_to = args.crash_on_produce_to;
    // Flags go through the same setter as the config file (one set of
    // bounds per setting).
    let as_text = |n: Option<usize>| n.map(|n| n.to_string());
    let flags = [
        (
            "--advertised-listener",
            "advertised.listeners",
            args.advertised_listener,
        ),
        (
            "--blocking-threads",
            "shard.blocking.threads",
            as_text(args.blocking_threads),
        ),
        (
            "--spin-before-park-us",
            "shard.spin.before.park.us",
            args.spin_before_park_us.map(|n| n.to_string()),
        ),
        (
            "--pipeline-depth",
            "connection.pipeline.depth",
            as_text(args.pipeline_depth),
        ),
        ("--metrics-listen", "metrics.listen", args.metrics_listen),
        (
            "--max-broker-partitions",
            "max.broker.partitions",
            args.max_broker_partitions.map(|n| n.to_string()),
        ),
    ];
    for (flag, key, value) in flags {
        if let Some(v) = value {
            config.apply(key, &v).context(flag)?;
        }
    }
    Ok(config)
}

/// A running shard: ends with its fetch byte counts (hot, cold).
type ShardThread = glommio::ExecutorJoinHandle<anyhow::Result<(u64, u64)>>;

/// One pinned executor per shard, each running `run_shard`; shard 0 also
/// serves `/metrics` on `metrics_listener`.
fn start_shards(
    config: BrokerConfig,
    mut metrics_listener: Option<RawFd>,
) -> anyhow::Result<Vec<ShardThread>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards = config.shards;
    let meshes = Meshes::new(shards);
    let lifecycle = Arc::new(Lifecycle {
        partitions: AtomicUsize::new(0),
        failed: AtomicBool::new(false),
        ready: Barrier::new(shards),
        started: Instant::now(),
        drained: AtomicUsize::new(0),
    });
    let mut handles = Vec::with_capacity(shards);
    for id in 0..shards {
        let (config, meshes, lifecycle) = (config.clone(), meshes.clone(), lifecycle.clone());
        let metrics = if id == 0 {
            metrics_listener.take()
        } else {
            None
        };
        let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(id % cores))
            .name(&format!("strom-shard-{id}"))
            .spin_before_park(Duration::from_micros(config.spin_before_park_us))
            .blocking_thread_pool_placement(glommio::PoolPlacement::Unbound(
                config.blocking_threads,
            ))
            .io_memory(config.io_memory_bytes)
            .spawn(move || run_shard(id, config, meshes, lifecycle, metrics))
            .map_err(|e| anyhow::anyhow!("starting shard {id}: {e}"))?;
        handles.push(handle);
    }
    Ok(handles)
}

/// How long a taken port is retried at startup.
const BIND_PATIENCE: Duration = Duration::from_secs(5);

/// Binds `addr` with SO_REUSEADDR (std's default) but without
/// SO_REUSEPORT, so a port another process listens on is an error rather
/// than silently shared, while the TIME-WAIT sockets of a previous
/// process's connections are not (`net::listener` gives them
/// SO_REUSEADDR). A broker restarted right after a crash may find its
/// listener still held for a moment (the dead process's io_uring is torn
/// down asynchronously, with its pending accepts), so EADDRINUSE is
/// retried for a few seconds.
fn bind_exclusive(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let patience = Instant::now() + BIND_PATIENCE;
    loop {
        match std::net::TcpListener::bind(addr) {
            Ok(l) => {
                l.set_nonblocking(true)?;
                return Ok(l);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < patience => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Settles the Kafka listener's port before the shards bind it: a port
/// another process holds is refused (every shard binds with SO_REUSEPORT,
/// which would otherwise share it silently), and port 0 becomes a port
/// the kernel picks. The returned socket is bound with SO_REUSEPORT but
/// never listens (it receives no connections); holding it keeps the port
/// from being taken before the shards bind.
fn reserve_listen_port(addr: SocketAddr) -> std::io::Result<(SocketAddr, socket2::Socket)> {
    if addr.port() != 0 {
        drop(bind_exclusive(addr)?);
    }
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    let bound = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| std::io::Error::other("the listener has no IP address"))?;
    Ok((bound, socket))
}

/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the shards share while starting and stopping: a count of
/// recovered partitions and a barrier, so one line can report them all
/// (every shard reaches the barrier, failed or not, so one shard's failure
/// stops the others instead of leaving them waiting), and a count of
/// shards drained at shutdown.
struct Lifecycle {
    partitions: AtomicUsize,
    failed: AtomicBool,
    ready: Barrier,
    started: Instant,
    /// Shards that have no request of their own left at shutdown.
    drained: AtomicUsize,
}

/// A shard stopped at startup because another one failed.
#[derive(Debug)]
struct PeerFailed;

impl std::fmt::Display for PeerFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped: another shard failed to start")
    }
}

impl std::error::Error for PeerFailed {}

/// Joins the meshes, recovers this shard's partitions and groups, and
/// binds its listener.
async fn open_shard(
    config: BrokerConfig,
    meshes: Meshes,
) -> anyhow::Result<(Rc<Broker>, glommio::net::TcpListener)> {
    let broker = Broker::open(Rc::new(config), meshes)
        .await
        .context("recovering the data directory")?;
    let config = &broker.shard.config;
    let listener =
        listener::bind(&broker.shard).with_context(|| format!("listening on {}", config.listen))?;
    Ok((broker, listener))
}

async fn run_shard(
    id: usize,
    config: BrokerConfig,
    meshes: Meshes,
    lifecycle: Arc<Lifecycle>,
    metrics_listener: Option<RawFd>,
) -> anyhow::Result<(u64, u64)> {
    let opened = open_shard(config, meshes).await;
    match &opened {
        Ok((broker, _)) => {
            let partitions = broker.shard.partition_count();
            lifecycle.partitions.fetch_add(partitions, Ordering::SeqCst);
        }
        Err(_) => lifecycle.failed.store(true, Ordering::SeqCst),
    }
    // Blocks this thread briefly, once, at startup, so the line below can
    // count every shard's partitions.
    lifecycle.ready.wait();
    let (broker, listener) = opened?;
    if lifecycle.failed.load(Ordering::SeqCst) {
        return Err(PeerFailed.into());
    }
    if id == 0 {
        log_serving(&broker.shard, &lifecycle);
    }
    let accepting = glommio::spawn_local(listener::accept_loop(broker.clone(), listener));
    let metrics = metrics_listener.map(|fd| {
        use std::os::fd::FromRawFd;
        // SAFETY: `fd` is the listening socket `serve` bound and released
        // with `into_raw_fd`; this is its only owner from here on.
        let l = unsafe { glommio::net::TcpListener::from_raw_fd(fd) };
        glommio::spawn_local(strom::net::metrics_http::serve(broker.shard.clone(), l))
    });
    while !SHUTDOWN.load(Ordering::SeqCst) {
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
    if id == 0 {
        tracing::info!("shutting down: no new connections, flushing every partition");
    }
    accepting.cancel().await;
    broker.shard.shutdown.start();
    if let Some(m) = metrics {
        m.cancel().await;
    }
    drain(&broker.shard, &lifecycle).await;
    broker.flush_all().await.context("flushing at shutdown")?;
    let m = &broker.shard.metrics;
    Ok((m.fetch_hot_bytes.get(), m.fetch_cold_bytes.get()))
}

/// The line that tells operators (and tests) the broker is up, and where.
fn log_serving(shard: &Shard, lifecycle: &Lifecycle) {
    let config = &shard.config;
    tracing::info!(
        listen = %config.listen,
        advertised = format!("{}:{}", config.advertised_host, config.advertised_port),
        metrics = config.metrics_listen.map_or("none".to_string(), |a| format!("http://{a}/metrics")),
        shards = config.shards,
        data_dir = %config.data_dir.display(),
        topics = shard.topics().len(),
        partitions = lifecycle.partitions.load(Ordering::SeqCst),
        recovery_ms = lifecycle.started.elapsed().as_millis() as u64,
        "strom is serving"
    );
}

/// Lets requests already being handled finish (a long-polling fetch ends
/// at its deadline), up to a bound; then waits, up to the same bound, for
/// every other shard to drain too: a request still in flight elsewhere may
/// call this shard (a fetch reads from every owner), so no shard stops
/// serving the mesh before every shard has drained.
async fn drain(shard: &Shard, lifecycle: &Lifecycle) {
    let patience = Instant::now() + SHUTDOWN_GRACE;
    while shard.metrics.requests_in_flight.get() > 0 && Instant::now() < patience {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    lifecycle.drained.fetch_add(1, Ordering::SeqCst);
    while lifecycle.drained.load(Ordering::SeqCst) < shard.config.shards
        && Instant::now() < patience
    {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
}

/// `strom stats`: scrapes `/metrics` and prints it as tables.
fn stats(addr: &str) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let timeout = Duration::from_secs(10);
    let socket: SocketAddr = addr
        .parse()
        .with_context(|| format!("{addr} is not host:port"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&socket, timeout).with_context(|| {
        format!("connecting to {addr} (is strom serving with --metrics-listen {addr}?)")
    })?;
    stream.set_read_timeout(Some(timeout))?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("the answer is not HTTP")?;
    if !head.starts_with("HTTP/1.1 200") {
        anyhow::bail!("{addr} answered {}", head.lines().next().unwrap_or(""));
    }
    let samples = strom::metrics::exposition::parse(body)?;
    print!("{}", strom::metrics::table::render(&samples));
    Ok(())
}

fn log_writer(dir: PathBuf, first_tag: u64, writers: u64) -> anyhow::Result<()> {
    use std::rc::Rc;
    use strom::log::batch::build;
    use strom::log::{io_probe, Partition, RecordBatch};
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .map_err(|e| anyhow::anyhow!("starting the executor: {e}"))?;
    executor.run(async move {
        let parent = dir.parent().context("partition dir has a parent")?;
        let ready = io_probe::ensure_dma_reads(parent).await?;
        let config = LogConfig {
            segment_bytes: 256 << 10,
            ..LogConfig::default()
        };
        let partition = Rc::new(Partition::open(&dir, config, &ready).await?);
        let next_tag = Rc::new(std::cell::Cell::new(first_tag));
        let mut loops = Vec::new();
        for _ in 0..writers {
            let (partition, next_tag) = (partition.clone(), next_tag.clone());
            loops.push(glommio::spawn_local(async move {
                loop {
                    let tag = next_tag.get();
                    next_tag.set(tag + 1);
                    let mut value = vec![0u8; 64 + (tag % 7) as usize * 300];
                    value[..8].copy_from_slice(&tag.to_be_bytes());
                    let record = build::Record {
                        key: None,
                        value: &value,
                        timestamp_delta: 0,
                    };
                    let mut raw = build::batch(tag as i64, &[record]);
                    let batch = RecordBatch::split_first(&mut raw)?;
                    let info = partition.append(vec![batch], Durability::Synced).await?;
                    println!("{tag} {}", info.base_offset);
                }
                #[allow(unreachable_code)]
                Ok::<(), anyhow::Error>(())
            }));
        }
        for l in loops {
            l.await?;
        }
        Ok(())
    })
}
