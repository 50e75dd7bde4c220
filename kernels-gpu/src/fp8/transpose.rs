//! V transposed in shared memory for the FP8 P·V GEMM
//! (`layout::fp8_transpose`): the warps of one group share the tile's
//! 4 x 4-byte blocks, 32 at a time, bank-conflict free.

use crate::arch::smem;
use crate::arch::thread::lane;
use crate::layout::fp8_transpose::{
    LOAD_XOR, STORE_XOR, WARP_STEPS, lane_offsets, step_masks, transpose_bytes,
};

/// Writes Vᵀ of the 128 x 128 e4m3 tile at `src` (keys x head dims, as TMA
/// loads it) into `dst` (head dims x keys, keys in the P packing's order);
/// warp `warp` of `warps` takes every `warps`-th step of 32 blocks
/// (`warp_block`). Callers synchronize the warps and fence `dst` for wgmma
/// afterwards.
///
/// # Safety
/// `src` and `dst` are 1024-byte aligned swizzled tiles of 16 KiB; `src`
/// is loaded and stays unwritten meanwhile, and only this call's threads
/// write `dst`.
#[inline(always)]
pub(crate) unsafe fn v_tile(src: u32, dst: u32, warp: u32, warps: u32) {
    // Two offsets per lane, moved by two XOR masks per step: what fits the
    // producer warps' 40 registers beside the tile loop (eight offsets
    // spilled 16 bytes of it).
    let (load, store) = lane_offsets(lane());
    let mut step = warp;
    while step < WARP_STEPS {
        let (load_mask, store_mask) = step_masks(step);
        let (load, store) = (load ^ load_mask, store ^ store_mask);
        // SAFETY: words of the loaded source tile (offsets < 16 KiB).
        let loaded = LOAD_XOR.map(|x| unsafe { smem::load_u32(src + (load ^ x)) });
        let words = transpose_bytes(loaded);
        // An index loop: the array's by-value iterator stayed a loop over
        // local memory.
        for j in 0..4 {
            // SAFETY: a word of the destination tile this block alone
            // writes.
            unsafe { smem::store_u32(dst + (store ^ STORE_XOR[j]), words[j]) };
        }
        step += warps;
    }
}
