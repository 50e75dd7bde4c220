//! V transposed in shared memory for the FP8 P·V GEMM
//! (`layout::fp8_transpose`): the threads of one group share the tile's
//! 4 x 4-byte blocks.

use crate::arch::smem;
use crate::layout::fp8_transpose::{BLOCKS, block, transpose_bytes, word_offset};

/// Writes Vᵀ of the 128 x 128 e4m3 tile at `src` (keys x head dims, as TMA
/// loads it) into `dst` (head dims x keys, keys in the P packing's order);
/// thread `thread` of `threads` takes every `threads`-th block. Callers
/// synchronize the threads and fence `dst` for wgmma afterwards.
///
/// # Safety
/// `src` and `dst` are 1024-byte aligned swizzled tiles of 16 KiB; `src`
/// is loaded and stays unwritten meanwhile, and only this call's threads
/// write `dst`.
#[inline(always)]
pub(crate) unsafe fn v_tile(src: u32, dst: u32, thread: u32, threads: u32) {
    let mut b = thread;
    while b < BLOCKS {
        let (keys, g, a) = block(b);
        // SAFETY: words of rows `keys` (< 128) of the loaded source tile.
        let loaded = keys.map(|key| unsafe { smem::load_u32(src + word_offset(key, g)) });
        let words = transpose_bytes(loaded);
        // An index loop: the array's by-value iterator stayed a loop over
        // local memory.
        for j in 0..4 {
            // SAFETY: word `a` of row 4g + j of the destination, written by
            // this block only.
            unsafe { smem::store_u32(dst + word_offset(4 * g + j, a), words[j as usize]) };
        }
        b += threads;
    }
}
