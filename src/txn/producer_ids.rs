//! `ProducerIds`: hands out the producer ids of InitProducerId, never the
//! same one twice, also across kill -9.
//!
//! Shard 0 keeps `meta/producer_ids`: the first id no block has been given
//! yet. Each shard hands out ids from a block of its own and, when the
//! block is used up, takes the next one from shard 0 (`TakeBlock`), which
//! makes the new end durable before it answers. A crash loses at most the
//! rest of each shard's block; an id is never reused.
//!
//! One instance per shard (a sharded service with its own router).

use crate::log::log_dir::write_durably_off_thread;
use crate::log::{IoFailure, ProducerId};
use crate::shard::ownership::ShardId;
use crate::shard::router::{Call, Router, ShardGone, Sharded};
use glommio::sync::Semaphore;
use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Ids per block: Kafka's controller hands out blocks of 1000 too. Big
/// enough that a shard rarely asks, small enough that a crash wastes few.
const BLOCK: i64 = 1000;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProducerIdError {
    #[error("storing the producer id blocks: {0}")]
    Io(#[from] IoFailure),
    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(transparent)]
    Gone(#[from] ShardGone),
}

pub struct ProducerIds {
    router: Router<ProducerIds>,
    /// The ids this shard may still hand out.
    block: RefCell<Range<i64>>,
    /// One block request at a time per shard.
    refill: Semaphore,
    /// Shard 0: where the next block starts, and its durable record.
    next_block: Cell<i64>,
    path: PathBuf,
    /// Shard 0: blocks are given one at a time, so each write holds the
    /// end of every block given before it.
    giving: Semaphore,
}

impl Sharded for ProducerIds {
    fn router(&self) -> &Router<ProducerIds> {
        &self.router
    }
}

impl ProducerIds {
    /// Shard 0 reads `meta/producer_ids` (none yet: ids start at 0).
    pub async fn open(
        data_dir: &Path,
        router: Router<ProducerIds>,
    ) -> Result<Rc<ProducerIds>, ProducerIdError> {
        let path = data_dir.join("meta").join("producer_ids");
        let next_block = if router.id() == ShardId::FIRST {
            read_next_block(&path).await?
        } else {
            0
        };
        Ok(Rc::new(ProducerIds {
            router,
            block: RefCell::new(0..0),
            refill: Semaphore::new(1),
            next_block: Cell::new(next_block),
            path,
            giving: Semaphore::new(1),
        }))
    }

    /// A producer id no one has had before.
    pub async fn next(self: &Rc<Self>) -> Result<ProducerId, ProducerIdError> {
        loop {
            if let Some(id) = self.block.borrow_mut().next() {
                return Ok(ProducerId(id));
            }
            let _one_refill = self.refill.acquire_permit(1).await;
            if !self.block.borrow().is_empty() {
                continue; // another task refilled it meanwhile
            }
            let block = self.router.call(self, ShardId::FIRST, TakeBlock).await??;
            *self.block.borrow_mut() = block;
        }
    }

    /// On shard 0: the next block, its end durable first.
    async fn give_block(&self) -> Result<Range<i64>, ProducerIdError> {
        let _one_at_a_time = self.giving.acquire_permit(1).await;
        let start = self.next_block.get();
        let end = start + BLOCK;
        let text = format!("{end}\n").into_bytes();
        write_durably_off_thread(self.path.clone(), text)
            .await
            .map_err(|e| IoFailure::new(format!("writing {}", self.path.display()), e))?;
        self.next_block.set(end);
        tracing::debug!(start, end, "producer id block given");
        Ok(start..end)
    }
}

/// A shard asks shard 0 for its next block of producer ids.
struct TakeBlock;

impl Call<ProducerIds> for TakeBlock {
    type Reply = Result<Range<i64>, ProducerIdError>;

    async fn run(self, on: &Rc<ProducerIds>) -> Self::Reply {
        on.give_block().await
    }
}

async fn read_next_block(path: &Path) -> Result<i64, ProducerIdError> {
    let reading = path.to_path_buf();
    let read = glommio::executor()
        .spawn_blocking(move || std::fs::read_to_string(reading))
        .await;
    let text = match read {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            let what = format!("reading {}", path.display());
            return Err(IoFailure::new(what, e).into());
        }
    };
    let corrupt = |reason: &str| ProducerIdError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let next: i64 = text.trim().parse().map_err(|_| corrupt("not a number"))?;
    if next < 0 {
        return Err(corrupt("negative"));
    }
    Ok(next)
}
