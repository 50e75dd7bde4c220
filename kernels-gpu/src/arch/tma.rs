//! TMA (the tensor memory accelerator): bulk tensor copies between global
//! and shared memory, described by a tensor map the host encoded.
//!
//! The tensor map lives in global memory (64-byte aligned) and the kernel
//! gets its address: a by-value 64-byte-aligned parameter crashes rustc, and
//! taking a parameter's address copies it to local memory, where TMA cannot
//! read it (hopper-notes.md, section 3).

use super::elem::Element;
use super::mbarrier::MBarrier;
use super::thread::{Elected, trap};
use crate::abi::{GlobalPtr, TensorMap};
use core::arch::asm;

/// Fetches the tensor map into the TMA unit's cache ahead of first use.
#[inline(always)]
pub fn prefetch(map: GlobalPtr<TensorMap>) {
    // SAFETY: a prefetch; a bad address only wastes it.
    unsafe { asm!("prefetch.tensormap [{m}];", m = in(reg64) map.address()) }
}

/// Loads `cols` columns (a multiple of `128 / E::BYTES`, or one 64-byte
/// row) of `rows` rows of a 4-D (column, row, head, batch) tensor of `E`,
/// rows from `at[0]` of head `at[1]` and batch `at[2]`, as column blocks
/// of `rows · segment` bytes from `dst` (a swizzled `Tile`'s layout), one
/// box each, `segment` being `layout::swizzle::segment_bytes` of the row.
///
/// # Safety
/// As [`load`] for every box: `map`'s box is (`segment / E::BYTES`,
/// `rows`, 1, 1) with the matching swizzle, `dst..dst + cols · rows ·
/// E::BYTES` is 1024-byte aligned and reserved for these loads, `bar`
/// expects their bytes, and row `at[0]` lies inside the tensor.
#[inline(always)]
pub unsafe fn load_rows<E: Element>(
    one: &Elected,
    map: GlobalPtr<TensorMap>,
    dst: u32,
    bar: &MBarrier,
    (rows, cols): (u32, u32),
    at: [i32; 3],
) {
    let row_bytes = crate::layout::swizzle::segment_bytes(cols * E::BYTES);
    let box_cols = row_bytes / E::BYTES;
    for b in 0..cols / box_cols {
        let coords = [(b * box_cols) as i32, at[0], at[1], at[2]];
        // SAFETY: column block b of the reserved tile (contract).
        unsafe { load(one, map, dst + b * rows * row_bytes, bar, coords) };
    }
}

/// Loads the box at `coords` (innermost first, may lie partly or wholly out
/// of bounds: those elements read as zero) into shared memory at `dst`,
/// completing `bar`'s transaction count with the box's bytes.
///
/// # Safety
/// `map` is a valid tensor map whose box fits at `dst` (1024-byte aligned for
/// 128-byte swizzle), and `bar` expects those bytes (`arrive_expect_tx`).
/// `coords[0]` times the element size is a multiple of 16 bytes: otherwise
/// the instruction faults with "illegal instruction" (measured on an H200).
#[inline(always)]
pub unsafe fn load<const RANK: usize>(
    _one: &Elected,
    map: GlobalPtr<TensorMap>,
    dst: u32,
    bar: &MBarrier,
    coords: [i32; RANK],
) {
    const { assert!(RANK >= 2 && RANK <= 4, "TMA loads here are 2-D to 4-D") };
    let m = map.address();
    let b = bar.addr();
    // SAFETY: per the contract; one thread issues (the token).
    unsafe {
        match RANK {
            2 => asm!(
                "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [{d}], [{m}, {{{c0}, {c1}}}], [{b}];",
                d = in(reg32) dst, m = in(reg64) m, b = in(reg32) b,
                c0 = in(reg32) coords[0], c1 = in(reg32) coords[1],
            ),
            3 => asm!(
                "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [{d}], [{m}, {{{c0}, {c1}, {c2}}}], [{b}];",
                d = in(reg32) dst, m = in(reg64) m, b = in(reg32) b,
                c0 = in(reg32) coords[0], c1 = in(reg32) coords[1], c2 = in(reg32) coords[2],
            ),
            4 => asm!(
                "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [{d}], [{m}, {{{c0}, {c1}, {c2}, {c3}}}], [{b}];",
                d = in(reg32) dst, m = in(reg64) m, b = in(reg32) b,
                c0 = in(reg32) coords[0], c1 = in(reg32) coords[1],
                c2 = in(reg32) coords[2], c3 = in(reg32) coords[3],
            ),
            _ => trap(),
        }
    }
}

/// Stores the box at `coords` from shared memory at `src` (elements out of
/// bounds are not written). Completes asynchronously: [`commit_group`], then
/// [`wait_group_read`] before `src` is reused and [`wait_group`] before the
/// data must be visible.
///
/// # Safety
/// `map` is a valid tensor map whose box is at `src`; generic-proxy writes
/// to `src` were fenced with `fence_proxy_async_shared` and a barrier;
/// `coords[0]` is 16-byte aligned as for [`load`].
#[inline(always)]
pub unsafe fn store<const RANK: usize>(
    _one: &Elected,
    map: GlobalPtr<TensorMap>,
    src: u32,
    coords: [i32; RANK],
) {
    const { assert!(RANK >= 2 && RANK <= 4, "TMA stores here are 2-D to 4-D") };
    let m = map.address();
    // SAFETY: per the contract; one thread issues (the token).
    unsafe {
        match RANK {
            2 => asm!(
                "cp.async.bulk.tensor.2d.global.shared::cta.tile.bulk_group [{m}, {{{c0}, {c1}}}], [{s}];",
                m = in(reg64) m, s = in(reg32) src,
                c0 = in(reg32) coords[0], c1 = in(reg32) coords[1],
            ),
            3 => asm!(
                "cp.async.bulk.tensor.3d.global.shared::cta.tile.bulk_group [{m}, {{{c0}, {c1}, {c2}}}], [{s}];",
                m = in(reg64) m, s = in(reg32) src,
                c0 = in(reg32) coords[0], c1 = in(reg32) coords[1], c2 = in(reg32) coords[2],
            ),
            4 => asm!(
                "cp.async.bulk.tensor.4d.global.shared::cta.tile.bulk_group [{m}, {{{c0}, {c1}, {c2}, {c3}}}], [{s}];",
                m = in(reg64) m, s = in(reg32) src,
                c0 = in(reg32) coords[0], c1 = in(reg32) coords[1],
                c2 = in(reg32) coords[2], c3 = in(reg32) coords[3],
            ),
            _ => trap(),
        }
    }
}

/// Closes the group of bulk stores issued so far by this thread.
#[inline(always)]
pub fn commit_group(_one: &Elected) {
    // SAFETY: no operands.
    unsafe { asm!("cp.async.bulk.commit_group;") }
}

/// Waits until at most `N` store groups still read their shared source.
#[inline(always)]
pub fn wait_group_read<const N: u32>(_one: &Elected) {
    // SAFETY: no memory operands.
    unsafe { asm!("cp.async.bulk.wait_group.read {n};", n = const N) }
}

/// Waits until at most `N` store groups are still writing global memory.
#[inline(always)]
pub fn wait_group<const N: u32>(_one: &Elected) {
    // SAFETY: no memory operands.
    unsafe { asm!("cp.async.bulk.wait_group {n};", n = const N) }
}
