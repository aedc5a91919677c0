//! `ReadBuffers`: the memory a cold fetch read is copied into on its way
//! from the shard's DMA buffer to the socket of whichever shard answers.
//!
//! glommio's DMA buffers belong to the reactor that read them (they are not
//! `Send`), so a cold range is copied once into blocks of this pool, and
//! the blocks travel as `Bytes`. Copying into fresh heap memory cost more
//! than the copy: a fetch-sized allocation is a new mmap, and faulting in
//! and zeroing its pages was half of the broker's CPU under one consumer
//! reading from the start (perf, tuning.md). So blocks are fixed-size,
//! touched once, and return to the pool of the shard that took them when
//! the last `Bytes` pointing into them is dropped, on whatever thread that
//! happens.
//!
//! Invariant: the pool keeps at most `RETAINED_BLOCKS` free blocks per
//! shard; a copy larger than what is free allocates, and what comes back
//! beyond the bound is freed.

use bytes::Bytes;
use std::sync::{Arc, Mutex, PoisonError};

/// Size of one block: a librdkafka consumer's default
/// `max.partition.fetch.bytes`, so a typical partition read is one block.
pub const BLOCK_BYTES: usize = 1 << 20;

/// Free blocks a shard keeps for the next reads (32 MiB).
const RETAINED_BLOCKS: usize = 32;

type FreeList = Arc<Mutex<Vec<Box<[u8]>>>>;

thread_local! {
    /// Each shard's free blocks.
    static FREE: FreeList = Arc::new(Mutex::new(Vec::new()));
}

/// One block holding `len` bytes of a read; goes back to `home` on drop.
struct Block {
    memory: Option<Box<[u8]>>,
    len: usize,
    home: FreeList,
}

impl AsRef<[u8]> for Block {
    fn as_ref(&self) -> &[u8] {
        self.memory.as_deref().map_or(&[], |m| &m[..self.len])
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        let Some(memory) = self.memory.take() else {
            return;
        };
        let mut free = self.home.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < RETAINED_BLOCKS {
            free.push(memory);
        }
    }
}

/// Copies `src` into this shard's blocks: one `Bytes` per block, in order.
pub fn copy(src: &[u8]) -> Vec<Bytes> {
    FREE.with(|home| {
        src.chunks(BLOCK_BYTES)
            .map(|piece| {
                let taken = home.lock().unwrap_or_else(PoisonError::into_inner).pop();
                let mut memory = taken.unwrap_or_else(|| vec![0u8; BLOCK_BYTES].into_boxed_slice());
                memory[..piece.len()].copy_from_slice(piece);
                Bytes::from_owner(Block {
                    memory: Some(memory),
                    len: piece.len(),
                    home: home.clone(),
                })
            })
            .collect()
    })
}

/// Free blocks this shard holds now.
#[cfg(test)]
fn free_blocks() -> usize {
    FREE.with(|home| home.lock().unwrap_or_else(PoisonError::into_inner).len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_in_order_and_blocks_come_back() {
        let src: Vec<u8> = (0..BLOCK_BYTES * 2 + 17).map(|i| i as u8).collect();
        let before = free_blocks();
        let parts = copy(&src);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), src);
        let slice = parts[2].slice(1..5);
        drop(parts);
        // Two blocks are free again; the third is held by the slice.
        assert_eq!(free_blocks(), before + 2);
        assert_eq!(&slice[..], &src[BLOCK_BYTES * 2 + 1..BLOCK_BYTES * 2 + 5]);
        drop(slice);
        assert_eq!(free_blocks(), before + 3);
        // A second copy reuses them.
        let again = copy(&src[..10]);
        assert_eq!(free_blocks(), before + 2);
        assert_eq!(&again[0][..], &src[..10]);
    }

    #[test]
    fn blocks_dropped_on_another_thread_go_home() {
        let before = free_blocks();
        let parts = copy(b"abc");
        std::thread::spawn(move || drop(parts))
            .join()
            .expect("thread");
        assert_eq!(free_blocks(), before + 1);
    }
}
