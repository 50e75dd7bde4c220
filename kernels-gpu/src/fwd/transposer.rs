//! The FP8 forward's V transpose: FP8 wgmma reads B K-major only, so the
//! producer warpgroup's three warps besides the TMA warp turn each V stage
//! (keys x head dims, as TMA loads it) into Vᵀ (head dims x keys, keys in
//! the order P's e4m3 fragments hold them: `fp8::transpose`). They follow
//! the tile feed as the consumers do, stage by stage: V's stage is freed as
//! soon as it is read, Vᵀ's is announced once every thread has written and
//! fenced its part.

use super::{FwdTiles, KvRings, Smem};
use crate::abi::fwd::FwdParams;
use crate::arch::elem::Element;
use crate::arch::pipeline::PipelineState;
use crate::arch::sync::fence_proxy_async_shared;
use crate::attn::tiles::transposes_v;
use crate::fp8::transpose;
use crate::layout::fp8_transpose::TILE;
use crate::sched::{ConsumerTiles, TileFeed};

/// Warp `warp` of `warps` transposing warps (for inputs whose V is
/// transposed: `attn::tiles::transposes_v`).
#[inline(always)]
pub(super) fn run<E: Element, const D: u32, const N: u32, const S: usize>(
    warp: u32,
    warps: u32,
    p: &FwdParams,
    mem: &Smem,
    feed: &TileFeed,
    rings: &KvRings<S>,
) {
    const {
        assert!(
            !transposes_v(E::BYTES) || N == TILE,
            "V is transposed by 128-key tiles"
        )
    };
    // V's ring is read (consumer phases), Vᵀ's written (producer phases);
    // both advance once per key block.
    let mut v_state = PipelineState::<S>::consumer();
    let mut vt_state = PipelineState::<S>::producer();
    let mut tiles = ConsumerTiles::new(FwdTiles::<N>(p), feed);
    while let Some(w) = tiles.current() {
        for _ in w.n_min..w.n_max {
            let stage = v_state.index() * mem.stage_bytes;
            rings.v.consumer_wait(v_state);
            rings.vt.producer_acquire(vt_state);
            // SAFETY: V's stage is loaded (waited for) and only read until
            // it is released below; Vᵀ's stage is free (acquired) and only
            // these threads write it.
            unsafe { transpose::v_stage::<D>(mem.v + stage, mem.vt + stage, warp, warps) };
            // This thread's stores, visible to the consumers' wgmma.
            fence_proxy_async_shared();
            rings.vt.producer_commit(vt_state);
            rings.v.warp_release_after_loads(v_state);
            v_state.advance();
            vt_state.advance();
        }
        tiles.advance();
    }
}
