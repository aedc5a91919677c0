//! Partition append benchmark: throughput (MB/s) for 1 KiB, 16 KiB and
//! 1 MiB batches without a flush per append (one flush at the end), and with
//! a flush (fdatasync) after every append, plus the flushed-append latency
//! percentiles.
//!
//!   cargo bench --bench append                    # all sizes, defaults
//!   cargo bench --bench append -- --runs 3 --write-buffer-kib 1024
//!   cargo bench --bench append -- --preallocate --write-behind 8 --unflushed-only
//!
//! Files go to `target/bench-append/` (on the real disk, never tmpfs) and
//! are removed afterwards. Compare with fio; see tuning.md.

use bytes::Bytes;
use hdrhistogram::Histogram;
use std::path::PathBuf;
use std::time::Instant;
use strom::log::batch::build;
use strom::log::{io_probe, Durability, LogConfig, Partition, RecordBatch};

struct Args {
    runs: usize,
    unflushed_bytes: u64,
    flushed_appends: usize,
    write_buffer: usize,
    write_behind: usize,
    preallocate: bool,
    unflushed_only: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        runs: 3,
        unflushed_bytes: 1 << 30,
        flushed_appends: 3000,
        write_buffer: LogConfig::default().write_buffer_bytes,
        write_behind: LogConfig::default().write_behind,
        preallocate: LogConfig::default().preallocate,
        unflushed_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut num = || {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .expect("number")
        };
        match a.as_str() {
            "--runs" => args.runs = num() as usize,
            "--unflushed-mib" => args.unflushed_bytes = num() << 20,
            "--flushed-appends" => args.flushed_appends = num() as usize,
            "--write-buffer-kib" => args.write_buffer = (num() << 10) as usize,
            "--write-behind" => args.write_behind = num() as usize,
            "--unflushed-only" => args.unflushed_only = true,
            "--preallocate" => args.preallocate = true,
            "--no-preallocate" => args.preallocate = false,
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

/// One batch of `size` bytes in total: a single record with a filler value.
fn template(size: usize) -> Bytes {
    let overhead = build::simple(0, 1, 0, 0).len();
    let mut value_len = size - overhead;
    loop {
        let b = build::simple(1_700_000_000_000, 1, value_len, 0x42);
        match b.len().cmp(&size) {
            std::cmp::Ordering::Equal => return b,
            std::cmp::Ordering::Greater => value_len -= 1,
            std::cmp::Ordering::Less => value_len += 1,
        }
    }
}

fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage writes a whole rusage into the pointer we pass.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

struct Outcome {
    mb_per_s: f64,
    cpu_s: f64,
    latency: Option<Histogram<u64>>,
}

async fn run_one(
    dir: PathBuf,
    config: LogConfig,
    size: usize,
    appends: usize,
    flush_each: bool,
) -> Outcome {
    let ready = io_probe::ensure_dma_reads(dir.parent().expect("parent"))
        .await
        .expect("probe");
    let p = Partition::open(&dir, config, &ready).await.expect("open");
    let raw = template(size);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("histogram");
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    for _ in 0..appends {
        let batch = RecordBatch::split_first(&mut raw.clone()).expect("batch");
        let start = Instant::now();
        p.append(vec![batch], Durability::Policy)
            .await
            .expect("append");
        if flush_each {
            p.flush().await.expect("flush");
            hist.saturating_record(start.elapsed().as_micros() as u64);
        }
    }
    p.flush().await.expect("final flush");
    let secs = t0.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds() - cpu0;
    p.close().await.expect("close");
    Outcome {
        mb_per_s: (appends * size) as f64 / secs / 1e6,
        cpu_s,
        latency: flush_each.then_some(hist),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

fn main() {
    let args = parse_args();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-append");
    let config = LogConfig {
        write_buffer_bytes: args.write_buffer,
        write_behind: args.write_behind,
        preallocate: args.preallocate,
        ..LogConfig::default()
    };
    println!(
        "strom append bench: write buffer {} KiB, write-behind {}, preallocate {}, median of {} runs",
        args.write_buffer >> 10,
        args.write_behind,
        args.preallocate,
        args.runs
    );
    for size in [1usize << 10, 16 << 10, 1 << 20] {
        for flush_each in [false, true] {
            if flush_each && args.unflushed_only {
                continue;
            }
            let appends = if flush_each {
                if size >= 1 << 20 {
                    args.flushed_appends / 10
                } else {
                    args.flushed_appends
                }
            } else {
                (args.unflushed_bytes / size as u64) as usize
            };
            let mut rates = Vec::new();
            let mut cpus = Vec::new();
            let mut lat = Vec::new();
            for run in 0..args.runs {
                let _ = std::fs::remove_dir_all(&root);
                std::fs::create_dir_all(&root).expect("bench dir");
                let dir = root.join(format!("bench-{run}"));
                let config = config.clone();
                let outcome = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
                    .spawn(move || run_one(dir, config, size, appends, flush_each))
                    .expect("executor")
                    .join()
                    .expect("bench thread");
                rates.push(outcome.mb_per_s);
                cpus.push(outcome.cpu_s);
                if let Some(h) = outcome.latency {
                    lat.push([
                        h.value_at_quantile(0.5),
                        h.value_at_quantile(0.99),
                        h.value_at_quantile(0.999),
                    ]);
                }
            }
            let mode = if flush_each {
                "flush each"
            } else {
                "no flush  "
            };
            print!(
                "{:>5} KiB  {mode}  {:>8.1} MB/s  cpu {:>5.2} s",
                size >> 10,
                median(rates),
                median(cpus)
            );
            if !lat.is_empty() {
                let pick = |i: usize| median(lat.iter().map(|l| l[i] as f64).collect());
                print!(
                    "  append+flush p50 {:>5.0} us  p99 {:>5.0} us  p99.9 {:>5.0} us",
                    pick(0),
                    pick(1),
                    pick(2)
                );
            }
            println!();
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}
