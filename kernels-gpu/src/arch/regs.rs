//! Register reallocation between warpgroups (`setmaxnreg`).
//!
//! Works only under a register cap at entry: the builder writes `.maxntid`
//! and `.minnctapersm` into each entry (otherwise ptxas says C7508 and
//! ignores it). With 384 threads and 1 block per SM the cap is 168; FA3
//! gives the producer 24 (it only issues TMA) and each of the two consumer
//! warpgroups 240 (our split: `attn::tiles::PRODUCER_REGISTERS`).

use super::intrinsics;
use super::thread::Warpgroup;

/// Gives registers back: this warpgroup will use at most `N` (24..=256,
/// multiple of 8).
#[inline(always)]
pub fn release<const N: u32>(_wg: &Warpgroup) {
    const { assert!(N >= 24 && N <= 256 && N.is_multiple_of(8)) };
    // SAFETY: warpgroup-wide, converged (the token says so).
    unsafe { intrinsics::setmaxnreg_dec(N) }
}

/// Takes registers: this warpgroup may use up to `N` (24..=256, multiple of 8).
#[inline(always)]
pub fn acquire<const N: u32>(_wg: &Warpgroup) {
    const { assert!(N >= 24 && N <= 256 && N.is_multiple_of(8)) };
    // SAFETY: warpgroup-wide, converged (the token says so).
    unsafe { intrinsics::setmaxnreg_inc(N) }
}

/// `x`, through an instruction the compiler cannot see into or move:
/// what is computed from it stays where it is written. For loop-invariant
/// values that are cheaper recomputed (from kernel parameters, which live
/// in the constant bank) than held in a register across the loop.
#[inline(always)]
pub fn opaque(x: u32) -> u32 {
    let y: u32;
    // SAFETY: a register move; not `pure`, so it is neither hoisted nor
    // merged with another.
    unsafe {
        core::arch::asm!("mov.b32 {y}, {x};", y = out(reg32) y, x = in(reg32) x,
            options(nomem, nostack, preserves_flags));
    }
    y
}
