//! The backward's first kernel: one CTA of 256 threads per query block of
//! one head. For each row: D = rowsum(dO ∘ O) and −LSE · log2(e), the
//! addend of the main kernel's exponent (`s · scale·log2e − LSE·log2e` in
//! one FFMA); −inf for a fully masked row (LSE = −inf) and for the padding
//! rows up to the block's end, so their probabilities are exactly 0. Then
//! the query block's dQ accumulator blocks and semaphore are cleared.
//!
//! Each thread reads 8 elements (16 bytes) of O and of dO per row, so a
//! row takes head_dim / 8 lanes of a warp, and it reads
//! [`ROWS_IN_FLIGHT`] rows before it sums any: their loads are in flight
//! together. (One row per warp at a time, 4-byte pairs, was latency-bound:
//! 115 µs for 16k tokens x 2048 at hdim 64, FA3's preprocess 67 µs, on an
//! H200; PERF.md, session 7.)

use super::BwdElem;
use crate::abi::bwd::BwdPreParams;
use crate::arch::fragment::lane_group_sum;
use crate::arch::global::{load_16_bytes, store_16_bytes};
use crate::arch::thread::{block_index_3d, thread_index};
use crate::attn::tiles::dq_blocks;
use crate::layout::fragment::FRAG_BLOCK_BYTES;

const THREADS: u32 = 256;
/// Elements of a row one thread reads: 16 bytes of 16-bit values.
const ELEMS_PER_THREAD: u32 = 8;
/// Rows a thread loads before it reduces them (2 x 16 bytes each).
const ROWS_IN_FLIGHT: u32 = 4;

/// # Safety
/// Launched as `BwdPreParams` documents: `out`, `dout`, `lse` validated
/// views of (batch, seqlen_q, heads, head_dim) and (batch, heads,
/// seqlen_q), head_dim a power of two from 8 to 256 with contiguous,
/// 16-byte aligned rows; the workspaces sized for (batch, heads, m_blocks).
pub(crate) unsafe fn run<E: BwdElem>(p: BwdPreParams) {
    let (m, head, batch) = block_index_3d();
    let thread = thread_index();
    let lanes = p.head_dim / ELEMS_PER_THREAD;
    let rows_per_pass = THREADS / lanes;
    let (first_row, col) = (thread / lanes, ELEMS_PER_THREAD * (thread % lanes));
    let head_row0 = (batch * p.heads + head) * p.m_blocks * p.block_m;
    let [ob, os, oh] = p.out_strides;
    let [db, ds, dh] = p.dout_strides;
    let [lb, lh, ls] = p.lse_strides;
    let mut r0 = first_row;
    while r0 < p.block_m {
        let row_of = |i: u32| m * p.block_m + r0 + i * rows_per_pass;
        let inside = |i: u32| r0 + i * rows_per_pass < p.block_m && row_of(i) < p.seqlen_q;
        let load = |i: u32| {
            if !inside(i) {
                return ([0; 4], [0; 4]);
            }
            let row = row_of(i) as u64;
            let o = batch as u64 * ob + row * os + head as u64 * oh + col as u64;
            let d = batch as u64 * db + row * ds + head as u64 * dh + col as u64;
            // SAFETY: 8 elements of row `row` (< seqlen_q) of the validated
            // views, 16-byte aligned (aligned rows, col a multiple of 8).
            unsafe {
                (
                    load_16_bytes(p.out.address() + 2 * o),
                    load_16_bytes(p.dout.address() + 2 * d),
                )
            }
        };
        let finish = |i: u32, (o, d): ([u32; 4], [u32; 4])| {
            let mut acc = 0.0f32;
            for (o, d) in o.into_iter().zip(d) {
                let ((o0, o1), (d0, d1)) = (E::unpack2(o), E::unpack2(d));
                acc += o0 * d0 + o1 * d1;
            }
            // Every lane of the warp shuffles, rows inside or not.
            let dpsum = lane_group_sum(acc, lanes);
            let r = r0 + i * rows_per_pass;
            if col != 0 || r >= p.block_m {
                return;
            }
            let neg_lse_log2 = if inside(i) {
                let at = batch as u64 * lb + head as u64 * lh + row_of(i) as u64 * ls;
                // SAFETY: inside the validated lse view.
                let lse = unsafe { *p.lse.as_mut_ptr().add(at as usize) };
                // Not −(lse · log2e): a fully masked row's −inf must stay −inf.
                if lse == f32::NEG_INFINITY {
                    f32::NEG_INFINITY
                } else {
                    -lse * core::f32::consts::LOG2_E
                }
            } else {
                f32::NEG_INFINITY
            };
            let at = (head_row0 + row_of(i)) as usize;
            // SAFETY: m < m_blocks and r < block_m: a row of this (batch,
            // head)'s m_blocks · block_m.
            unsafe {
                *p.neg_lse_log2.as_mut_ptr().add(at) = neg_lse_log2;
                *p.dpsum.as_mut_ptr().add(at) = dpsum;
            }
        };
        // All four rows' loads first (ROWS_IN_FLIGHT), named rather than
        // in an array: a runtime-indexed array went to local memory.
        const { assert!(ROWS_IN_FLIGHT == 4, "one load and one finish per row below") };
        let (a, b, c, d) = (load(0), load(1), load(2), load(3));
        finish(0, a);
        finish(1, b);
        finish(2, c);
        finish(3, d);
        r0 += ROWS_IN_FLIGHT * rows_per_pass;
    }
    let head_block = (batch * p.heads + head) * p.m_blocks + m;
    let bytes = dq_blocks(p.head_dim, p.block_m) * FRAG_BLOCK_BYTES;
    let first = p.dq_accum.address() + head_block as u64 * bytes as u64;
    let mut at = 16 * thread;
    while at < bytes {
        // SAFETY: this query block's accumulator blocks (16-byte aligned:
        // the workspace is, and blocks are 16 KiB).
        unsafe { store_16_bytes(first + at as u64, [0; 4]) };
        at += 16 * THREADS;
    }
    if thread == 0 {
        // SAFETY: this query block's semaphore.
        unsafe { *p.dq_semaphores.as_mut_ptr().add(head_block as usize) = 0 };
    }
}
