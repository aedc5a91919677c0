//! Works around glommio's io-poll probe pitfall (DESIGN.md §8).
//!
//! The first DMA file a thread opens on a block device makes glommio probe
//! io-poll support with a read at offset 0, and the answer is cached for the
//! device on that thread. If that first file is new and empty the probe
//! "succeeds" trivially, the device is marked pollable, and every later DMA
//! read on it fails with EOPNOTSUPP. So each executor thread, before it opens
//! any segment, opens a small non-empty file in the data directory with DMA
//! and reads it back once.

use super::error::{IoContext, LogError, Result};
use glommio::io::DmaFile;
use std::io::Write;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

pub(super) const PROBE_FILE: &str = ".dma-probe";
const PROBE_LEN: usize = 4096;

/// Proof that this thread ran the probe. Not `Send`: the probe's answer is
/// cached per thread, so the proof must not leave the thread either.
/// Opening a partition requires one.
#[derive(Debug, Clone, Copy)]
pub struct DmaReady(PhantomData<*const ()>);

/// Must run on every executor thread before it opens any segment in
/// `data_dir`.
pub async fn ensure_dma_reads(data_dir: &Path) -> Result<DmaReady> {
    std::fs::create_dir_all(data_dir).context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join(PROBE_FILE);
    let fresh = std::fs::metadata(&path).map_or(true, |m| m.len() as usize != PROBE_LEN);
    if fresh {
        // Every shard runs this at once: each writes its own file and
        // renames it into place, so no shard reads another's half-written
        // (truncated) probe.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let own = data_dir.join(format!("{PROBE_FILE}.{}.{n}", std::process::id()));
        let mut f =
            std::fs::File::create(&own).context(|| format!("creating {}", own.display()))?;
        f.write_all(&[0x5a; PROBE_LEN])
            .and_then(|()| f.sync_all())
            .and_then(|()| std::fs::rename(&own, &path))
            .context(|| format!("writing {}", path.display()))?;
    }
    let file = DmaFile::open(&path)
        .await
        .context(|| format!("opening {}", path.display()))?;
    let read = file
        .read_at(0, PROBE_LEN)
        .await
        .context(|| format!("reading {}", path.display()))?;
    let ok = read.len() == PROBE_LEN && read.iter().all(|&b| b == 0x5a);
    file.close()
        .await
        .context(|| format!("closing {}", path.display()))?;
    if !ok {
        return Err(LogError::Corrupt(format!(
            "{} did not read back as written",
            path.display()
        )));
    }
    Ok(DmaReady(PhantomData))
}
