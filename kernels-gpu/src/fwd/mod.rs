//! The attention forward kernel, persistent: one CTA per SM takes tiles
//! (a query block of one head) from `crate::sched` until none is left. For
//! each, one producer warpgroup loads Q and streams K/V blocks by TMA
//! through rings that run on across tiles; two consumer warpgroups (64
//! query rows each) compute S = Q·Kᵀ, the online softmax and O += P·V with
//! P kept in registers, then write O and the log-sum-exp while the producer
//! already loads the next tile.
//!
//! Structure as FA3 `hopper/`: this file sets up the CTA and splits roles
//! and says what a tile is (`FwdTiles`); `crate::sched` hands the tiles
//! out, `producer` and `consumer` own the pipeline,
//! `softmax` the row statistics, `epilogue` the outputs; block ranges,
//! masks and the tile order are in `crate::attn`.

mod consumer;
mod descale;
mod epilogue;
mod input;
mod producer;
mod softmax;
mod transposer;

use crate::abi::GlobalPtr;
use crate::abi::fwd::FwdParams;
use crate::arch::elem::Element;
use crate::arch::pipeline::TmaPipeline;
use crate::arch::regs;
use crate::arch::smem;
use crate::arch::sync::sync_block;
use crate::arch::thread::{Warpgroup, elect_one, trap, warp_index};
use crate::arch::wgmma::{Accumulator, Mma};
use crate::attn::blocks::{key_blocks, unmasked_blocks};
use crate::attn::mask::MaskSpec;
use crate::attn::tiles::{
    BLOCK_M, CONSUMER_REGISTERS, FEED_SLOTS, FP8_CONSUMER_REGISTERS, FP8_PRODUCER_REGISTERS,
    PRODUCER_REGISTERS, Tiling, kernel_tiling, ring_bytes, smem_layout, transposes_v,
};
use crate::sched::{TileFeed, Tiles};
pub(crate) use input::FwdInput;

/// One tile of work: a query block, head and batch, and the key blocks it
/// visits.
#[derive(Clone, Copy)]
pub(crate) struct Work {
    pub m_block: u32,
    pub head: u32,
    pub kv_head: u32,
    pub batch: u32,
    /// Key blocks that need no mask (`attn::blocks::unmasked_blocks`).
    pub unmasked: (u32, u32),
    /// Key blocks `[n_min, n_max)`, visited from the last down (the masked
    /// diagonal and tail blocks first, as FA3).
    pub n_min: u32,
    pub n_max: u32,
}

impl Work {
    /// The `i`-th tile of `p.order`, with blocks of `N` keys.
    #[inline(always)]
    pub fn of_tile<const N: u32>(p: &FwdParams, i: u32) -> Self {
        let tile = p.order.tile(i);
        let spec = mask_spec(p);
        let m_start = tile.m_block * BLOCK_M;
        let (n_min, n_max) = key_blocks(&spec, m_start, BLOCK_M, N);
        Self {
            m_block: tile.m_block,
            head: tile.head,
            kv_head: tile.head / p.heads_per_kv,
            batch: tile.batch,
            unmasked: unmasked_blocks(&spec, m_start, BLOCK_M, N),
            n_min,
            n_max,
        }
    }
}

/// The forward's tiles: the launch's tile order, with blocks of `N` keys.
#[derive(Clone, Copy)]
pub(crate) struct FwdTiles<'a, const N: u32>(pub &'a FwdParams);

impl<const N: u32> Tiles for FwdTiles<'_, N> {
    type Work = Work;

    #[inline(always)]
    fn count(&self) -> u32 {
        self.0.order.tiles()
    }

    #[inline(always)]
    fn work(&self, tile: u32) -> Work {
        Work::of_tile::<N>(self.0, tile)
    }

    #[inline(always)]
    fn claim_counter(&self) -> GlobalPtr<u32> {
        self.0.tile_counter
    }

    #[inline(always)]
    fn claim_base(&self) -> u32 {
        self.0.tile_base
    }
}

/// The launch's mask (the same for every tile).
#[inline(always)]
pub(crate) fn mask_spec(p: &FwdParams) -> MaskSpec {
    MaskSpec {
        seqlen_q: p.seqlen_q,
        seqlen_k: p.seqlen_k,
        left: p.window_left,
        right: p.window_right,
    }
}

/// Shared-memory addresses of the CTA's tiles and barriers.
#[derive(Clone, Copy)]
pub(crate) struct Smem {
    pub q: u32,
    pub k: u32,
    /// V as loaded.
    pub v: u32,
    /// Vᵀ, where the producer warpgroup transposes V (`transposer`).
    pub vt: u32,
    /// Bytes between two stages of K (and of V, Vᵀ).
    pub stage_bytes: u32,
}

/// K and V travel in two rings with the same stages but their own barriers:
/// S = Q·Kᵀ starts as soon as K has landed, and K's stage is refilled as
/// soon as S is done, while P·V still reads V (FA3 does the same). Where V
/// is transposed, the V ring feeds the transposing warps and a third ring
/// of the same stages passes Vᵀ on to the consumers.
pub(crate) struct KvRings<const S: usize> {
    pub k: TmaPipeline<S>,
    pub v: TmaPipeline<S>,
    /// Unused (and without barriers) for 16-bit inputs.
    pub vt: TmaPipeline<S>,
}

impl<const S: usize> KvRings<S> {
    /// The ring of the V stages P·V reads.
    #[inline(always)]
    pub fn values<E: Element>(&self) -> &TmaPipeline<S> {
        if transposes_v(E::BYTES) {
            &self.vt
        } else {
            &self.v
        }
    }
}

/// The tile-table row of the kernel with inputs `E`, `D` head dims, blocks
/// of `N` keys and `S` stages (`attn::tiles::kernel_tiling`); a
/// compile-time error where there is none.
pub(crate) const fn kernel_row<E: Element, const D: u32, const N: u32, const S: usize>() -> Tiling {
    match kernel_tiling(E::BYTES, D, N, S as u32) {
        Some(t) => t,
        None => panic!("kernel tiles not in attn::tiles' forward tables"),
    }
}

/// The producer warpgroup's warps that transpose V (all but the TMA warp),
/// and their threads.
const TRANSPOSER_WARPS: u32 = 3;
const TRANSPOSER_THREADS: u32 = 32 * TRANSPOSER_WARPS;

/// # Safety
/// Launched as `FwdParams` documents, with `D`, `N`, `S` from the tiling of
/// `D` and `RS = N / 2`, `RO = D / 2`, `KB = N / E::P_KEYS`. `PINGPONG` and
/// `OVERLAP` switch the two scheduling techniques (on in every kernel but the
/// ablation variants).
#[inline(always)]
pub(crate) unsafe fn run<
    E,
    const D: u32,
    const N: u32,
    const S: usize,
    const RS: usize,
    const RO: usize,
    const KB: usize,
    const PINGPONG: bool,
    const OVERLAP: bool,
>(
    p: FwdParams,
) where
    E: FwdInput,
    Accumulator<RS>: Mma,
    Accumulator<RO>: Mma,
{
    const {
        assert!(2 * RS as u32 == N && 2 * RO as u32 == D && E::P_KEYS * KB as u32 == N);
    };
    // The host sizes shared memory and the K/V boxes from the table.
    let tiling = const { kernel_row::<E, D, N, S>() };
    let base = smem::base();
    if base & 1023 != 0 {
        trap();
    }
    let layout = smem_layout(tiling, E::BYTES);
    const {
        assert!(TmaPipeline::<1>::BYTES == ring_bytes(1));
        assert!(TileFeed::BARRIER_BYTES == ring_bytes(FEED_SLOTS));
        assert!(TmaPipeline::<S>::BYTES == ring_bytes(S as u32));
    };
    let mem = Smem {
        q: base,
        k: base + layout.k,
        v: base + layout.v,
        vt: base + layout.vt,
        stage_bytes: layout.stage_bytes,
    };
    // SAFETY: each ring and the feed at its region of the layout.
    let (q_ring, feed, ring) = unsafe {
        (
            TmaPipeline::<1>::at(base + layout.q_ring),
            TileFeed::at(base + layout.feed_ring, base + layout.tile_slots),
            KvRings {
                k: TmaPipeline::<S>::at(base + layout.k_ring),
                v: TmaPipeline::<S>::at(base + layout.v_ring),
                vt: TmaPipeline::<S>::at(base + layout.vt_ring),
            },
        )
    };
    if warp_index() == 0
        && let Some(one) = elect_one()
    {
        // One arrival per consumer warp frees Q or a stage. Where V is
        // transposed, the transposing threads also follow the feed; V's
        // stages are freed by their warps, Vᵀ's filled by each thread.
        let transposes = transposes_v(E::BYTES);
        q_ring.init(&one, 8);
        feed.init(&one, if transposes { TRANSPOSER_THREADS } else { 0 });
        ring.k.init(&one, 8);
        if transposes {
            ring.v.init(&one, TRANSPOSER_WARPS);
            ring.vt.init_with_producers(&one, TRANSPOSER_THREADS, 8);
        } else {
            ring.v.init(&one, 8);
        }
    }
    sync_block();

    // SAFETY: each warpgroup enters its role branch whole and converged.
    let wg = unsafe { Warpgroup::enter() };
    match wg.index() {
        0 => {
            if transposes_v(E::BYTES) {
                regs::release::<FP8_PRODUCER_REGISTERS>(&wg);
            } else {
                regs::release::<PRODUCER_REGISTERS>(&wg);
            }
            if warp_index() == 0
                && let Some(one) = elect_one()
            {
                producer::run::<E, D, N, S>(&one, &p, &mem, &feed, &q_ring, &ring);
            } else if transposes_v(E::BYTES) && warp_index() > 0 {
                let warp = warp_index() - 1;
                transposer::run::<E, D, N, S>(warp, TRANSPOSER_WARPS, &p, &mem, &feed, &ring);
            }
        }
        c @ (1 | 2) => {
            if transposes_v(E::BYTES) {
                regs::acquire::<FP8_CONSUMER_REGISTERS>(&wg);
            } else {
                regs::acquire::<CONSUMER_REGISTERS>(&wg);
            }
            consumer::run::<E, D, N, S, RS, RO, KB, PINGPONG, OVERLAP>(
                &wg,
                c - 1,
                &p,
                &mem,
                &feed,
                &q_ring,
                &ring,
            );
        }
        _ => trap(),
    }
}
