//! A backward consumer warpgroup of a split-keys tiling
//! (`attn::tiles::BwdConsumers::SplitKeys`): 64 keys of the CTA's 128. For each
//! query block that sees them:
//! 1. Sᵀ = K·Qᵀ, then the probabilities Pᵀ = exp2(Sᵀ · scale·log2e −
//!    LSE·log2e) (masked where needed), rounded to 16 bits as A
//!    fragments; dPᵀ = V·dOᵀ issued with Sᵀ, its GEMM under the
//!    exponentials;
//! 2. dSᵀ = Pᵀ ∘ (dPᵀ − D) from the f32 Pᵀ, rounded likewise, then
//!    dV += Pᵀ·dO (from registers) issued;
//! 3. dK += dSᵀ·Q from registers, while dSᵀ goes to shared memory for dQ;
//! 4. once both consumers' dS is there, the consumer's 64 x 64 block of
//!    the dQ partial over all 128 keys (at hdim 128 columns 64c..64c+64,
//!    at hdim 64, with 128 query rows, rows 64c..64c+64);
//! 5. the partial to the accumulator in global memory (`dq::reduce`).
//!
//! After the tile's last query block dK (scaled) and dV go out
//! (`epilogue`).

use super::epilogue::{self, Gradient};
use super::step::fragments;
use super::walk::{Block, walk};
use super::{BwdElem, CONSUMER_THREADS, Rings, Smem};
use crate::abi::bwd::BwdParams;
use crate::arch::pipeline::PipelineState;
use crate::arch::sync::{NamedBarrier, sync};
use crate::arch::thread::Warpgroup;
use crate::arch::wgmma::{Accumulator, FragA, Mma};
use crate::attn::tiles::BWD_KEYS_PER_CONSUMER;
use crate::sched::TileFeed;

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
    walk::<D, M, N, S, _>(
        wg,
        me,
        p,
        mem,
        feed,
        rings,
        BWD_KEYS_PER_CONSUMER * me,
        // dK, dV, and the f32 blocks of each query block's Sᵀ and dPᵀ.
        || {
            (
                Accumulator::<RD>::zeroed(),
                Accumulator::<RD>::zeroed(),
                Accumulator::<RM>::zeroed(),
                Accumulator::<RM>::zeroed(),
            )
        },
        #[inline(always)]
        |b, state, (dk, dv, s, dp)| {
            query_block::<E, D, M, N, S, RD, RM, KM>(b, rings, state, (s, dp, dk, dv));
        },
        |w, key0, (dk, dv, _, _)| {
            epilogue::store::<E, D, RD>(p, w, key0, thread, Gradient::Key, dk);
            epilogue::store::<E, D, RD>(p, w, key0, thread, Gradient::Value, dv);
        },
    );
}

/// One query block: steps 1-5 of the module doc, in `s` (Sᵀ, then Pᵀ),
/// `dp` (dPᵀ, then dSᵀ) and the block's own dQ accumulator.
#[inline(always)]
fn query_block<
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
    (s, dp, dk, dv): (
        &mut Accumulator<RM>,
        &mut Accumulator<RM>,
        &mut Accumulator<RD>,
        &mut Accumulator<RD>,
    ),
) where
    Accumulator<RD>: Mma,
    Accumulator<RM>: Mma,
{
    let (step, m) = (b.step, b.m);
    let stage = state.index();
    let stats = step.mem.stats(stage);
    // FA3's order: dPᵀ's GEMM runs while the exponentials are computed,
    // and dSᵀ comes from the f32 Pᵀ. Sᵀ needs Q only.
    rings.q.consumer_wait(state);
    step.issue_transposed::<E, RM>(s, step.mem.k(), step.mem.q(stage));
    rings.dout.consumer_wait(state);
    step.issue_transposed::<E, RM>(dp, step.mem.v(), step.mem.dout(stage));
    s.wait::<1>(step.wg);
    step.probabilities(s, stats, m);
    dp.wait::<0>(step.wg);
    step.score_gradients(|reg| s.regs[reg as usize], dp, stats);
    let p_frags: [FragA<E>; KM] = fragments(s);
    let ds_frags: [FragA<E>; KM] = fragments(dp);
    // dV is issued once both are packed: with the f32 Pᵀ and dSᵀ blocks
    // and dV's fragments in flight ptxas serialized the wgmma.
    step.issue_gradient::<E, RD, KM>(dv, &p_frags, step.mem.dout(stage));
    // dS alternates between two tiles, block by block: a consumer
    // rewrites one only after the next barrier, which the other passes
    // only once its dQ GEMM of that tile has completed. With an even
    // number of stages the stage's parity is the block's (one register
    // fewer than a counter of its own).
    const { assert!(S.is_multiple_of(2)) };
    let ds_tile = step.mem.ds(state.index() % 2);
    step.store_transposed::<E, KM>(&ds_frags, ds_tile);
    // dQ sums over both consumers' keys: it needs the other one's dS.
    sync(NamedBarrier::BwdDsWritten, CONSUMER_THREADS);
    // FA3's order: dQ first, then dK, whose GEMM runs while dQ's partial
    // goes out.
    let mut dq = Accumulator::<32>::zeroed();
    step.issue_dq::<E, 32, 64>(&mut dq, ds_tile);
    step.issue_gradient::<E, RD, KM>(dk, &ds_frags, step.mem.q(stage));
    dq.wait::<1>(step.wg);
    dv.fence_operands();
    // dV's GEMM, the last reading dO, has completed; every lane read
    // rowsum(dO∘O).
    rings.release_dout(state);
    b.reducer.reduce(&dq, b.w, m, || b.keys_end(state));
    dk.wait::<0>(step.wg);
    // Every lane read the word and the LSE row; dK, the last GEMM reading
    // Q, has completed.
    rings.release_q(state);
}
