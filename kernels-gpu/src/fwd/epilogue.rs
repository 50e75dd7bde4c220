//! Writes O (rounded to the element type, by `crate::epilogue`) and the
//! log-sum-exp of each row. The LSE uses ordinary stores: a row of it need
//! not fill whole 16-byte chunks as TMA stores would require.

use super::Work;
use super::input::FwdInput;
use crate::abi::fwd::FwdParams;
use crate::arch::thread::lane;
use crate::arch::wgmma::{Accumulator, Mma};
use crate::epilogue::{Rows, store_rows};
use crate::layout::fragment::accumulator;

#[inline(always)]
pub(super) fn store<E: FwdInput, const RO: usize>(
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
    let rows = Rows {
        out: p.out.address(),
        base: w.batch as u64 * ob + w.head as u64 * oh,
        row_stride: os,
        first_row: q_row0,
        rows: p.seqlen_q,
    };
    // SAFETY: `out` is validated on the host (shape, strides inside the
    // buffer, 16-byte aligned base and outer strides, contiguous head dim);
    // this tile's rows below seqlen_q are rows of it.
    unsafe { store_rows::<E::Out, RO>(o, &rows, thread) };
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
