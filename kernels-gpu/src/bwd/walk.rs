//! A backward consumer's walk over its tiles, shared by both ways of
//! splitting a tile (`consumer`, `roles`): the tile feed, the K/V and Q/dO
//! rings, the per-tile gradients and their epilogue around a per-query-block
//! body, and the end of each query block (its dQ part reduced).

use super::dq::DqReducer;
use super::step::Step;
use super::{BwdElem, BwdTiles, Rings, Smem, Work, mask_spec};
use crate::abi::bwd::BwdParams;
use crate::arch::pipeline::PipelineState;
use crate::arch::smem;
use crate::arch::thread::Warpgroup;
use crate::arch::wgmma::{Accumulator, Mma};
use crate::sched::{ConsumerTiles, TileFeed};

/// One query block `m` of tile `w`, as a consumer sees it.
pub(super) struct Block<'a, const D: u32, const M: u32, const N: u32> {
    pub step: &'a Step<'a, D, M, N>,
    pub reducer: &'a DqReducer<'a>,
    pub w: &'a Work,
    pub m: u32,
}

impl<const D: u32, const M: u32, const N: u32> Block<'_, D, M, N> {
    /// The end of the key blocks that see this query block, from the
    /// producer's word in the stage (the deterministic order of the dQ
    /// reductions); read before the stage is released.
    #[inline(always)]
    pub fn keys_end<const S: usize>(&self, state: PipelineState<S>) -> u32 {
        // SAFETY: the stage's key-range word (waited for; the producer
        // wrote it before its arrival).
        unsafe { smem::load_u32(self.step.mem.keys_end(state.index())) }
    }

    /// After the consumer's last GEMM reading the stage: frees its Q, then
    /// computes its `COLS` columns of the block's dQ partial from dS tile
    /// `ds` and reduces them into the accumulator in global memory.
    #[inline(always)]
    pub fn reduce_dq<E: BwdElem, const S: usize, const R: usize, const COLS: u32>(
        &self,
        rings: &Rings<S>,
        state: PipelineState<S>,
        ds: u32,
    ) where
        Accumulator<R>: Mma,
    {
        let step = self.step;
        let keys_end = self.keys_end(state);
        // Every lane read this word and the LSE row; the caller's GEMMs
        // reading Q have completed (dO was freed earlier).
        rings.release_q(state);
        let mut dq = Accumulator::<R>::zeroed();
        step.issue_dq::<E, R, COLS>(&mut dq, ds);
        dq.wait::<0>(step.wg);
        self.reducer.reduce(&dq, self.w, self.m, || keys_end);
    }
}

/// Consumer `me`'s tiles; its keys start at row `first_row` of the tile.
/// Per tile: `gradients()` starts what the consumer accumulates, `block`
/// runs each query block that sees the keys (with the block's ring
/// state), `store` writes the result out (given the consumer's first key).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn walk<const D: u32, const M: u32, const N: u32, const S: usize, G>(
    wg: &Warpgroup,
    me: u32,
    p: &BwdParams,
    mem: &Smem,
    feed: &TileFeed,
    rings: &Rings<S>,
    first_row: u32,
    mut gradients: impl FnMut() -> G,
    mut block: impl FnMut(&Block<'_, D, M, N>, PipelineState<S>, &mut G),
    mut store: impl FnMut(&Work, u32, &mut G),
) {
    let band = mask_spec(p).band();
    let thread = wg.thread();
    let mut kv_state = PipelineState::<1>::consumer();
    let mut state = PipelineState::<S>::consumer();
    let reducer = DqReducer::new(wg, me, p, mem);
    let mut tiles = ConsumerTiles::new(BwdTiles::<M, N>(p), feed);
    while let Some(w) = tiles.current() {
        let mut g = gradients();
        let key0 = w.n_block * N + first_row;
        if w.m_min < w.m_max {
            let step = Step::<D, M, N> {
                wg,
                me,
                thread,
                mem,
                band,
                scale_log2: p.scale_log2,
                first_row,
                key0,
                unmasked: w.unmasked,
            };
            rings.kv.consumer_wait(kv_state);
            for m in w.m_min..w.m_max {
                let b = Block {
                    step: &step,
                    reducer: &reducer,
                    w: &w,
                    m,
                };
                block(&b, state, &mut g);
                state.advance();
            }
            rings.kv.warp_release(kv_state);
            kv_state.advance();
        }
        store(&w, key0, &mut g);
        tiles.advance();
    }
}
