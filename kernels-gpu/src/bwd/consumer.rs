//! A backward consumer warpgroup of a split-keys tiling
//! (`attn::tiles::BwdConsumers::SplitKeys`): 64 keys of the CTA's 128. For each
//! query block that sees them:
//! 1. Sᵀ = K·Qᵀ, then the probabilities Pᵀ = exp2(Sᵀ · scale·log2e −
//!    LSE·log2e) (masked where needed), rounded to 16 bits as A fragments;
//! 2. dPᵀ = V·dOᵀ and dV += Pᵀ·dO (from registers) issued together, then
//!    dSᵀ = Pᵀ ∘ (dPᵀ − D), rounded likewise, under dV's GEMM;
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
use super::{BwdElem, Rings, Smem};
use crate::abi::bwd::BwdParams;
use crate::arch::pipeline::PipelineState;
use crate::arch::sync::{NamedBarrier, sync};
use crate::arch::thread::Warpgroup;
use crate::arch::wgmma::{Accumulator, FragA, Mma};
use crate::attn::tiles::BWD_KEYS_PER_CONSUMER;
use crate::sched::TileFeed;

/// Both consumers meet when their dS is written.
const CONSUMER_THREADS: u32 = 256;

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
    // dS alternates between two tiles: a consumer rewrites one only after
    // the next barrier, which the other passes only once its dQ GEMM of
    // that tile has completed.
    let mut ds_index = 0u32;
    walk::<D, M, N, S, _>(
        wg,
        me,
        p,
        mem,
        feed,
        rings,
        BWD_KEYS_PER_CONSUMER * me,
        // dK, dV, and one f32 block that serves Sᵀ and then dPᵀ of each
        // query block.
        || {
            (
                Accumulator::<RD>::zeroed(),
                Accumulator::<RD>::zeroed(),
                Accumulator::<RM>::zeroed(),
            )
        },
        |b, state, (dk, dv, acc)| {
            query_block::<E, D, M, N, S, RD, RM, KM>(b, rings, state, ds_index, (acc, dk, dv));
            ds_index ^= 1;
        },
        |w, key0, (dk, dv, _)| {
            epilogue::store::<E, D, RD>(p, w, key0, thread, Gradient::Key, dk);
            epilogue::store::<E, D, RD>(p, w, key0, thread, Gradient::Value, dv);
        },
    );
}

/// One query block: steps 1-5 of the module doc, in `acc` (Sᵀ, then dPᵀ)
/// and the block's own dQ accumulator.
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
    ds_index: u32,
    (acc, dk, dv): (
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
    // One f32 block serves Sᵀ and then dPᵀ: with dK and dV (128 registers
    // at hdim 128) two of them and the fragments did not fit the budget
    // (ptxas spilled 49 registers), so dPᵀ is issued once Pᵀ is packed.
    rings.qdo.consumer_wait(state);
    step.issue_transposed::<E, RM>(acc, step.mem.k(), step.mem.q(stage));
    acc.wait::<0>(step.wg);
    step.probabilities(acc, stats, m);
    let p_frags: [FragA<E>; KM] = fragments(acc);
    step.issue_transposed::<E, RM>(acc, step.mem.v(), step.mem.dout(stage));
    // dV's GEMM needs only Pᵀ: queued behind dPᵀ, it keeps the tensor
    // cores busy while dSᵀ is computed and stored, which both consumers do
    // at the same time (+5-9% at hdim 128, +1-2% at hdim 64: PERF.md).
    step.issue_gradient::<E, RD, KM>(dv, &p_frags, step.mem.dout(stage));
    acc.wait::<1>(step.wg);
    step.score_gradients::<E, RM, KM>(&p_frags, acc, stats);
    let ds_frags: [FragA<E>; KM] = fragments(acc);
    let ds_tile = step.mem.ds(ds_index);
    // The other consumer has finished reading this tile (two tiles, see
    // `run`).
    step.store_transposed::<E, KM>(&ds_frags, ds_tile);
    step.issue_gradient::<E, RD, KM>(dk, &ds_frags, step.mem.q(stage));
    // dQ sums over both consumers' keys: it needs the other one's dS.
    // (Taking turns instead, one consumer computing a block's whole dQ
    // while the other goes on, measured +5% at hdim 64 and -12% at hdim
    // 128, with spills at both: kernels-gpu/PERF.md.)
    sync(NamedBarrier::BwdDsWritten, CONSUMER_THREADS);
    // dK and dV complete before dQ is issued: their fragments (32
    // registers) then are free for dQ's accumulator; no GEMM of this block
    // reads Q or dO after them.
    dk.wait::<0>(step.wg);
    dv.fence_operands();
    // The reduction waits for this block's dQ. (Reducing it under the
    // next block's Sᵀ instead needs dQ's and Sᵀ's registers at once:
    // ptxas spilled 96 bytes at hdim 128 and 28 at hdim 64 f16.)
    b.reduce_dq::<E, S, 32, 64>(rings, state, ds_tile);
}
