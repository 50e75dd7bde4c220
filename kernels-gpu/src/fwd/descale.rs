//! The FP8 forward's dequantization factors as one consumer tile uses them
//! (`abi::fwd::Fp8DescaleParams`): the scores' exp2 factor of each key
//! block, `scale_log2 · q(i) · k(j)`, and V's factor `v(j)`.
//!
//! V's factor is folded into O without touching P (which must stay in
//! e4m3's range, `[0, 2^8]`): O is kept in units of the last block's
//! `v(j)`, so adding block `j` multiplies O by `v(j - 1) / v(j)` together
//! with the softmax's correction (the one multiply per O register the online
//! softmax already does), and the epilogue multiplies by the last `v(j)`.
//! 16-bit inputs have no factors: every one is a constant the compiler folds
//! away.

use super::Work;
use super::input::FwdInput;
use crate::abi::fwd::FwdParams;
use core::marker::PhantomData;

pub(super) struct Descale<E> {
    /// `scale_log2 · q(i)`.
    scores: f32,
    k: *const f32,
    v: *const f32,
    /// Index of key block 0's factor, and the step per block.
    kv_first: u32,
    kv_step: u32,
    elem: PhantomData<E>,
}

impl<E: FwdInput> Descale<E> {
    #[inline(always)]
    pub fn of_tile(p: &FwdParams, w: &Work) -> Self {
        let d = &p.descale;
        if !E::DESCALED {
            return Self {
                scores: p.scale_log2,
                k: core::ptr::null(),
                v: core::ptr::null(),
                kv_first: 0,
                kv_step: 0,
                elem: PhantomData,
            };
        }
        let q = d.q_index.at(w.batch, w.head, w.m_block);
        let kv_first = d.kv_index.at(w.batch, w.kv_head, 0);
        Self {
            // SAFETY: the host checked the factors' length against the
            // shape and the index (`ScaleIndex`); (batch, head, m_block) is
            // a tile of this launch.
            scores: p.scale_log2 * unsafe { *d.q.as_mut_ptr().add(q as usize) },
            k: d.k.as_mut_ptr(),
            v: d.v.as_mut_ptr(),
            kv_first,
            kv_step: d.kv_index.block,
            elem: PhantomData,
        }
    }

    /// The exp2 factor of key block `n`'s scores (`>= 0`: the host checks
    /// the factors).
    #[inline(always)]
    pub fn scores(&self, n: u32) -> f32 {
        if E::DESCALED {
            // SAFETY: key block n < ceil(seqlen_k / block_n) of this tile's
            // (batch, kv head): inside the factors (`of_tile`).
            self.scores * unsafe { *self.k.add((self.kv_first + n * self.kv_step) as usize) }
        } else {
            self.scores
        }
    }

    /// V's factor of key block `n` (`> 0`: the host checks the factors).
    #[inline(always)]
    pub fn values(&self, n: u32) -> f32 {
        if E::DESCALED {
            // SAFETY: as in `scores`.
            unsafe { *self.v.add((self.kv_first + n * self.kv_step) as usize) }
        } else {
            1.0
        }
    }
}
