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
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match Cli::parse().command {
        Command::Serve { data_dir } => serve(data_dir),
    }
}

fn serve(data_dir: PathBuf) -> anyhow::Result<()> {
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("strom-shard-0")
        .make()
        .map_err(|e| anyhow::anyhow!("starting the executor: {e}"))?;
    executor.run(async move {
        let started = Instant::now();
        let partitions = log_dir::open_all(&data_dir, &LogConfig::default())
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
