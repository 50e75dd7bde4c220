//! Writes O (rounded to the element type) and the log-sum-exp of each row.
//!
//! O goes out in 16-byte stores: a quad holds 8 columns of a row as four
//! 2-column registers per 8-column group; a 4 x 4 transpose across the quad
//! (`arch::fragment::quad_transpose`) gives each lane 8 contiguous columns
//! of one of four groups, so a warp writes 64-byte row segments instead of
//! 16-byte ones. Rows past seqlen_q are skipped (a TMA store would need a
//! staging tile in shared memory, which the K/V stages fill at hdim 128).
//! The LSE uses ordinary stores: a row of it need not fill whole 16-byte
//! chunks as TMA stores would require.

use super::HalfElem;
use super::Work;
use crate::abi::fwd::FwdParams;
use crate::arch::fragment::quad_transpose;
use crate::arch::global::store_16_bytes;
use crate::arch::thread::lane;
use crate::arch::wgmma::{Accumulator, Mma};
use crate::layout::fragment::accumulator;

/// Accumulator registers per group of four 8-column blocks.
const GROUP_REGS: u32 = 16;

#[inline(always)]
pub(super) fn store<E: HalfElem, const RO: usize>(
    p: &FwdParams,
    w: &Work,
    o: &Accumulator<RO>,
    lse: [f32; 2],
    q_row0: u32,
    thread: u32,
) where
    Accumulator<RO>: Mma,
{
    let [ob, os, oh] = p.out_strides;
    let base = w.batch as u64 * ob + w.head as u64 * oh;
    let q = lane() % 4;
    let out = p.out.address();
    let mut low = 0.0f32;
    // [row half][block of the group]: the packed pairs of the current group.
    let mut group = [[0u32; 4]; 2];
    o.for_each(|reg, x| {
        if reg % 2 == 0 {
            low = x;
            return;
        }
        // Register 4j + 2h + 1 closes the pair (row half h, block j).
        let (block, half) = (reg / 4, (reg % 4) / 2);
        group[half as usize][(block % 4) as usize] = E::pack2(low, x);
        if reg % GROUP_REGS != GROUP_REGS - 1 {
            return;
        }
        for (half, words) in group.iter().enumerate() {
            // After the transpose this lane holds block 4g + q of its row.
            let (r, _) = accumulator(thread, 2 * half as u32);
            let col = 8 * (block - block % 4 + q);
            let words = quad_transpose(*words, q);
            let q_row = q_row0 + r;
            if q_row < p.seqlen_q {
                let at = base + q_row as u64 * os + col as u64;
                // SAFETY: inside `out` (validated shape and strides on the
                // host); the view's base and outer strides are 16-byte
                // aligned and its head dim contiguous, so 8 elements from a
                // multiple-of-8 column are one aligned 16-byte chunk.
                unsafe { store_16_bytes(out + E::BYTES as u64 * at, words) };
            }
        }
    });
    if lane() & 3 == 0 {
        let [lb, lh, ls] = p.lse_strides;
        // Two explicit calls, not a loop: a runtime index into `lse` would
        // put it in local memory.
        let write = |local_row: u32, value: f32| {
            let q_row = q_row0 + local_row;
            if q_row < p.seqlen_q {
                let at = w.batch as u64 * lb + w.head as u64 * lh + q_row as u64 * ls;
                // SAFETY: inside `lse` (validated on the host).
                unsafe { *p.lse.as_mut_ptr().add(at as usize) = value };
            }
        };
        // Register 0 holds the thread's first row, register 2 its second.
        write(accumulator(thread, 0).0, lse[0]);
        write(accumulator(thread, 2).0, lse[1]);
    }
}
