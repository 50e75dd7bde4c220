//! A consumer warpgroup: 64 query rows; for every key block S = Q·Kᵀ, the
//! mask where needed, the online softmax and O += P·V; then the epilogue.
//!
//! Two schedules, chosen at build time (`OVERLAP`):
//! - overlapped (FA3 section 3.2): S of block j+1 and P·V of block j are
//!   issued back to back; the softmax of S runs while P·V is in flight, and
//!   O is rescaled only after P·V's wait (its registers are busy until then);
//! - plain: S, wait, softmax, P·V, wait; nothing overlaps within the
//!   warpgroup (for the ablation).
//!
//! Either way, each GEMM issue is one pingpong turn (`Turns`). The ring
//! states run on from tile to tile, as the producer's do.

use super::descale::Descale;
use super::input::FwdInput;
use super::softmax::OnlineSoftmax;
use super::{FwdTiles, KvRings, Smem, Work, epilogue, kernel_row, mask_spec};
use crate::abi::fwd::FwdParams;
use crate::arch::elem::KMajor;
use crate::arch::mma_elem::MmaElem;
use crate::arch::pipeline::{PipelineState, TmaPipeline};
use crate::arch::smem::Tile;
use crate::arch::thread::Warpgroup;
use crate::arch::turns::Turns;
use crate::arch::wgmma::{self, Accumulator, FragA, Mma, ScaleD};
use crate::attn::mask::Band;
use crate::attn::tiles::{BLOCK_M, ROWS_PER_CONSUMER, transposes_v};
use crate::layout::fragment::accumulator;
use crate::sched::{ConsumerTiles, TileFeed};

/// The consumer's view of the CTA: its tiles and its rows.
struct Consumer<'a, E, const D: u32, const N: u32, const S: usize> {
    wg: &'a Warpgroup,
    w: &'a Work,
    /// The launch's mask in the form the per-score test uses.
    band: Band,
    mem: &'a Smem,
    rings: &'a KvRings<S>,
    q: Tile<E, BLOCK_M, D, KMajor>,
    first_row: u32,
    /// Global index of this consumer's first query row.
    q_row0: u32,
    thread: u32,
    descale: Descale<E>,
}

impl<E: FwdInput, const D: u32, const N: u32, const S: usize> Consumer<'_, E, D, N, S> {
    #[inline(always)]
    fn k(&self, state: PipelineState<S>) -> Tile<E, N, D, KMajor> {
        // SAFETY: the stage's K region (smem_layout); the caller waited for it.
        unsafe { Tile::at(self.mem.k + state.index() * self.mem.stage_bytes) }
    }

    /// Shared address of the stage's V as P·V reads it (its layout is
    /// `E::VMajor`'s: Vᵀ where the producer warpgroup transposes V).
    #[inline(always)]
    fn v(&self, state: PipelineState<S>) -> u32 {
        let v = if transposes_v(E::BYTES) {
            self.mem.vt
        } else {
            self.mem.v
        };
        v + state.index() * self.mem.stage_bytes
    }

    /// The ring of the V stages P·V reads.
    #[inline(always)]
    fn values(&self) -> &TmaPipeline<S> {
        self.rings.values::<E>()
    }

    /// Issues S = Q·Kᵀ of the stage's key block and commits it.
    #[inline(always)]
    fn issue_qk<const RS: usize>(&self, s: &mut Accumulator<RS>, state: PipelineState<S>)
    where
        Accumulator<RS>: Mma,
    {
        let k = self.k(state);
        s.fence_operands();
        wgmma::fence(self.wg);
        for step in 0..D / <E as MmaElem<KMajor>>::K_STEP {
            let scale = ScaleD::from_step(step);
            <E as MmaElem<KMajor>>::ss(
                s,
                self.wg,
                self.q.desc_from_row(self.first_row, step),
                k.desc(step),
                scale,
            );
        }
        wgmma::commit_group(self.wg);
    }

    /// Issues O += P·V of the stage's key block and commits it. `p` must stay
    /// untouched until the wait: wgmma reads A registers asynchronously.
    #[inline(always)]
    fn issue_pv<const RO: usize, const KB: usize>(
        &self,
        o: &mut Accumulator<RO>,
        p: &[FragA<E>; KB],
        state: PipelineState<S>,
    ) where
        Accumulator<RO>: Mma,
    {
        let v = self.v(state);
        o.fence_operands();
        wgmma::fence(self.wg);
        for (kb, frag) in p.iter().enumerate() {
            E::pv(o, self.wg, *frag, E::v_desc::<N, D>(v, kb as u32));
        }
        wgmma::commit_group(self.wg);
    }

    /// Masks the scores of key block `n` if the block needs it.
    #[inline(always)]
    fn mask<const RS: usize>(&self, s: &mut Accumulator<RS>, n: u32)
    where
        Accumulator<RS>: Mma,
    {
        let (lo, hi) = self.w.unmasked;
        if n < lo || n >= hi {
            self.mask_block(s, n);
        }
    }

    /// Masks the scores of key block `n`: −inf where the band hides them.
    #[inline(always)]
    fn mask_block<const RS: usize>(&self, s: &mut Accumulator<RS>, n: u32)
    where
        Accumulator<RS>: Mma,
    {
        let (key0, band, thread, q_row0) = (n * N, self.band, self.thread, self.q_row0);
        s.update(|reg, x| {
            let (r, c) = accumulator(thread, reg);
            if band.visible(q_row0 + r, key0 + c) {
                x
            } else {
                f32::NEG_INFINITY
            }
        });
    }

    /// S = Q·Kᵀ of key block `n` on its own (nothing else in flight): wait
    /// for K, issue in one turn, wait, free K, mask.
    #[inline(always)]
    fn scores_alone<const RS: usize>(
        &self,
        turns: &Turns,
        s: &mut Accumulator<RS>,
        state: PipelineState<S>,
        n: u32,
    ) where
        Accumulator<RS>: Mma,
    {
        self.rings.k.consumer_wait(state);
        turns.begin();
        self.issue_qk(s, state);
        turns.end(false);
        s.wait::<0>(self.wg);
        self.rings.k.warp_release(state);
        self.mask(s, n);
    }

    /// O += P·V of the stage's block on its own (nothing else in flight):
    /// wait for V, issue in one turn (consumer 1 keeps the tile's `last`
    /// one), wait, free V.
    #[inline(always)]
    fn values_alone<const RO: usize, const KB: usize>(
        &self,
        turns: &Turns,
        o: &mut Accumulator<RO>,
        p: &[FragA<E>; KB],
        state: PipelineState<S>,
        last: bool,
    ) where
        Accumulator<RO>: Mma,
    {
        self.values().consumer_wait(state);
        turns.begin();
        self.issue_pv(o, p, state);
        turns.end(last);
        o.wait::<0>(self.wg);
        self.values().warp_release(state);
    }
}

#[inline(always)]
fn pack<E: FwdInput, const RS: usize, const KB: usize>(s: &Accumulator<RS>) -> [FragA<E>; KB] {
    core::array::from_fn(|kb| E::p_fragment(s, kb as u32))
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn run<
    E: FwdInput,
    const D: u32,
    const N: u32,
    const S: usize,
    const RS: usize,
    const RO: usize,
    const KB: usize,
    const PINGPONG: bool,
    const OVERLAP: bool,
>(
    wg: &Warpgroup,
    me: u32,
    p: &FwdParams,
    mem: &Smem,
    feed: &TileFeed,
    q_ring: &TmaPipeline<1>,
    rings: &KvRings<S>,
) where
    Accumulator<RS>: Mma,
    Accumulator<RO>: Mma,
{
    let first_row = ROWS_PER_CONSUMER * me;
    let band = mask_spec(p).band();
    let mut q_state = PipelineState::<1>::consumer();
    let mut state = PipelineState::<S>::consumer();
    let mut tiles = ConsumerTiles::new(FwdTiles::<N>(p), feed);
    while let Some(w) = tiles.current() {
        let c = Consumer::<E, D, N, S> {
            wg,
            w: &w,
            band,
            mem,
            rings,
            // SAFETY: Q's region (smem_layout), 1024-byte aligned.
            q: unsafe { Tile::at(mem.q) },
            first_row,
            q_row0: w.m_block * BLOCK_M + first_row,
            thread: wg.thread(),
            descale: Descale::of_tile(p, &w),
        };
        let mut softmax = OnlineSoftmax::<E>::new();
        let mut o = Accumulator::<RO>::zeroed();
        q_ring.consumer_wait(q_state);
        // V's factor of the last block added to O (`descale`).
        let mut v_factor = 1.0;
        if w.n_min < w.n_max {
            let turns = Turns::new(me, PINGPONG);
            v_factor = if OVERLAP {
                overlapped::<E, D, N, S, RS, RO, KB>(&c, &turns, &mut softmax, &mut o, &mut state)
            } else {
                plain::<E, D, N, S, RS, RO, KB>(&c, &turns, &mut softmax, &mut o, &mut state)
            };
        }
        // The tile's GEMMs are done: the producer may load the next tile's
        // Q while this one's epilogue runs. (Releasing Q right after the
        // last S instead measured 9% slower at hdim 64, 8k.)
        q_ring.warp_release(q_state);
        q_state.advance();
        let lse = softmax.finish(&mut o, p.scale, v_factor);
        epilogue::store::<E, RO>(p, &w, &o, lse, c.q_row0, c.thread);
        tiles.advance();
    }
}

/// S(j+1) and P·V(j) in one turn; softmax(j+1) under P·V(j). Returns V's
/// factor of the last block (`descale`).
#[inline(always)]
fn overlapped<
    E: FwdInput,
    const D: u32,
    const N: u32,
    const S: usize,
    const RS: usize,
    const RO: usize,
    const KB: usize,
>(
    c: &Consumer<'_, E, D, N, S>,
    turns: &Turns,
    softmax: &mut OnlineSoftmax<E>,
    o: &mut Accumulator<RO>,
    state: &mut PipelineState<S>,
) -> f32
where
    Accumulator<RS>: Mma,
    Accumulator<RO>: Mma,
{
    let (n_min, n_max) = (c.w.n_min, c.w.n_max);
    let mut s = Accumulator::<RS>::zeroed();

    // Prologue: the first (last-indexed) block, S only.
    c.scores_alone(turns, &mut s, *state, n_max - 1);
    let _ = softmax.scores(&mut s, c.descale.scores(n_max - 1)); // O is zero: nothing to rescale
    let mut v_factor = c.descale.values(n_max - 1);
    let mut p: [FragA<E>; KB] = pack(&s);
    let mut prev = *state;
    state.advance();

    // One block: S(n) with P·V of the block before, in one turn; `masked`:
    // mask S(n) (`Some(true)`), not (`Some(false)`), or ask the band (`None`).
    let mut block = #[inline(always)]
    |n: u32, masked: Option<bool>| {
        // The factors' loads issued ahead of the GEMMs they wait behind.
        let (scores_factor, next_v_factor) = (c.descale.scores(n), c.descale.values(n));
        // V(j) was loaded before K(j+1): it is there when K is.
        c.rings.k.consumer_wait(*state);
        c.values().consumer_wait(prev);
        turns.begin();
        c.issue_qk(&mut s, *state);
        c.issue_pv(o, &p, prev);
        turns.end(false);
        s.wait::<1>(c.wg); // S is done; P·V may still run
        c.rings.k.warp_release(*state);
        match masked {
            Some(true) => c.mask_block(&mut s, n),
            Some(false) => {}
            None => c.mask(&mut s, n),
        }
        let correction = softmax.scores(&mut s, scores_factor);
        o.wait::<0>(c.wg);
        c.values().warp_release(prev);
        // O moves from block j's V units to block j+1's.
        OnlineSoftmax::<E>::rescale(o, correction, v_factor / next_v_factor);
        v_factor = next_v_factor;
        p = pack(&s);
        prev = *state;
        state.advance();
    };
    if const { kernel_row::<E, D, N, S>().peel_masked } {
        // Last index first: the blocks the band's right edge cuts, those it
        // leaves whole (`Work::unmasked`), those its left edge cuts.
        let top = n_max - 1;
        let (lo, hi) = c.w.unmasked;
        let right = hi.clamp(n_min, top);
        let left = lo.clamp(n_min, right);
        for n in (right..top).rev() {
            block(n, Some(true));
        }
        for n in (left..right).rev() {
            block(n, Some(false));
        }
        for n in (n_min..left).rev() {
            block(n, Some(true));
        }
    } else {
        for n in (n_min..n_max - 1).rev() {
            block(n, None);
        }
    }

    // Epilogue of the loop: the last P·V.
    c.values_alone(turns, o, &p, prev, true);
    v_factor
}

/// S, wait, softmax, P·V, wait: the schedule without intra-warpgroup
/// overlap (each GEMM is still one pingpong turn). Returns V's factor of
/// the last block (`descale`).
#[inline(always)]
fn plain<
    E: FwdInput,
    const D: u32,
    const N: u32,
    const S: usize,
    const RS: usize,
    const RO: usize,
    const KB: usize,
>(
    c: &Consumer<'_, E, D, N, S>,
    turns: &Turns,
    softmax: &mut OnlineSoftmax<E>,
    o: &mut Accumulator<RO>,
    state: &mut PipelineState<S>,
) -> f32
where
    Accumulator<RS>: Mma,
    Accumulator<RO>: Mma,
{
    let mut s = Accumulator::<RS>::zeroed();
    let mut v_factor = c.descale.values(c.w.n_max - 1);
    for n in (c.w.n_min..c.w.n_max).rev() {
        let next_v_factor = c.descale.values(n);
        c.scores_alone(turns, &mut s, *state, n);
        let correction = softmax.scores(&mut s, c.descale.scores(n));
        OnlineSoftmax::<E>::rescale(o, correction, v_factor / next_v_factor);
        v_factor = next_v_factor;
        let p: [FragA<E>; KB] = pack(&s);
        c.values_alone(turns, o, &p, *state, n == c.w.n_min);
        state.advance();
    }
    v_factor
}
