//! The online softmax of one consumer thread's two rows (registers `4j, 4j+1`
//! hold row r, `4j+2, 4j+3` row r + 8; the four lanes of a quad share a row).
//!
//! Scores go through `exp2` with `softmax_scale · log2(e)` folded in (for
//! FP8 inputs times the dequantization factors of the query and key
//! block, which change from block to block). Each thread keeps the full
//! row maximum (quad-reduced every block) but only a partial row sum,
//! reduced once at the end.
//!
//! The maximum is kept in the scores' own units for 16-bit inputs (one
//! factor for the whole row: the kernels' instructions as before the FP8
//! forward, whose hdim 64 schedule lost 5-8% with the scaled form) and in
//! scaled log2 units for FP8 inputs, whose factor changes with the block.

use super::input::FwdInput;
use crate::arch::fragment::{exp2, fma, ln, quad_max, quad_sum, reciprocal};
use crate::arch::wgmma::{Accumulator, Mma};
use core::f32::consts::LN_2;
use core::marker::PhantomData;

/// Which of the thread's two rows accumulator register `reg` belongs to.
#[inline(always)]
pub(super) fn row(reg: u32) -> usize {
    ((reg % 4) / 2) as usize
}

pub(super) struct OnlineSoftmax<E> {
    /// Row maxima: of the raw scores (16-bit inputs) or of the scaled
    /// scores in log2 units (FP8: `E::DESCALED`).
    max: [f32; 2],
    partial_sum: [f32; 2],
    elem: PhantomData<E>,
}

impl<E: FwdInput> OnlineSoftmax<E> {
    #[inline(always)]
    pub fn new() -> Self {
        Self {
            max: [f32::NEG_INFINITY; 2],
            partial_sum: [0.0; 2],
            elem: PhantomData,
        }
    }

    /// Turns the block's scores `s` into unnormalized probabilities
    /// `exp2(s · scale_log2 - max)` (times `2^E::P_LOG2_MAX`) and folds them
    /// into the row statistics; `scale_log2 >= 0`, the same for every block
    /// of a 16-bit row. Returns the factor O must be multiplied by for the
    /// new maximum ([`Self::rescale`]); it is kept apart because O may still
    /// be in flight in a P·V wgmma here.
    #[inline(always)]
    pub fn scores<const RS: usize>(&mut self, s: &mut Accumulator<RS>, scale_log2: f32) -> [f32; 2]
    where
        Accumulator<RS>: Mma,
    {
        let mut block_max = [f32::NEG_INFINITY; 2];
        s.for_each(|reg, x| block_max[row(reg)] = block_max[row(reg)].max(x));
        let mut shift = [0.0f32; 2];
        let mut correction = [1.0f32; 2];
        for r in 0..2 {
            // A row with no visible key yet keeps max -inf: shift by 0 so
            // exp2(-inf - shift) is 0, never NaN (also for the correction
            // while the row stays empty).
            if E::DESCALED {
                // A non-negative factor keeps the maximum where it was.
                let new = self.max[r].max(quad_max(block_max[r]) * scale_log2);
                shift[r] = if new == f32::NEG_INFINITY {
                    0.0
                } else {
                    new - E::P_LOG2_MAX
                };
                correction[r] = exp2(self.max[r] - E::P_LOG2_MAX - shift[r]);
                self.max[r] = new;
            } else {
                let new = self.max[r].max(quad_max(block_max[r]));
                shift[r] = if new == f32::NEG_INFINITY {
                    0.0
                } else {
                    new * scale_log2
                };
                correction[r] = exp2(fma(self.max[r], scale_log2, -shift[r]));
                self.max[r] = new;
            }
        }
        let mut block_sum = [0.0f32; 2];
        s.update(|reg, x| {
            let p = exp2(fma(x, scale_log2, -shift[row(reg)]));
            block_sum[row(reg)] += p;
            p
        });
        for r in 0..2 {
            self.partial_sum[r] = fma(self.partial_sum[r], correction[r], block_sum[r]);
        }
        correction
    }

    /// Multiplies O's rows by `correction` (from [`Self::scores`]) times
    /// `factor` (the change of V's dequantization factor, 1 for 16-bit
    /// inputs).
    #[inline(always)]
    pub fn rescale<const RO: usize>(o: &mut Accumulator<RO>, correction: [f32; 2], factor: f32)
    where
        Accumulator<RO>: Mma,
    {
        let c = [correction[0] * factor, correction[1] * factor];
        o.update(|reg, x| x * c[row(reg)]);
    }

    /// Normalizes `o`, times `factor` (V's dequantization factor of the
    /// last block, 1 for 16-bit inputs), and returns each row's log-sum-exp
    /// (natural log of the sum of exp(scale · s), `scale` the softmax
    /// scale); a row with no visible key gets O = 0 and -inf.
    #[inline(always)]
    pub fn finish<const RO: usize>(
        &self,
        o: &mut Accumulator<RO>,
        scale: f32,
        factor: f32,
    ) -> [f32; 2]
    where
        Accumulator<RO>: Mma,
    {
        let mut inverse = [0.0f32; 2];
        let mut lse = [f32::NEG_INFINITY; 2];
        for r in 0..2 {
            let sum = quad_sum(self.partial_sum[r]);
            if sum > 0.0 {
                inverse[r] = reciprocal(sum) * factor;
                lse[r] = if E::DESCALED {
                    // P was 2^P_LOG2_MAX times larger, and so is the sum:
                    // scaled back exactly before the log. (max - 8)·ln 2 +
                    // ln(sum) instead adds two terms near ±6 and keeps their
                    // f32 rounding, 8e-7 on an lse of ln 2 (H200, 2026-12-01).
                    self.max[r] * LN_2 + ln(sum / (1u32 << E::P_LOG2_MAX as u32) as f32)
                } else {
                    self.max[r] * scale + ln(sum)
                };
            }
        }
        o.update(|reg, x| x * inverse[row(reg)]);
        lse
    }
}
