//! The attention backward (FA2/FA3): three kernels per call.
//! - `preprocess`: per query row D = rowsum(dO ∘ O) and LSE · log2(e);
//!   clears the f32 dQ accumulator.
//! - the main kernel (`run`), persistent: a tile is one key block of one
//!   head; one producer warpgroup loads K and V once and then streams Q,
//!   dO and the row statistics of every query block that sees the keys;
//!   two consumer warpgroups keep dK and dV in f32 registers and for each
//!   query block compute Sᵀ = K·Qᵀ, Pᵀ, dPᵀ = V·dOᵀ, dSᵀ = Pᵀ ∘ (dPᵀ − D),
//!   dV += Pᵀ·dO, dK += dSᵀ·Q and a dQ partial dS·K, which `dq` adds into
//!   the accumulator in global memory (staged: one bulk reduce-add per
//!   consumer, issued by warp 1 of the producer warpgroup). How the
//!   consumers share the work is the tiling's (`attn::tiles::BwdConsumers`): 64 keys each (`consumer`), or the same
//!   64 keys with the score and the score-gradient GEMMs split between
//!   them (`roles`, hdim 256).
//! - `convert`: dQ (and with GQA dK, dV summed over each group) from the
//!   f32 partials to the 16-bit gradients.
//!
//! Work is computed transposed (Sᵀ rather than S): a consumer's rows are
//! then its keys, so Pᵀ and dSᵀ are already the A operands of dV and dK,
//! in registers, as P is in the forward.

mod consumer;
pub(crate) mod convert;
mod dq;
mod epilogue;
pub(crate) mod preprocess;
mod producer;
mod roles;
mod step;
mod walk;

use crate::abi::GlobalPtr;
use crate::abi::bwd::BwdParams;
use crate::arch::elem::MnMajor;
use crate::arch::mma_elem::MmaElemTransA;
use crate::arch::pipeline::{PipelineState, TmaPipeline};
use crate::arch::regs;
use crate::arch::smem;
use crate::arch::sync::sync_block;
use crate::arch::thread::{Warpgroup, elect_one, trap, warp_index};
use crate::arch::wgmma::{Accumulator, Mma};
use crate::attn::blocks::{query_blocks, unmasked_query_blocks};
use crate::attn::mask::MaskSpec;
use crate::attn::tiles::{
    BWD_CONSUMER_REGISTERS, BWD_PRODUCER_REGISTERS, BwdConsumers, BwdTiling, FEED_SLOTS,
    bwd_smem_layout, bwd_tiling, ring_bytes,
};
use crate::half::HalfElem;
use crate::sched::{TileFeed, Tiles};

/// bf16 or f16 in the backward: the forward's GEMMs and dQ's
/// transposed-A GEMM.
pub(crate) trait BwdElem: HalfElem + MmaElemTransA<MnMajor> {}

impl BwdElem for crate::arch::elem::Bf16 {}

impl BwdElem for crate::arch::elem::F16 {}

/// One tile: a key block of one head and batch, and the query blocks that
/// see it.
#[derive(Clone, Copy)]
pub(crate) struct Work {
    pub n_block: u32,
    pub head: u32,
    pub kv_head: u32,
    pub batch: u32,
    /// Query blocks `[m_min, m_max)`, visited first to last.
    pub m_min: u32,
    pub m_max: u32,
    /// Query blocks that need no mask (`attn::blocks::unmasked_query_blocks`).
    pub unmasked: (u32, u32),
}

impl Work {
    /// The `i`-th tile of the launch, with query blocks of `M` rows and
    /// key blocks of `N`.
    #[inline(always)]
    pub fn of_tile<const M: u32, const N: u32>(p: &BwdParams, i: u32) -> Self {
        let order = &p.sched.order;
        let tile = order.tile(i);
        let n_block = order.m_blocks - 1 - tile.m_block;
        let spec = mask_spec(p);
        let n_start = n_block * N;
        let (m_min, m_max) = query_blocks(&spec, n_start, N, M);
        Self {
            n_block,
            head: tile.head,
            // max(1): no divide-by-zero check, whose predicate ptxas
            // spilled across the role split (the host passes >= 1).
            kv_head: tile.head / p.heads_per_kv.max(1),
            batch: tile.batch,
            m_min,
            m_max,
            unmasked: unmasked_query_blocks(&spec, n_start, N, M),
        }
    }
}

/// The backward's tiles (see `BwdParams` for their order).
#[derive(Clone, Copy)]
pub(crate) struct BwdTiles<'a, const M: u32, const N: u32>(pub &'a BwdParams);

impl<const M: u32, const N: u32> Tiles for BwdTiles<'_, M, N> {
    type Work = Work;

    #[inline(always)]
    fn count(&self) -> u32 {
        // Recomputed per tile rather than held by the producer (see
        // `mask_spec`).
        let order = &self.0.sched.order;
        regs::opaque(order.m_blocks) * order.head_batches
    }

    #[inline(always)]
    fn work(&self, tile: u32) -> Work {
        Work::of_tile::<M, N>(self.0, tile)
    }

    #[inline(always)]
    fn claim_counter(&self) -> GlobalPtr<u32> {
        self.0.sched.tile_counter
    }

    #[inline(always)]
    fn claim_base(&self) -> u32 {
        self.0.sched.tile_base
    }
}

/// The launch's mask, read where it is used: the block ranges computed
/// from it per tile take 64-bit values which, hoisted out of the tile loop,
/// spilled at the producer's 24 registers (`regs::opaque`).
#[inline(always)]
pub(crate) fn mask_spec(p: &BwdParams) -> MaskSpec {
    MaskSpec {
        seqlen_q: regs::opaque(p.seqlen_q),
        seqlen_k: regs::opaque(p.seqlen_k),
        left: regs::opaque(p.window_left as u32) as i32,
        right: regs::opaque(p.window_right as u32) as i32,
    }
}

/// Shared-memory addresses of a backward CTA (`attn::tiles::bwd_smem_layout`).
#[derive(Clone, Copy)]
pub(crate) struct Smem {
    pub base: u32,
    pub tiling: BwdTiling,
    pub layout: crate::attn::tiles::BwdSmemLayout,
}

impl Smem {
    #[inline(always)]
    pub fn k(&self) -> u32 {
        self.base
    }
    #[inline(always)]
    pub fn v(&self) -> u32 {
        self.base + self.layout.v
    }
    /// Q of ring stage `stage`.
    #[inline(always)]
    pub fn q(&self, stage: u32) -> u32 {
        self.base + self.layout.q + stage * self.layout.tile_stage_bytes
    }
    #[inline(always)]
    pub fn dout(&self, stage: u32) -> u32 {
        self.base + self.layout.dout + stage * self.layout.tile_stage_bytes
    }
    /// LSE · log2(e) of stage `stage`'s query rows; rowsum(dO∘O) follows
    /// `block_m` floats later.
    #[inline(always)]
    pub fn stats(&self, stage: u32) -> u32 {
        self.base + self.layout.stats + stage * self.layout.stats_stage_bytes
    }
    /// Stage `stage`'s key-range word (`producer`, for `dq`).
    #[inline(always)]
    pub fn keys_end(&self, stage: u32) -> u32 {
        self.stats(stage) + self.layout.keys_end
    }
    /// dS tile `i` (0 or 1; with split roles tile 1 holds Pᵀ).
    #[inline(always)]
    pub fn ds(&self, i: u32) -> u32 {
        self.base + self.layout.ds + i * self.layout.ds_bytes
    }
    /// Consumer `c`'s dQ staging blocks.
    #[inline(always)]
    pub fn dq(&self, c: u32) -> u32 {
        self.base + self.layout.dq + c * self.tiling.dq_stage_bytes()
    }
}

/// The threads of both consumer warpgroups: the named barriers they meet
/// at (dS written, and with split roles Pᵀ written), and the arrivals that
/// free a Q or dO stage.
pub(super) const CONSUMER_THREADS: u32 = 256;

/// K and V (one stage: a tile's key block), and the rings of Q (with the
/// LSE row and the producer's key-range word) and of dO (with
/// rowsum(dO∘O)), which share their stage index and phase: a query block
/// is one stage of both.
pub(crate) struct Rings<const S: usize> {
    pub kv: TmaPipeline<1>,
    pub q: TmaPipeline<S>,
    pub dout: TmaPipeline<S>,
}

impl<const S: usize> Rings<S> {
    // Every consumer thread arrives (the rings count 256): each lane's own
    // reads of the statistics and the key-range word are ordered before
    // its own release, which the PTX memory model guarantees only for the
    // releasing thread (lane 0's arrival after `bar.warp.sync` relied on
    // the warp barrier, which racecheck does not see).

    /// After this thread's last read of the stage's dO (the GEMMs reading
    /// it completed) and of its rowsum(dO∘O): frees it, so the producer
    /// loads the next dO while Q's GEMMs still run (FA3's order).
    #[inline(always)]
    pub fn release_dout(&self, state: PipelineState<S>) {
        self.dout.consumer_release(state);
    }

    /// After this thread's last read of the stage's Q (GEMMs completed),
    /// its LSE row and the key-range word.
    #[inline(always)]
    pub fn release_q(&self, state: PipelineState<S>) {
        self.q.consumer_release(state);
    }
}

/// # Safety
/// Launched as `BwdParams` documents, after the preprocess of the same
/// call, with `D`, `M`, `N`, `S` from the backward tiling of `D`, `RD = D
/// / 2`, `RM = M / 2`, `KM = M / 16`.
#[inline(always)]
pub(crate) unsafe fn run<
    E: BwdElem,
    const D: u32,
    const M: u32,
    const N: u32,
    const S: usize,
    const RD: usize,
    const RM: usize,
    const KM: usize,
>(
    p: BwdParams,
) where
    Accumulator<RD>: Mma,
    Accumulator<RM>: Mma,
{
    const {
        assert!(2 * RD as u32 == D && 2 * RM as u32 == M && 16 * KM as u32 == M);
        // dS tiles are 128-byte column blocks of 64 query columns.
        assert!(
            M.is_multiple_of(64),
            "query blocks of whole dS column blocks"
        );
        assert!(
            matches!(bwd_tiling(D), Some(t) if t.block_m == M && t.stages == S as u32 && t.block_n() == N)
        );
        assert!(TmaPipeline::<1>::BYTES == ring_bytes(1));
        assert!(TileFeed::BARRIER_BYTES == ring_bytes(FEED_SLOTS));
        assert!(TmaPipeline::<S>::BYTES == ring_bytes(S as u32));
    };
    let tiling = const {
        match bwd_tiling(D) {
            Some(t) => t,
            None => panic!("no backward tiling"),
        }
    };
    let base = smem::base();
    if base & 1023 != 0 {
        trap();
    }
    let mem = Smem {
        base,
        tiling,
        layout: bwd_smem_layout(tiling, E::BYTES),
    };
    let l = &mem.layout;
    // SAFETY: each ring and the feed at its region of the layout.
    let (rings, feed) = unsafe {
        (
            Rings {
                kv: TmaPipeline::<1>::at(base + l.kv_ring),
                q: TmaPipeline::<S>::at(base + l.q_ring),
                dout: TmaPipeline::<S>::at(base + l.dout_ring),
            },
            TileFeed::at(base + l.feed_ring, base + l.tile_slots),
        )
    };
    if warp_index() == 0
        && let Some(one) = elect_one()
    {
        // One arrival per consumer warp frees K/V; one per consumer
        // thread a Q or dO stage (`Rings::release_q`, `release_dout`).
        rings.kv.init(&one, 8);
        rings.q.init(&one, CONSUMER_THREADS);
        rings.dout.init(&one, CONSUMER_THREADS);
        // The dQ writer follows the tiles too.
        feed.init(
            &one,
            if tiling.dq_staged() {
                dq::WRITER_THREADS
            } else {
                0
            },
        );
    }
    sync_block();

    // SAFETY: each warpgroup enters its role branch whole and converged.
    let wg = unsafe { Warpgroup::enter() };
    match wg.index() {
        0 => {
            regs::release::<BWD_PRODUCER_REGISTERS>(&wg);
            match warp_index() {
                0 => {
                    if let Some(one) = elect_one() {
                        producer::run::<E, D, M, N, S>(&one, &p, &mem, &feed, &rings);
                    }
                }
                1 if tiling.dq_staged() => dq::write::<M, N>(&p, &mem, &feed),
                _ => {}
            }
        }
        1 | 2 => {
            regs::acquire::<BWD_CONSUMER_REGISTERS>(&wg);
            // The consumer index read after `setmaxnreg`: computed before
            // it, it crossed it in a register, which ptxas spilled.
            let me = warp_index() / 4 - 1;
            match tiling.consumers {
                BwdConsumers::SplitKeys => {
                    consumer::run::<E, D, M, N, S, RD, RM, KM>(&wg, me, &p, &mem, &feed, &rings)
                }
                BwdConsumers::SplitRoles => {
                    roles::run::<E, D, M, N, S, RD, RM, KM>(&wg, me, &p, &mem, &feed, &rings)
                }
            }
        }
        _ => trap(),
    }
}
