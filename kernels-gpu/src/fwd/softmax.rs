//! The online softmax of one consumer thread's two rows (registers `4j, 4j+1`
//! hold row r, `4j+2, 4j+3` row r + 8; the four lanes of a quad share a row).
//!
//! Scores go through `exp2` with `softmax_scale · log2(e)` folded in. Each
//! thread keeps the full row maximum (quad-reduced every block) but only a
//! partial row sum, reduced once at the end.

use crate::arch::fragment::{exp2, fma, ln, quad_max, quad_sum, reciprocal};
use crate::arch::wgmma::{Accumulator, Mma};

/// Which of the thread's two rows accumulator register `reg` belongs to.
#[inline(always)]
pub(super) fn row(reg: u32) -> usize {
    ((reg % 4) / 2) as usize
}

pub(super) struct OnlineSoftmax {
    max: [f32; 2],
    partial_sum: [f32; 2],
    scale_log2: f32,
}

impl OnlineSoftmax {
    #[inline(always)]
    pub fn new(scale_log2: f32) -> Self {
        Self {
            max: [f32::NEG_INFINITY; 2],
            partial_sum: [0.0; 2],
            scale_log2,
        }
    }

    /// Turns the block's scores `s` into unnormalized probabilities and
    /// folds them into the row statistics. Returns the factor O must be
    /// multiplied by for the new maximum ([`Self::rescale`]); it is kept
    /// apart because O may still be in flight in a P·V wgmma here.
    #[inline(always)]
    pub fn scores<const RS: usize>(&mut self, s: &mut Accumulator<RS>) -> [f32; 2]
    where
        Accumulator<RS>: Mma,
    {
        let mut block_max = [f32::NEG_INFINITY; 2];
        s.for_each(|reg, x| block_max[row(reg)] = block_max[row(reg)].max(x));
        let mut shift = [0.0f32; 2];
        let mut correction = [1.0f32; 2];
        for r in 0..2 {
            let new = self.max[r].max(quad_max(block_max[r]));
            // A row with no visible key yet keeps max -inf: shift by 0 so
            // exp2(-inf - shift) is 0, never NaN.
            shift[r] = if new == f32::NEG_INFINITY {
                0.0
            } else {
                new * self.scale_log2
            };
            correction[r] = exp2(fma(self.max[r], self.scale_log2, -shift[r]));
            self.max[r] = new;
        }
        let mut block_sum = [0.0f32; 2];
        let scale_log2 = self.scale_log2;
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

    /// Multiplies O's rows by `correction` (from [`Self::scores`]).
    #[inline(always)]
    pub fn rescale<const RO: usize>(o: &mut Accumulator<RO>, correction: [f32; 2])
    where
        Accumulator<RO>: Mma,
    {
        o.update(|reg, x| x * correction[row(reg)]);
    }

    /// Normalizes `o` and returns each row's log-sum-exp (natural log of the
    /// sum of exp(scale · s)); a row with no visible key gets O = 0 and
    /// -inf.
    #[inline(always)]
    pub fn finish<const RO: usize>(&self, o: &mut Accumulator<RO>, scale: f32) -> [f32; 2]
    where
        Accumulator<RO>: Mma,
    {
        let mut inverse = [0.0f32; 2];
        let mut lse = [f32::NEG_INFINITY; 2];
        for r in 0..2 {
            let sum = quad_sum(self.partial_sum[r]);
            if sum > 0.0 {
                inverse[r] = reciprocal(sum);
                lse[r] = self.max[r] * scale + ln(sum);
            }
        }
        o.update(|reg, x| x * inverse[row(reg)]);
        lse
    }
}
