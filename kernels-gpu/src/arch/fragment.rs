//! Register-level helpers on wgmma fragments: row reductions across a quad
//! and packing f32 accumulators into 16-bit A operands.
//!
//! Which element each register holds is in `crate::layout::fragment`.

use super::elem::{Bf16, E4m3, F16};
use super::intrinsics;
use super::wgmma::{Accumulator, FragA};
use crate::layout::fragment::{accumulator_to_a_k16, accumulator_to_a_k32};
use core::arch::asm;

/// `value` combined over the 4 lanes of the calling quad (the lanes holding
/// one accumulator row) with `max`.
#[inline(always)]
pub fn quad_max(value: f32) -> f32 {
    let a = value.max(shfl_xor(value, 1));
    a.max(shfl_xor(a, 2))
}

/// `value` summed over the 4 lanes of the calling quad.
#[inline(always)]
pub fn quad_sum(value: f32) -> f32 {
    let a = value + shfl_xor(value, 1);
    a + shfl_xor(a, 2)
}

/// Transposes a 4 x 4 block of words across the calling quad: lane `q` (of
/// the quad) passes the words `x[t]` and gets back word `q` of each lane,
/// `y[s]` = lane `s`'s `x[q]`. Two butterfly steps of two shuffles each:
/// swap the off-diagonal 2 x 2 blocks (xor 2), then the off-diagonal words
/// inside each block (xor 1); which word a lane sends is a select, never a
/// runtime index (that would put `x` in local memory).
#[inline(always)]
pub fn quad_transpose(mut x: [u32; 4], q: u32) -> [u32; 4] {
    let swap = |x: &mut [u32; 4], mask: u32, a: usize, b: usize| {
        // The lane with `mask` set keeps `b` and swaps `a`; its partner the
        // other way round.
        let high = q & mask != 0;
        let send = if high { x[a] } else { x[b] };
        let got = shfl_xor(f32::from_bits(send), mask).to_bits();
        if high {
            x[a] = got;
        } else {
            x[b] = got;
        }
    };
    swap(&mut x, 2, 0, 2);
    swap(&mut x, 2, 1, 3);
    swap(&mut x, 1, 0, 1);
    swap(&mut x, 1, 2, 3);
    x
}

/// `value` summed over each aligned group of `lanes` lanes (a power of two,
/// 1 to 32; the same in every lane of the warp): every lane of a group gets
/// its group's sum.
#[inline(always)]
pub fn lane_group_sum(value: f32, lanes: u32) -> f32 {
    lane_group_reduce(value, lanes, |a, b| a + b)
}

/// The maximum of `value` over the whole warp: every lane gets it.
#[inline(always)]
pub fn warp_max(value: f32) -> f32 {
    lane_group_reduce(value, 32, f32::max)
}

/// `value` reduced by `op` over each aligned group of `lanes` lanes.
#[inline(always)]
fn lane_group_reduce(value: f32, lanes: u32, op: impl Fn(f32, f32) -> f32) -> f32 {
    // Five steps, each taken or not: straight-line code (a loop over the
    // masks put arrays of the callers in local memory).
    let step = |x: f32, mask: u32| {
        if mask < lanes {
            op(x, shfl_xor(x, mask))
        } else {
            x
        }
    };
    step(step(step(step(step(value, 16), 8), 4), 2), 1)
}

/// Lane `lane ^ mask`'s `value`; every lane of the warp must execute it.
#[inline(always)]
pub fn shfl_xor(value: f32, mask: u32) -> f32 {
    // SAFETY: a full-warp butterfly shuffle; every lane executes it.
    unsafe { intrinsics::shfl_bfly_f32(u32::MAX, value, mask, 0x1f) }
}

/// PTX `prmt.b32`: four bytes picked from the eight of `b:a` by the
/// nibbles of `selector` (`layout::fp8_transpose::byte_perm` says which).
#[inline(always)]
pub fn byte_perm(a: u32, b: u32, selector: u32) -> u32 {
    let out: u32;
    // SAFETY: a register permute, no memory.
    unsafe {
        asm!("prmt.b32 {o}, {a}, {b}, {s};", o = out(reg32) out, a = in(reg32) a, b = in(reg32) b, s = in(reg32) selector, options(pure, nomem, nostack))
    }
    out
}

/// Two f32 rounded to bf16 (nearest even) in one register, `lo` in the low half.
#[inline(always)]
pub fn pack_bf16x2(lo: f32, hi: f32) -> u32 {
    let out: u32;
    // SAFETY: a conversion; cvt puts its first source in the high half.
    unsafe {
        asm!("cvt.rn.bf16x2.f32 {o}, {h}, {l};", o = out(reg32) out, h = in(reg32) hi, l = in(reg32) lo)
    }
    out
}

/// Two f32 rounded to f16 (nearest even) in one register, `lo` in the low half.
#[inline(always)]
pub fn pack_f16x2(lo: f32, hi: f32) -> u32 {
    let out: u32;
    // SAFETY: as `pack_bf16x2`.
    unsafe {
        asm!("cvt.rn.f16x2.f32 {o}, {h}, {l};", o = out(reg32) out, h = in(reg32) hi, l = in(reg32) lo)
    }
    out
}

/// Four f32 rounded to e4m3 (nearest even, saturated to ±448) in one
/// word, `x[0]` in the lowest byte.
#[inline(always)]
pub fn pack_e4m3x4(x: [f32; 4]) -> u32 {
    let (lo, hi): (u32, u32);
    // SAFETY: conversions; cvt puts its first source in the high byte of
    // the pair.
    unsafe {
        asm!(
            "{{ .reg .b16 l, h; cvt.rn.satfinite.e4m3x2.f32 l, {b}, {a}; cvt.rn.satfinite.e4m3x2.f32 h, {d}, {c}; cvt.u32.u16 {lo}, l; cvt.u32.u16 {hi}, h; }}",
            a = in(reg32) x[0],
            b = in(reg32) x[1],
            c = in(reg32) x[2],
            d = in(reg32) x[3],
            lo = out(reg32) lo,
            hi = out(reg32) hi,
        )
    }
    lo | (hi << 16)
}

/// The two bf16 of a register as f32 (`lo` half first): bf16 is the upper
/// half of an f32, so this is exact and needs no conversion instruction.
#[inline(always)]
pub fn unpack_bf16x2(w: u32) -> (f32, f32) {
    (f32::from_bits(w << 16), f32::from_bits(w & 0xffff_0000))
}

/// The two f16 of a register as f32 (`lo` half first), exactly.
#[inline(always)]
pub fn unpack_f16x2(w: u32) -> (f32, f32) {
    let (lo, hi): (f32, f32);
    // SAFETY: conversions of register halves.
    unsafe {
        asm!(
            "{{ .reg .b16 l, h; mov.b32 {{l, h}}, {w}; cvt.f32.f16 {lo}, l; cvt.f32.f16 {hi}, h; }}",
            w = in(reg32) w,
            lo = out(reg32) lo,
            hi = out(reg32) hi,
        )
    }
    (lo, hi)
}

impl<const R: usize> Accumulator<R> {
    /// Columns `16 kb .. 16 kb + 16` of this accumulator, rounded to bf16, as
    /// the k16 A operand of the next GEMM (P·V with P = this, never through
    /// shared memory).
    #[inline(always)]
    pub fn to_a_bf16(&self, kb: u32) -> FragA<Bf16> {
        FragA::new(self.pack(kb, pack_bf16x2))
    }

    /// As [`Self::to_a_bf16`], rounded to f16.
    #[inline(always)]
    pub fn to_a_f16(&self, kb: u32) -> FragA<F16> {
        FragA::new(self.pack(kb, pack_f16x2))
    }

    /// Columns `32 kb .. 32 kb + 32` of this accumulator, rounded to e4m3
    /// (saturated), as the k32 A operand of the next GEMM: the thread's own
    /// registers, with the keys in the order `fp8_key_of_k` gives, which
    /// the B operand's rows must follow (`layout::fragment`).
    #[inline(always)]
    pub fn to_a_e4m3(&self, kb: u32) -> FragA<E4m3> {
        FragA::new(core::array::from_fn(|reg| {
            let [a, b, c, d] = accumulator_to_a_k32(kb, reg as u32);
            pack_e4m3x4([a, b, c, d].map(|i| self.regs[i as usize]))
        }))
    }

    #[inline(always)]
    fn pack(&self, kb: u32, pack2: fn(f32, f32) -> u32) -> [u32; 4] {
        let mut regs = [0u32; 4];
        for (reg, slot) in regs.iter_mut().enumerate() {
            let (lo, hi) = accumulator_to_a_k16(kb, reg as u32);
            *slot = pack2(self.regs[lo as usize], self.regs[hi as usize]);
        }
        regs
    }
}

/// `a * b + c` rounded once (FFMA). Rust keeps `a * b + c` as a multiply
/// and an add: in the backward's exponentials that was 32 instructions of
/// 534 per hdim-128 step more than FA3's FFMA.
#[inline(always)]
pub fn fma(a: f32, b: f32, c: f32) -> f32 {
    // SAFETY: a per-thread arithmetic intrinsic without side effects.
    unsafe { intrinsics::fma_f32(a, b, c) }
}

/// `2^x` (MUFU.EX2; -inf gives +0, as the softmax of masked scores needs).
#[inline(always)]
pub fn exp2(x: f32) -> f32 {
    let y: f32;
    // SAFETY: a per-thread special-function instruction.
    unsafe { asm!("ex2.approx.ftz.f32 {y}, {x};", y = out(reg32) y, x = in(reg32) x) }
    y
}

/// `1 / x` (MUFU.RCP, within 1 ulp), for normalizing O. A correctly rounded
/// `1.0 / x` compiles to a subroutine call (`CALL.REL.NOINC`) with a slow
/// path; O is rounded to 16 bits anyway.
#[inline(always)]
pub fn reciprocal(x: f32) -> f32 {
    let y: f32;
    // SAFETY: a per-thread special-function instruction.
    unsafe { asm!("rcp.approx.ftz.f32 {y}, {x};", y = out(reg32) y, x = in(reg32) x) }
    y
}

/// Natural logarithm (MUFU.LG2 times ln 2), for the log-sum-exp.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    let y: f32;
    // SAFETY: a per-thread special-function instruction.
    unsafe { asm!("lg2.approx.ftz.f32 {y}, {x};", y = out(reg32) y, x = in(reg32) x) }
    y * core::f32::consts::LN_2
}
