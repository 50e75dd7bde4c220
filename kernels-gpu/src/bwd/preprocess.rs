//! The backward's first kernel: one CTA of 8 warps per query block of one
//! head. Each warp takes rows in turn: D = rowsum(dO ∘ O) (the lanes
//! stride over head_dim in pairs, then a warp sum) and −LSE · log2(e), the
//! addend of the main kernel's exponent (`s · scale·log2e − LSE·log2e` in
//! one FFMA); −inf for a fully masked row (LSE = −inf) and for the padding
//! rows up to the block's end, so their probabilities are exactly 0. Then the query block's dQ accumulator
//! blocks and semaphore are cleared.

use super::BwdElem;
use crate::abi::bwd::BwdPreParams;
use crate::arch::fragment::warp_sum;
use crate::arch::global::store_16_bytes;
use crate::arch::thread::{WARP, block_index_3d, lane, thread_index};
use crate::attn::tiles::dq_blocks;
use crate::layout::fragment::FRAG_BLOCK_BYTES;

const THREADS: u32 = 256;
const WARPS: u32 = THREADS / WARP;

/// # Safety
/// Launched as `BwdPreParams` documents: `out`, `dout`, `lse` validated
/// views of (batch, seqlen_q, heads, head_dim) and (batch, heads,
/// seqlen_q), head_dim even with contiguous pairs; the workspaces sized
/// for (batch, heads, m_blocks).
pub(crate) unsafe fn run<E: BwdElem>(p: BwdPreParams) {
    let (m, head, batch) = block_index_3d();
    let (warp, lane) = (thread_index() / WARP, lane());
    let head_row0 = (batch * p.heads + head) * p.m_blocks * p.block_m;
    let [ob, os, oh] = p.out_strides;
    let [db, ds, dh] = p.dout_strides;
    let [lb, lh, ls] = p.lse_strides;
    let mut r = warp;
    while r < p.block_m {
        let row = m * p.block_m + r;
        let (neg_lse_log2, dpsum) = if row < p.seqlen_q {
            let o_row = batch as u64 * ob + row as u64 * os + head as u64 * oh;
            let d_row = batch as u64 * db + row as u64 * ds + head as u64 * dh;
            let mut acc = 0.0f32;
            let mut col = 2 * lane;
            while col < p.head_dim {
                // SAFETY: a pair of row `row` (< seqlen_q) of the validated
                // views; 4-byte aligned (even column, 16-byte aligned rows).
                let (o, d) = unsafe {
                    (
                        *(p.out.as_mut_ptr().add((o_row + col as u64) as usize) as *const u32),
                        *(p.dout.as_mut_ptr().add((d_row + col as u64) as usize) as *const u32),
                    )
                };
                let ((o0, o1), (d0, d1)) = (E::unpack2(o), E::unpack2(d));
                acc += o0 * d0 + o1 * d1;
                col += 2 * WARP;
            }
            let at = batch as u64 * lb + head as u64 * lh + row as u64 * ls;
            // SAFETY: inside the validated lse view.
            let lse = unsafe { *p.lse.as_mut_ptr().add(at as usize) };
            // Not −(lse · log2e): a fully masked row's −inf must stay −inf.
            let neg_lse_log2 = if lse == f32::NEG_INFINITY {
                f32::NEG_INFINITY
            } else {
                -lse * core::f32::consts::LOG2_E
            };
            (neg_lse_log2, warp_sum(acc))
        } else {
            (f32::NEG_INFINITY, 0.0)
        };
        if lane == 0 {
            let at = (head_row0 + row) as usize;
            // SAFETY: row < m_blocks · block_m of this (batch, head).
            unsafe {
                *p.neg_lse_log2.as_mut_ptr().add(at) = neg_lse_log2;
                *p.dpsum.as_mut_ptr().add(at) = dpsum;
            }
        }
        r += WARPS;
    }
    let head_block = (batch * p.heads + head) * p.m_blocks + m;
    let bytes = dq_blocks(p.head_dim, p.block_m) * FRAG_BLOCK_BYTES;
    let first = p.dq_accum.address() + head_block as u64 * bytes as u64;
    let mut at = 16 * thread_index();
    while at < bytes {
        // SAFETY: this query block's accumulator blocks (16-byte aligned:
        // the workspace is, and blocks are 16 KiB).
        unsafe { store_16_bytes(first + at as u64, [0; 4]) };
        at += 16 * THREADS;
    }
    if thread_index() == 0 {
        // SAFETY: this query block's semaphore.
        unsafe { *p.dq_semaphores.as_mut_ptr().add(head_block as usize) = 0 };
    }
}
