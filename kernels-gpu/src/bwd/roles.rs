//! The backward consumers of a split-roles tiling
//! (`attn::tiles::BwdConsumers::SplitRoles`, hdim 256): both work on the
//! tile's 64 keys, each holding one 64 x head_dim gradient. For each query
//! block that sees the keys:
//! - consumer 0 computes Sᵀ = K·Qᵀ and Pᵀ (masked where needed) as A
//!   fragments, stores Pᵀ into the Pᵀ tile for consumer 1, and issues dV
//!   += Pᵀ·dO;
//! - consumer 1 computes dPᵀ = V·dOᵀ and, once Pᵀ is stored, dSᵀ = Pᵀ ∘
//!   (dPᵀ − D), stores it into the dS tile and issues dK += dSᵀ·Q;
//! - once dSᵀ is stored, each computes 64 x 128 of the block's dQ partial
//!   (columns 128c..) over the 64 keys and reduces it into the accumulator
//!   in global memory (`dq`).
//!
//! The GEMM FLOPs split evenly, and consumer 1's wait for Pᵀ offsets the
//! two, so one's element-wise work can run under the other's GEMMs.
//!
//! One Pᵀ tile and one dS tile suffice: consumer 0 rewrites Pᵀ only after
//! it has seen the block's dS stored, which consumer 1 does after reading
//! Pᵀ into registers; consumer 1 rewrites dS only after the next Pᵀ is
//! stored, which consumer 0 does after its dQ GEMM (reading dS) completed.

use super::epilogue::{self, Gradient};
use super::step::{fragments, unpacked};
use super::walk::{Block, walk};
use super::{BwdElem, CONSUMER_THREADS, Rings, Smem};
use crate::abi::bwd::BwdParams;
use crate::arch::pipeline::PipelineState;
use crate::arch::sync::{NamedBarrier, arrive, sync};
use crate::arch::thread::Warpgroup;
use crate::arch::wgmma::{Accumulator, FragA, Mma};
use crate::sched::TileFeed;

/// Where the tiles live among the layout's two 64 x 64 tiles.
const DS_TILE: u32 = 0;
const P_TILE: u32 = 1;
/// dQ of a query block per consumer: 64 rows x 128 columns of f32.
const DQ_COLS: u32 = 128;
const DQ_REGISTERS: usize = 64;

#[inline(always)]
pub(super) fn run<
    E: BwdElem,
    const D: u32,
    const M: u32,
    const N: u32,
    const S: usize,
    const RD: usize,
    const RM: usize,
    const KM: usize,
>(
    wg: &Warpgroup,
    me: u32,
    p: &BwdParams,
    mem: &Smem,
    feed: &TileFeed,
    rings: &Rings<S>,
) where
    Accumulator<RD>: Mma,
    Accumulator<RM>: Mma,
{
    let thread = wg.thread();
    // Each role walks the tiles in its own loop: one loop with the role
    // chosen per block kept both roles' values live (ptxas spilled them).
    let zeroed = Accumulator::<RD>::zeroed;
    if me == 0 {
        walk::<D, M, N, S, _>(
            wg,
            me,
            p,
            mem,
            feed,
            rings,
            0,
            zeroed,
            |b, state, dv| scores::<E, D, M, N, S, RD, RM, KM>(b, rings, state, dv),
            |w, key0, dv| epilogue::store::<E, D, RD>(p, w, key0, thread, Gradient::Value, dv),
        );
    } else {
        walk::<D, M, N, S, _>(
            wg,
            me,
            p,
            mem,
            feed,
            rings,
            0,
            zeroed,
            |b, state, dk| score_gradients::<E, D, M, N, S, RD, RM, KM>(b, rings, state, dk),
            |w, key0, dk| epilogue::store::<E, D, RD>(p, w, key0, thread, Gradient::Key, dk),
        );
    }
}

/// Consumer 0: Sᵀ, Pᵀ (stored for consumer 1), dV += Pᵀ·dO, then its dQ
/// part.
#[inline(always)]
fn scores<
    E: BwdElem,
    const D: u32,
    const M: u32,
    const N: u32,
    const S: usize,
    const RD: usize,
    const RM: usize,
    const KM: usize,
>(
    b: &Block<'_, D, M, N>,
    rings: &Rings<S>,
    state: PipelineState<S>,
    dv: &mut Accumulator<RD>,
) where
    Accumulator<RD>: Mma,
    Accumulator<RM>: Mma,
{
    let (step, mem) = (b.step, b.step.mem);
    let stage = state.index();
    rings.q.consumer_wait(state);
    let mut s = Accumulator::<RM>::zeroed();
    step.issue_transposed::<E, RM>(&mut s, mem.k(), mem.q(stage));
    s.wait::<0>(step.wg);
    step.probabilities(&mut s, mem.stats(stage), b.m);
    let p_frags: [FragA<E>; KM] = fragments(&s);
    // Pᵀ first, so that consumer 1 computes dSᵀ under dV's GEMM.
    // Consumer 1 has read the previous Pᵀ: this consumer saw that
    // block's dS stored.
    step.store_transposed::<E, KM>(&p_frags, mem.ds(P_TILE));
    arrive(NamedBarrier::BwdPWritten, CONSUMER_THREADS);
    rings.dout.consumer_wait(state);
    step.issue_gradient::<E, RD, KM>(dv, &p_frags, mem.dout(stage));
    sync(NamedBarrier::BwdDsWritten, CONSUMER_THREADS);
    dv.wait::<0>(step.wg);
    // dV's GEMM was this consumer's last read of dO.
    rings.release_dout(state);
    b.reduce_dq::<E, S, DQ_REGISTERS, DQ_COLS>(rings, state, mem.ds(DS_TILE));
}

/// Consumer 1: dPᵀ, dSᵀ from consumer 0's Pᵀ (stored for both dQ parts),
/// dK += dSᵀ·Q, then its dQ part.
#[inline(always)]
fn score_gradients<
    E: BwdElem,
    const D: u32,
    const M: u32,
    const N: u32,
    const S: usize,
    const RD: usize,
    const RM: usize,
    const KM: usize,
>(
    b: &Block<'_, D, M, N>,
    rings: &Rings<S>,
    state: PipelineState<S>,
    dk: &mut Accumulator<RD>,
) where
    Accumulator<RD>: Mma,
    Accumulator<RM>: Mma,
{
    let (step, mem) = (b.step, b.step.mem);
    let stage = state.index();
    rings.dout.consumer_wait(state);
    let mut dp = Accumulator::<RM>::zeroed();
    step.issue_transposed::<E, RM>(&mut dp, mem.v(), mem.dout(stage));
    sync(NamedBarrier::BwdPWritten, CONSUMER_THREADS);
    // SAFETY: consumer 0 stored this block's Pᵀ before its arrival.
    let p_frags: [FragA<E>; KM] = unsafe { step.load_transposed::<E, KM>(mem.ds(P_TILE)) };
    dp.wait::<0>(step.wg);
    step.score_gradients(|reg| unpacked(&p_frags, reg), &mut dp, mem.stats(stage));
    // dPᵀ's GEMM and the rowsum reads were this consumer's use of dO.
    rings.release_dout(state);
    let ds_frags: [FragA<E>; KM] = fragments(&dp);
    // Consumer 0's dQ GEMM of the previous block (the other reader of
    // the dS tile) completed before it stored this block's Pᵀ.
    step.store_transposed::<E, KM>(&ds_frags, mem.ds(DS_TILE));
    arrive(NamedBarrier::BwdDsWritten, CONSUMER_THREADS);
    // Q (and the producer's word, read by `reduce_dq`).
    rings.q.consumer_wait(state);
    step.issue_gradient::<E, RD, KM>(dk, &ds_frags, mem.q(stage));
    dk.wait::<0>(step.wg);
    b.reduce_dq::<E, S, DQ_REGISTERS, DQ_COLS>(rings, state, mem.ds(DS_TILE));
}
