//! f32 fragment-order partials to 16-bit gradient rows: one CTA (one
//! warpgroup) per 64-row, 64-column block of one output head; the sources
//! of a group are summed in head order, so the result does not depend on
//! which CTA wrote them when (dQ, and GQA's dK and dV).

use crate::abi::bwd::BwdConvertParams;
use crate::arch::thread::{block_index_3d, thread_index};
use crate::arch::wgmma::{Accumulator, Mma};
use crate::attn::tiles::fragment_block;
use crate::epilogue::{Rows, Store16, add_fragment_block, store_rows};
use crate::layout::fragment::FRAG_BLOCK_BYTES;

/// Rows and columns of one fragment-order block.
const BLOCK: u32 = 64;

/// # Safety
/// Launched as `BwdConvertParams` documents, with `out` a validated view of
/// (batch, rows, heads_out, parts · 64) and `src` holding every block the
/// grid reads.
pub(crate) unsafe fn run<E: Store16>(p: BwdConvertParams) {
    let (x, head, batch) = block_index_3d();
    let (row_block, part) = (x / p.parts, x % p.parts);
    let thread = thread_index();
    let mut acc = Accumulator::<32>::zeroed();
    for g in 0..p.group {
        let src_head = head * p.group + g;
        let head_row = batch * p.src_heads + src_head;
        let block = fragment_block(head_row, p.row_blocks, p.parts, row_block, part);
        let at = p.src.address() + block as u64 * FRAG_BLOCK_BYTES as u64;
        // SAFETY: a block of the source (contract), written by the kernels
        // before this one on the stream.
        unsafe { add_fragment_block(&mut acc, at, thread) };
    }
    let scale = p.scale;
    acc.update(|_, x| x * scale);
    let [ob, os, oh] = p.out_strides;
    let rows = Rows {
        out: p.out.address(),
        base: batch as u64 * ob + head as u64 * oh + (part * BLOCK) as u64,
        row_stride: os,
        first_row: row_block * BLOCK,
        rows: p.rows,
    };
    // SAFETY: `out` validated (contract); 64 columns from a multiple of 64
    // keep its 16-byte alignment.
    unsafe { store_rows::<E, 32>(&acc, &rows, thread) };
}
