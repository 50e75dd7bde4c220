//! A backward consumer warpgroup: 64 keys of the CTA's key block. For each
//! query block that sees them:
//! 1. Sᵀ = K·Qᵀ, then the probabilities Pᵀ = exp2(Sᵀ · scale·log2e −
//!    LSE·log2e) (masked where needed), rounded to 16 bits as A fragments;
//! 2. dPᵀ = V·dOᵀ, then dSᵀ = Pᵀ ∘ (dPᵀ − D), rounded likewise;
//! 3. dV += Pᵀ·dO and dK += dSᵀ·Q from registers, while dSᵀ goes to shared
//!    memory for dQ;
//! 4. once both consumers' dS is there, the consumer's 64 x 64 block of
//!    the dQ partial over all 128 keys (at hdim 128 columns 64c..64c+64,
//!    at hdim 64, with 128 query rows, rows 64c..64c+64);
//! 5. the partial to the accumulator in global memory (`dq::reduce`).
//!
//! After the tile's last query block dK (scaled) and dV go out
//! (`epilogue`).

use super::dq::DqReducer;
use super::{BLOCK_N, BwdElem, BwdTiles, Rings, Smem, Work, epilogue, mask_spec};
use crate::abi::bwd::BwdParams;
use crate::arch::elem::{KMajor, MnMajor};
use crate::arch::fragment::exp2;
use crate::arch::pipeline::PipelineState;
use crate::arch::smem::{self, Tile};
use crate::arch::sync::{NamedBarrier, fence_proxy_async_shared, sync};
use crate::arch::thread::Warpgroup;
use crate::arch::wgmma::{self, Accumulator, FragA, Mma, ScaleD};
use crate::attn::mask::Band;
use crate::attn::tiles::BWD_KEYS_PER_CONSUMER;
use crate::layout::fragment::accumulator;
use crate::layout::swizzle;
use crate::sched::{ConsumerTiles, TileFeed};

/// Both consumers meet when their dS is written.
const CONSUMER_THREADS: u32 = 256;

/// What one consumer knows while it works on a tile.
struct Step<'a, const D: u32, const M: u32> {
    wg: &'a Warpgroup,
    me: u32,
    thread: u32,
    mem: &'a Smem,
    band: Band,
    scale_log2: f32,
    /// Global index of this consumer's first key.
    key0: u32,
    unmasked: (u32, u32),
}

impl<const D: u32, const M: u32> Step<'_, D, M> {
    /// `acc = A·Bᵀ` over head_dim for this consumer's keys: A is K (Sᵀ =
    /// K·Qᵀ) or V (dPᵀ = V·dOᵀ), `b` the stage's Q or dO; one commit group.
    #[inline(always)]
    fn issue_transposed<E: BwdElem, const RM: usize>(
        &self,
        acc: &mut Accumulator<RM>,
        a: u32,
        b: u32,
    ) where
        Accumulator<RM>: Mma,
    {
        // SAFETY: K or V and the stage's Q or dO (bwd_smem_layout), 1024-byte
        // aligned; the caller waited for them.
        let (a, b) = unsafe {
            (
                Tile::<E, BLOCK_N, D, KMajor>::at(a),
                Tile::<E, M, D, KMajor>::at(b),
            )
        };
        let first_row = BWD_KEYS_PER_CONSUMER * self.me;
        acc.fence_operands();
        wgmma::fence(self.wg);
        for step in 0..D / 16 {
            let scale = ScaleD::from_step(step);
            E::qk(
                acc,
                self.wg,
                a.desc_from_row(first_row, step),
                b.desc(step),
                scale,
            );
        }
        wgmma::commit_group(self.wg);
    }

    /// Sᵀ → Pᵀ in place: exp2(s · scale·log2e − LSE·log2e) of each (key,
    /// query), 0 where query block `m` needs the mask and hides the score.
    #[inline(always)]
    fn probabilities<const RM: usize>(&self, s: &mut Accumulator<RM>, stats: u32, m: u32)
    where
        Accumulator<RM>: Mma,
    {
        let (thread, scale_log2) = (self.thread, self.scale_log2);
        s.update(|reg, x| {
            let (_, c) = accumulator(thread, reg);
            // SAFETY: the stage's statistics (waited for); c < M.
            let lse_log2 = unsafe { smem::load_f32(stats + 4 * c) };
            exp2(x * scale_log2 - lse_log2)
        });
        let (lo, hi) = self.unmasked;
        if m < lo || m >= hi {
            let (band, key0, q0) = (self.band, self.key0, m * M);
            s.update(|reg, x| {
                let (r, c) = accumulator(thread, reg);
                if band.visible(q0 + c, key0 + r) {
                    x
                } else {
                    0.0
                }
            });
        }
    }

    /// dPᵀ → dSᵀ in place: pᵀ ∘ (dpᵀ − D) with D = rowsum(dO∘O) of each
    /// query and pᵀ as rounded for dV's GEMM (`p`, the fragments of k-step
    /// `reg / 8`, two elements per register in accumulator order).
    #[inline(always)]
    fn score_gradients<E: BwdElem, const RM: usize, const KM: usize>(
        &self,
        p: &[FragA<E>; KM],
        dp: &mut Accumulator<RM>,
        stats: u32,
    ) where
        Accumulator<RM>: Mma,
    {
        let thread = self.thread;
        dp.update(|reg, x| {
            let (_, c) = accumulator(thread, reg);
            // SAFETY: as in `probabilities`; rowsum follows the LSE.
            let d = unsafe { smem::load_f32(stats + 4 * (M + c)) };
            // accumulator_to_a_k16: register 8kb + 2i + h is half h of
            // fragment register i of k-step kb.
            let word = p[(reg / 8) as usize].regs[((reg % 8) / 2) as usize];
            let (lo, hi) = E::unpack2(word);
            (if reg % 2 == 0 { lo } else { hi }) * (x - d)
        });
    }

    /// Writes this consumer's dSᵀ, as packed for dK's GEMM (`ds`), into
    /// rows `64 me ..` of dS tile `tile` (keys × queries, queries
    /// contiguous in 64-column blocks, 128-byte swizzle), then fences it
    /// for wgmma. From the fragments, not the f32 block: that one is dead
    /// by now.
    #[inline(always)]
    fn store_ds<E: BwdElem, const RM: usize, const KM: usize>(&self, ds: &[FragA<E>; KM], tile: u32)
    where
        Accumulator<RM>: Mma,
    {
        let (thread, first_row) = (self.thread, BWD_KEYS_PER_CONSUMER * self.me);
        Accumulator::<RM>::each_index(|reg| {
            if reg % 2 != 0 {
                return;
            }
            // accumulator_to_a_k16: registers reg, reg + 1 are the word
            // (reg % 8) / 2 of k-step reg / 8.
            let word = ds[(reg / 8) as usize].regs[((reg % 8) / 2) as usize];
            let (r, c) = accumulator(thread, reg);
            let block = tile + (c / 64) * BLOCK_N * 128;
            let at = block + swizzle::offset(first_row + r, 2 * (c % 64));
            // SAFETY: this consumer's rows of the dS tile; the other
            // consumer has finished reading this tile (two tiles, see
            // `run`).
            unsafe { smem::store_u32(at, word) };
        });
        fence_proxy_async_shared();
    }

    /// Issues dV += Pᵀ·dO and dK += dSᵀ·Q (one commit group). The
    /// fragments must stay untouched until the wait.
    #[inline(always)]
    fn issue_kv_gradients<E: BwdElem, const RD: usize, const KM: usize>(
        &self,
        dk: &mut Accumulator<RD>,
        dv: &mut Accumulator<RD>,
        p: &[FragA<E>; KM],
        ds: &[FragA<E>; KM],
        stage: u32,
    ) where
        Accumulator<RD>: Mma,
    {
        // SAFETY: the stage's Q and dO (waited for), read MN-major: the
        // queries are the contraction.
        let (q, dout) = unsafe {
            (
                Tile::<E, M, D, MnMajor>::at(self.mem.q(stage)),
                Tile::<E, M, D, MnMajor>::at(self.mem.dout(stage)),
            )
        };
        dv.fence_operands();
        dk.fence_operands();
        wgmma::fence(self.wg);
        for (kb, frag) in p.iter().enumerate() {
            E::pv(dv, self.wg, *frag, dout.desc(kb as u32));
        }
        for (kb, frag) in ds.iter().enumerate() {
            E::pv(dk, self.wg, *frag, q.desc(kb as u32));
        }
        wgmma::commit_group(self.wg);
    }

    /// Issues this consumer's 64 x 64 block of dQ (`BwdTiling::dq_block`)
    /// over all 128 keys, from dS tile `ds` and K (one commit group).
    #[inline(always)]
    fn issue_dq<E: BwdElem>(&self, dq: &mut Accumulator<32>, ds: u32) {
        let (row_block, col_block) = self.mem.tiling.dq_block(self.me);
        // SAFETY: the dS tile both consumers wrote (synchronized by the
        // caller): the column block of this consumer's queries; K's column
        // block of its dQ columns. Both MN-major over the keys.
        let (ds, k) = unsafe {
            (
                Tile::<E, BLOCK_N, 64, MnMajor>::at(ds + row_block * BLOCK_N * 128),
                Tile::<E, BLOCK_N, 64, MnMajor>::at(self.mem.k() + col_block * BLOCK_N * 128),
            )
        };
        dq.fence_operands();
        wgmma::fence(self.wg);
        for step in 0..BLOCK_N / 16 {
            let scale = ScaleD::from_step(step);
            E::ss_t(dq, self.wg, ds.desc(step), k.desc(step), scale);
        }
        wgmma::commit_group(self.wg);
    }
}

#[inline(always)]
fn fragments<E: BwdElem, const RM: usize, const KM: usize>(
    acc: &Accumulator<RM>,
) -> [FragA<E>; KM] {
    core::array::from_fn(|kb| E::p_fragment(acc, kb as u32))
}

#[inline(always)]
pub(super) fn run<
    E: BwdElem,
    const D: u32,
    const M: u32,
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
    let band = mask_spec(p).band();
    let thread = wg.thread();
    let mut kv_state = PipelineState::<1>::consumer();
    let mut state = PipelineState::<S>::consumer();
    // dS alternates between two tiles: a consumer rewrites one only after
    // the next barrier, which the other passes only once its dQ GEMM of
    // that tile has completed.
    let mut ds_index = 0u32;
    let reducer = DqReducer::new(wg, me, p, mem);
    let mut tiles = ConsumerTiles::new(BwdTiles::<M>(p), feed);
    while let Some(w) = tiles.current() {
        let mut dk = Accumulator::<RD>::zeroed();
        let mut dv = Accumulator::<RD>::zeroed();
        if w.m_min < w.m_max {
            let step = Step::<D, M> {
                wg,
                me,
                thread,
                mem,
                band,
                scale_log2: p.scale_log2,
                key0: w.n_block * BLOCK_N + BWD_KEYS_PER_CONSUMER * me,
                unmasked: w.unmasked,
            };
            rings.kv.consumer_wait(kv_state);
            // One f32 block serves Sᵀ and then dPᵀ of each query block.
            let mut acc = Accumulator::<RM>::zeroed();
            for m in w.m_min..w.m_max {
                query_block::<E, D, M, S, RD, RM, KM>(
                    &step,
                    &reducer,
                    &w,
                    m,
                    rings,
                    state,
                    ds_index,
                    (&mut acc, &mut dk, &mut dv),
                );
                state.advance();
                ds_index ^= 1;
            }
            rings.kv.warp_release(kv_state);
            kv_state.advance();
        }
        epilogue::store::<E, D, RD>(p, &w, me, thread, &mut dk, &dv);
        tiles.advance();
    }
    reducer.finish();
}

/// One query block: steps 1-5 of the module doc, in `acc` (Sᵀ, then dPᵀ)
/// and the block's own dQ accumulator.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn query_block<
    E: BwdElem,
    const D: u32,
    const M: u32,
    const S: usize,
    const RD: usize,
    const RM: usize,
    const KM: usize,
>(
    step: &Step<'_, D, M>,
    reducer: &DqReducer<'_>,
    w: &Work,
    m: u32,
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
    acc.wait::<0>(step.wg);
    step.score_gradients::<E, RM, KM>(&p_frags, acc, stats);
    let ds_frags: [FragA<E>; KM] = fragments(acc);
    let ds_tile = step.mem.ds(ds_index);
    step.store_ds::<E, RM, KM>(&ds_frags, ds_tile);
    step.issue_kv_gradients::<E, RD, KM>(dk, dv, &p_frags, &ds_frags, stage);
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
    // SAFETY: the stage's key-range word (waited for; the producer wrote it
    // before its arrival).
    let keys_end = unsafe { smem::load_u32(step.mem.keys_end(stage)) };
    rings.qdo.warp_release(state);
    let mut dq = Accumulator::<32>::zeroed();
    step.issue_dq::<E>(&mut dq, ds_tile);
    // The reduction waits for this block's dQ. (Reducing it under the
    // next block's Sᵀ instead needs dQ's and Sᵀ's registers at once:
    // ptxas spilled 96 bytes at hdim 128 and 28 at hdim 64 f16.)
    dq.wait::<0>(step.wg);
    reducer.reduce(&dq, w, m, keys_end);
}
