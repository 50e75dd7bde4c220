//! TMA load -> shared memory -> staged by ordinary stores -> TMA store, one
//! box per block.

use crate::abi::selftest::{TmaRoundTripParams, tma_round_trip_smem_bytes};
use crate::arch::mbarrier::{MBarrier, init_for_one_issuer};
use crate::arch::smem;
use crate::arch::sync::{fence_proxy_async_shared, sync_block};
use crate::arch::thread::{block_index, thread_index, trap};
use crate::arch::tma;

/// # Safety
/// Launched with 128 threads, `tma_round_trip_smem_bytes(box_bytes)` bytes
/// of dynamic shared memory, one block per origin, and maps whose box is
/// `box_bytes` (see `TmaRoundTripParams`).
pub(crate) unsafe fn round_trip<const RANK: usize>(p: TmaRoundTripParams) {
    let tile = smem::base();
    if tile & 1023 != 0 {
        trap(); // the 128-byte swizzle needs a 1024-byte aligned box
    }
    // The staging tile and the barrier follow the box (tma_round_trip_smem_bytes).
    let staged = tile + (tma_round_trip_smem_bytes(p.box_bytes) - 8) / 2;
    // SAFETY: the last 8 bytes are the barrier's.
    let bar = unsafe { MBarrier::at(tile + tma_round_trip_smem_bytes(p.box_bytes) - 8) };
    let block = block_index();
    // SAFETY: one origin per block (launch contract).
    let origin = unsafe { *p.origins.as_mut_ptr().add(block as usize) };
    let coords: [i32; RANK] = core::array::from_fn(|i| origin[i]);

    let issuer = init_for_one_issuer(&bar);
    if let Some(one) = &issuer {
        tma::prefetch(p.src);
        bar.arrive_expect_tx(p.box_bytes);
        // SAFETY: the box fits at `tile`; the barrier expects its bytes.
        unsafe { tma::load(one, p.src, tile, &bar, coords) };
    }
    bar.wait(0);

    let words = p.box_bytes / 4;
    let mut i = thread_index();
    while i < words {
        // SAFETY: inside the box, written by the completed TMA load; the
        // staging tile is this block's alone; the dump holds `words` words
        // per block.
        unsafe {
            let word = smem::load_u32(tile + 4 * i);
            smem::store_u32(staged + 4 * i, word);
            *p.smem_dump.as_mut_ptr().add((block * words + i) as usize) = word;
        }
        i += 128;
    }
    // Ordinary (generic-proxy) stores must be ordered before the TMA store
    // (async proxy) reads them: each writer fences, then the block syncs.
    fence_proxy_async_shared();
    sync_block();

    if let Some(one) = &issuer {
        // SAFETY: the staged box was written by this block and fenced above.
        unsafe { tma::store(one, p.dst, staged, coords) };
        tma::commit_group(one);
        tma::wait_group::<0>(one);
    }
}
