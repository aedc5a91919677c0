//! The `strom` binary: `strom serve` today opens and recovers a data
//! directory; the Kafka listener arrives with the front-end issue.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Instant;
use strom::log::{log_dir, LogConfig};

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
    /// Open the data directory, recover every partition, and report.
    Serve {
        /// Where partitions and metadata live.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
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
        Command::Serve { data_dir } => serve(data_dir),
        Command::LogWriter {
            dir,
            first_tag,
            writers,
        } => log_writer(dir, first_tag, writers),
    }
}

fn serve(data_dir: PathBuf) -> anyhow::Result<()> {
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("strom-shard-0")
        .make()
        .map_err(|e| anyhow::anyhow!("starting the executor: {e}"))?;
    executor.run(async move {
        let started = Instant::now();
        let (_ready, partitions) = log_dir::open_all(&data_dir, &LogConfig::default())
            .await
            .with_context(|| format!("recovering {}", data_dir.display()))?;
        let segments: usize = partitions.iter().map(|(_, p)| p.segment_count()).sum();
        let bytes: u64 = partitions.iter().map(|(_, p)| p.size_bytes()).sum();
        tracing::info!(
            data_dir = %data_dir.display(),
            partitions = partitions.len(),
            segments,
            bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "recovered data directory; the Kafka listener is not implemented yet, exiting"
        );
        for (tp, p) in &partitions {
            p.close().await.with_context(|| format!("closing {tp}"))?;
        }
        Ok(())
    })
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
                    let info = partition.append(vec![batch]).await?;
                    partition.flush().await?;
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
