//! Writes O (rounded to the element type, two columns per 32-bit store) and
//! the log-sum-exp of each row. Ordinary stores: rows past seqlen_q are
//! skipped, and an LSE row need not fill whole 16-byte chunks as TMA stores
//! would require.

use super::HalfElem;
use super::Work;
use crate::abi::fwd::FwdParams;
use crate::arch::thread::lane;
use crate::arch::wgmma::{Accumulator, Mma};
use crate::layout::fragment::accumulator;

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
    let mut low = 0.0f32;
    o.for_each(|reg, x| {
        if reg % 2 == 0 {
            low = x;
            return;
        }
        // Registers 2j and 2j + 1 are adjacent columns of one row.
        let (r, c) = accumulator(thread, reg - 1);
        let q_row = q_row0 + r;
        if q_row < p.seqlen_q {
            let at = base + q_row as u64 * os + c as u64;
            // SAFETY: inside `out` (validated shape and strides on the host);
            // `c` is even and the head dim innermost and 16-byte aligned, so
            // the 4-byte store is aligned.
            unsafe { *(p.out.as_mut_ptr().add(at as usize) as *mut u32) = E::pack2(low, x) };
        }
    });
    if lane() % 4 == 0 {
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
