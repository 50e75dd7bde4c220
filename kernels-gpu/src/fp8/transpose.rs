//! V transposed in shared memory for the FP8 P·V GEMM
//! (`layout::fp8_transpose`): the warps of one group share the tile's
//! 4 x 4-byte blocks, 32 at a time, without bank conflicts on the stores
//! (nor on the loads of 128-byte source rows).

use crate::arch::fragment::byte_perm;
use crate::arch::smem;
use crate::arch::thread::lane;
use crate::layout::fp8_transpose::{
    STORE_XOR, TILE, lane_offsets, load_xor, step_masks, transpose_bytes, warp_steps,
};

/// Writes Vᵀ of a 128-key stage of `D` head dims at `v` (as TMA loads it:
/// one tile of 64-byte rows at head_dim 64, else a 128-byte column block
/// of head dims per tile) into the stage at `vt` (head dims 128c.. in
/// tile c); warp `warp` of `warps`, as [`v_tile`].
///
/// # Safety
/// As [`v_tile`] for every tile of the two stages.
#[inline(always)]
pub(crate) unsafe fn v_stage<const D: u32>(v: u32, vt: u32, warp: u32, warps: u32) {
    const {
        assert!(
            D == 64 || D.is_multiple_of(TILE),
            "64-byte rows or 128-byte column blocks"
        )
    };
    if D == 64 {
        // SAFETY: the stages' one tile (contract).
        unsafe { v_tile::<64>(v, vt, warp, warps) };
    } else {
        for c in 0..D / TILE {
            let block = c * TILE * TILE;
            // SAFETY: tile c of both stages (contract).
            unsafe { v_tile::<128>(v + block, vt + block, warp, warps) };
        }
    }
}

/// Writes Vᵀ of the 128-key e4m3 tile at `src` (keys x `ROW` bytes of head
/// dims, as TMA loads it: a 128-byte column block, or head_dim 64's
/// 64-byte rows) into `dst` (`ROW` head dims x 128 keys, keys in the P
/// packing's order); warp `warp` of `warps` takes every `warps`-th step of
/// 32 blocks (`warp_block`). Callers synchronize the warps and fence `dst`
/// for wgmma afterwards.
///
/// # Safety
/// `src` and `dst` are 1024-byte aligned swizzled tiles of `128 · ROW`
/// bytes; `src` is loaded and stays unwritten meanwhile, and only this
/// call's threads write `dst`.
#[inline(always)]
pub(crate) unsafe fn v_tile<const ROW: u32>(src: u32, dst: u32, warp: u32, warps: u32) {
    // Two offsets per lane, moved by two XOR masks per step: eight offsets
    // spilled 16 bytes at 40 registers, and two blocks in flight need the
    // FP8 split's 56 (`attn::tiles::FP8_PRODUCER_REGISTERS`).
    let (load, store) = lane_offsets::<ROW>(lane());
    let load_block = |step: u32| {
        let (load_mask, store_mask) = step_masks::<ROW>(step);
        let (load, store) = (load ^ load_mask, store ^ store_mask);
        // SAFETY: words of the loaded source tile (offsets < 128 · ROW).
        let words = load_xor::<ROW>().map(|x| unsafe { smem::load_u32(src + (load ^ x)) });
        (words, store)
    };
    let store_block = |(words, store): ([u32; 4], u32)| {
        let words = transpose_bytes(words, byte_perm);
        // An index loop: the array's by-value iterator stayed a loop over
        // local memory.
        for j in 0..4 {
            // SAFETY: a word of the destination tile this block alone
            // writes.
            unsafe { smem::store_u32(dst + (store ^ STORE_XOR[j]), words[j]) };
        }
    };
    // Two steps per trip, both blocks' loads before either's stores: one
    // warp per SM sub-partition runs this, so its speed is the latency of
    // a step's chain (offsets, loads, permutes, stores), which two
    // independent steps overlap.
    let mut step = warp;
    while step + warps < warp_steps::<ROW>() {
        let (first, second) = (load_block(step), load_block(step + warps));
        store_block(first);
        store_block(second);
        step += 2 * warps;
    }
    if step < warp_steps::<ROW>() {
        store_block(load_block(step));
    }
}
