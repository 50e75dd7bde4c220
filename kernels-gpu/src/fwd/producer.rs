//! The producer: one elected thread loads, for every tile of the CTA, Q and
//! then K and V of every key block the tile visits, through their rings (K
//! first: S needs it first). The rings run on across tiles, so the next
//! tile's first blocks load while the consumers finish the current one.

use super::input::FwdInput;
use super::{FwdTiles, KvRings, Smem};
use crate::abi::fwd::FwdParams;
use crate::arch::pipeline::{PipelineState, TmaPipeline};
use crate::arch::thread::Elected;
use crate::arch::tma;
use crate::attn::tiles::BLOCK_M;
use crate::sched::{ProducerTiles, TileFeed};

#[inline(always)]
pub(super) fn run<E: FwdInput, const D: u32, const N: u32, const S: usize>(
    one: &Elected,
    p: &FwdParams,
    mem: &Smem,
    feed: &TileFeed,
    q_ring: &TmaPipeline<1>,
    rings: &KvRings<S>,
) {
    tma::prefetch(p.q_map);
    tma::prefetch(p.k_map);
    tma::prefetch(p.v_map);
    let mut q_state = PipelineState::<1>::producer();
    let mut state = PipelineState::<S>::producer();
    for w in ProducerTiles::new(one, FwdTiles::<N>(p), feed) {
        let (head, kv_head, batch) = (w.head as i32, w.kv_head as i32, w.batch as i32);
        // Q is free once both consumers' last S = Q·Kᵀ of the previous tile
        // has completed.
        q_ring.producer_acquire(q_state);
        let full = q_ring.producer_expect(q_state, BLOCK_M * D * E::BYTES);
        let at = [(w.m_block * BLOCK_M) as i32, head, batch];
        // SAFETY: Q is free (acquired); boxes (64, 128, 1, 1) fill Q; the
        // query block starts inside the tensor (m_block < ceil(seqlen_q /
        // 128)).
        unsafe { tma::load_rows::<E>(one, p.q_map, mem.q, &full, (BLOCK_M, D), at) };
        q_state.advance();

        for n in (w.n_min..w.n_max).rev() {
            let stage = state.index() * mem.stage_bytes;
            // Called twice, not looped over an array: a runtime-indexed array
            // of (ring, map, tile) would sit in local memory.
            let load = |ring: &TmaPipeline<S>, map, tile: u32| {
                ring.producer_acquire(state);
                let full = ring.producer_expect(state, N * D * E::BYTES);
                let at = [(n * N) as i32, kv_head, batch];
                // SAFETY: the stage is free (acquired); boxes (64, N, 1, 1)
                // fill it; key block n starts inside the tensor (n <
                // key_blocks' max <= ceil(seqlen_k / N)).
                unsafe { tma::load_rows::<E>(one, map, tile + stage, &full, (N, D), at) };
            };
            load(&rings.k, p.k_map, mem.k);
            load(&rings.v, p.v_map, mem.v);
            state.advance();
        }
    }
}
