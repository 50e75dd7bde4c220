//! The online softmax of one consumer thread's two rows (registers `4j, 4j+1`
//! hold row r, `4j+2, 4j+3` row r + 8; the four lanes of a quad share a row).
//!
//! Scores go through `exp2` with the block's `softmax_scale · log2(e)` (times
//! the FP8 dequantization factors of the query and key block) folded in;
//! the row maximum is kept in those scaled units, so the factor may change
//! from block to block. Each thread keeps the full row maximum
//! (quad-reduced every block) but only a partial row sum, reduced once at
//! the end.

use crate::arch::fragment::{exp2, fma, ln, quad_max, quad_sum, reciprocal};
use crate::arch::wgmma::{Accumulator, Mma};
use core::f32::consts::LN_2;

/// Which of the thread's two rows accumulator register `reg` belongs to.
#[inline(always)]
pub(super) fn row(reg: u32) -> usize {
    ((reg % 4) / 2) as usize
}

pub(super) struct OnlineSoftmax {
    /// Row maxima of the scaled scores, log2 units.
    max: [f32; 2],
    partial_sum: [f32; 2],
    /// log2 of the largest probability: P lies in `[0, 2^p_log2_max]`
    /// (`FwdInput::P_LOG2_MAX`).
    p_log2_max: f32,
}

impl OnlineSoftmax {
    #[inline(always)]
    pub fn new(p_log2_max: f32) -> Self {
        Self {
            max: [f32::NEG_INFINITY; 2],
            partial_sum: [0.0; 2],
            p_log2_max,
        }
    }

    /// Turns the block's scores `s` into unnormalized probabilities
    /// `exp2(s · scale_log2 - max)` (times `2^p_log2_max`) and folds them into
    /// the row statistics; `scale_log2 >= 0`. Returns the factor O must be
    /// multiplied by for the new maximum ([`Self::rescale`]); it is kept
    /// apart because O may still be in flight in a P·V wgmma here.
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
            // A non-negative factor keeps the maximum where it was.
            let new = self.max[r].max(quad_max(block_max[r]) * scale_log2);
            // A row with no visible key yet keeps max -inf: shift by 0 so
            // exp2(-inf - shift) is 0, never NaN.
            shift[r] = if new == f32::NEG_INFINITY {
                0.0
            } else {
                new - self.p_log2_max
            };
            correction[r] = exp2(self.max[r] - new);
            self.max[r] = new;
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
    /// (natural log of the sum of exp(scale · s)); a row with no visible
    /// key gets O = 0 and -inf.
    #[inline(always)]
    pub fn finish<const RO: usize>(&self, o: &mut Accumulator<RO>, factor: f32) -> [f32; 2]
    where
        Accumulator<RO>: Mma,
    {
        let mut inverse = [0.0f32; 2];
        let mut lse = [f32::NEG_INFINITY; 2];
        for r in 0..2 {
            let sum = quad_sum(self.partial_sum[r]);
            if sum > 0.0 {
                inverse[r] = reciprocal(sum) * factor;
                lse[r] = (self.max[r] - self.p_log2_max) * LN_2 + ln(sum);
            }
        }
        o.update(|reg, x| x * inverse[row(reg)]);
        lse
    }
}
