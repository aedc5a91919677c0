//! Recovery of segments when a partition opens.
//!
//! The active (last) segment is read back batch by batch: each batch's length
//! and CRC are checked and its base offset must continue the previous batch.
//! The file is truncated at the first batch that is torn, corrupt or out of
//! sequence, so nothing past it is ever served; this also removes the zero
//! padding of a partial last block. Its indexes are rebuilt from the scan.
//!
//! A sealed segment was truncated and fdatasync'ed when it was sealed, so its
//! indexes are loaded from their files and only checked for consistency;
//! missing or inconsistent indexes are rebuilt with the same scan.

use super::appender::{write_alignment, SegmentAppender};
use super::config::LogConfig;
use super::error::{IoContext, Result};
use super::index::OffsetIndex;
use super::offset::Offset;
use super::producer_snapshot;
use super::producer_state::ProducerState;
use super::segment::{
    file_name, read_file, write_file_durably, BatchScanner, Scanned, Segment, SegmentFiles,
};
use super::time_index::TimeIndex;
use super::txn_index;
use std::path::Path;
use std::rc::Rc;

/// What a scan found.
struct Scan {
    segment: Segment,
    /// Bytes the file holds beyond the last whole, valid batch.
    dropped_bytes: u64,
    reason: Option<String>,
}

/// Reads every batch of a segment, rebuilding its indexes, and stops at the
/// first one that is not whole, valid and in sequence.
async fn scan(files: Rc<SegmentFiles>, config: &LogConfig) -> Result<Scan> {
    let file_size = files
        .dma
        .file_size()
        .await
        .context(|| format!("sizing {}", files.log_path.display()))?;
    let mut segment = Segment::empty(files.clone());
    let mut scanner = BatchScanner::new(&files, file_size);
    let mut pos = 0u64;
    let mut reason = None;
    loop {
        match scanner.batch(pos).await? {
            Scanned::Batch(batch) => {
                if Offset::from_i64(batch.base_offset()) != Some(segment.next_offset) {
                    reason = Some(format!(
                        "batch at {pos} has base offset {}, expected {}",
                        batch.base_offset(),
                        segment.next_offset
                    ));
                    break;
                }
                if segment.rolling_ms.is_none() {
                    segment.rolling_ms = Some(batch.max_timestamp());
                }
                segment.note_batch(pos, &batch, config.index_interval_bytes);
                pos += batch.len() as u64;
            }
            Scanned::End => {
                if pos < file_size {
                    reason = Some(format!("torn batch at {pos}"));
                }
                break;
            }
            Scanned::Corrupt(why) => {
                reason = Some(format!("at {pos}: {why}"));
                break;
            }
        }
    }
    Ok(Scan {
        dropped_bytes: file_size - pos,
        segment,
        reason,
    })
}

/// True if the block after the last valid batch is all zeros: the padding
/// of a partial block or the region the appender zeroed ahead, not a torn
/// batch (a batch header is never all zeros). Only that block is read, so
/// recovery does not read megabytes of zeros per partition.
async fn is_zero_padding(files: &SegmentFiles, from: u64, to: u64) -> Result<bool> {
    let block_end = (from + 1)
        .next_multiple_of(write_alignment(&files.dma))
        .min(to);
    let tail = files.read(from, (block_end - from) as usize).await?;
    Ok(tail.iter().all(|&b| b == 0))
}

/// Recovers the active segment and gives it an appender.
pub async fn recover_active(
    dir: &Path,
    base_offset: Offset,
    config: &LogConfig,
) -> Result<Segment> {
    let files = Rc::new(SegmentFiles::open(dir, base_offset, false).await?);
    let Scan {
        mut segment,
        dropped_bytes,
        reason,
    } = scan(files.clone(), config).await?;
    if dropped_bytes > 0 {
        let size = segment.size;
        let end = size + dropped_bytes;
        if is_zero_padding(&files, size, end).await? {
            tracing::debug!(segment = %files.log_path.display(), "trimming {dropped_bytes} bytes of zeros after the last batch");
        } else {
            tracing::warn!(
                segment = %files.log_path.display(),
                "truncating {dropped_bytes} bytes after the last valid batch ({})",
                reason.as_deref().unwrap_or("unknown")
            );
        }
        files.truncate_durably(size).await?;
    }
    let align = write_alignment(&files.dma);
    let block_start = segment.size - segment.size % align;
    let tail_block = if block_start < segment.size {
        files
            .read(block_start, (segment.size - block_start) as usize)
            .await?
    } else {
        bytes::Bytes::new()
    };
    segment.appender = Some(SegmentAppender::new(
        files.dma.clone(),
        config,
        segment.size,
        &tail_block,
        segment.next_offset,
    ));
    Ok(segment)
}

/// The producer state of a log and its segments' aborted transactions:
/// the newest valid snapshot among `snapshots` (within the log) and the
/// `.txnindex` files below it, then every batch after it replayed, oldest
/// first — the whole log if no snapshot serves or an index is damaged.
/// Returns the state and the snapshots kept. A segment that stops short
/// (damage past what recovery checked) ends its replay there, with a
/// warning. Indexes the replay changed are written back.
pub async fn rebuild_producer_state(
    dir: &Path,
    segments: &mut std::collections::BTreeMap<Offset, Segment>,
    snapshots: Vec<Offset>,
    (now_ms, expiration_ms): (i64, i64),
) -> Result<(ProducerState, Vec<Offset>)> {
    let mut indexes_whole = true;
    for (&base, segment) in segments.iter_mut() {
        match txn_index::load(dir, base).await? {
            Some(aborted) => segment.aborted = aborted,
            None => indexes_whole = false,
        }
    }
    let log_start = *segments.keys().next().expect("a log has a segment");
    let log_end = segments.values().next_back().expect("active").next_offset;
    // A snapshot outside the log describes batches it no longer holds
    // (deleted, or lost past the end in a crash): it goes, as in Kafka.
    let (mut usable, outside): (Vec<Offset>, Vec<Offset>) = snapshots
        .into_iter()
        .partition(|&o| log_start <= o && o <= log_end);
    for offset in outside {
        producer_snapshot::remove(dir, offset).await?;
    }
    let loaded = if indexes_whole {
        producer_snapshot::load_newest(dir, &usable).await?
    } else {
        None
    };
    let (mut state, from) = match loaded {
        Some((offset, entries)) => {
            let state = ProducerState::from_snapshot(entries, now_ms, expiration_ms);
            (state, Some(offset))
        }
        None => (ProducerState::default(), None),
    };
    if indexes_whole {
        // Damaged ones newer than the one loaded were deleted.
        usable.retain(|&o| from.is_some_and(|f| o <= f));
    }
    let replay_from = from.unwrap_or(log_start);
    for segment in segments.values_mut() {
        let before = segment.aborted.len();
        segment.aborted.retain(|a| a.last < replay_from);
        segment.aborted_unsaved = segment.aborted.len() != before;
    }
    for segment in segments
        .values_mut()
        .filter(|s| s.next_offset > replay_from)
    {
        let files = segment.files.clone();
        let mut scanner = BatchScanner::new(&files, segment.size);
        let mut pos = 0u64;
        loop {
            match scanner.batch(pos).await? {
                Scanned::Batch(batch) => {
                    pos += batch.len() as u64;
                    if batch.base() < replay_from {
                        continue;
                    }
                    if let Some(aborted) = state.replay(&batch) {
                        segment.aborted.push(aborted);
                        segment.aborted_unsaved = true;
                    }
                }
                Scanned::End => break,
                Scanned::Corrupt(why) => {
                    tracing::warn!(segment = %files.log_path.display(), "producer state replay stops at {pos}: {why}");
                    break;
                }
            }
        }
    }
    for (&base, segment) in segments.iter_mut().filter(|(_, s)| s.aborted_unsaved) {
        txn_index::write(dir, base, &segment.aborted).await?;
        segment.aborted_unsaved = false;
    }
    Ok((state, usable))
}

/// Opens a sealed segment whose successor starts at `next_offset`.
pub async fn open_sealed(
    dir: &Path,
    base_offset: Offset,
    next_offset: Offset,
    config: &LogConfig,
) -> Result<Segment> {
    let files = Rc::new(SegmentFiles::open(dir, base_offset, false).await?);
    let size = files
        .dma
        .file_size()
        .await
        .context(|| format!("sizing {}", files.log_path.display()))?;
    let index = read_file(&dir.join(file_name(base_offset, "index"))).await?;
    let time_index = read_file(&dir.join(file_name(base_offset, "timeindex"))).await?;
    let loaded = match (index, time_index) {
        (Some(i), Some(t)) => OffsetIndex::decode(&i, size)
            .ok()
            .zip(TimeIndex::decode(&t, next_offset.since(base_offset))),
        _ => None,
    };
    if let Some((index, time_index)) = loaded {
        return Ok(Segment {
            max_timestamp: time_index.max_timestamp().unwrap_or(-1),
            files,
            size,
            next_offset,
            index,
            time_index,
            bytes_since_index: 0,
            rolling_ms: None,
            appender: None,
            aborted: Vec::new(),
            aborted_unsaved: false,
        });
    }
    tracing::info!(segment = %files.log_path.display(), "rebuilding missing or inconsistent indexes");
    let Scan {
        mut segment,
        dropped_bytes,
        reason,
    } = scan(files.clone(), config).await?;
    if dropped_bytes > 0 || segment.next_offset != next_offset {
        return Err(super::error::LogError::Corrupt(format!(
            "sealed segment {} is damaged: valid batches end at byte {} and offset {}, \
             the next segment starts at offset {next_offset} ({})",
            files.log_path.display(),
            segment.size,
            segment.next_offset,
            reason.as_deref().unwrap_or("offset gap")
        )));
    }
    seal_indexes(dir, &mut segment).await?;
    Ok(segment)
}

/// Adds the final time-index entry, which carries the segment's largest
/// timestamp, and writes both indexes durably. Called once a segment is
/// sealed; the segment stays readable meanwhile.
pub async fn seal_indexes(dir: &Path, segment: &mut Segment) -> Result<()> {
    segment.finish_time_index();
    let base = segment.base_offset();
    write_indexes(
        dir,
        base,
        &segment.index.encode(),
        &segment.time_index.encode(),
    )
    .await
}

pub async fn write_indexes(
    dir: &Path,
    base: Offset,
    index: &[u8],
    time_index: &[u8],
) -> Result<()> {
    write_file_durably(&dir.join(file_name(base, "index")), index).await?;
    write_file_durably(&dir.join(file_name(base, "timeindex")), time_index).await
}
