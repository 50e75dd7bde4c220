//! The producer: one elected thread loads Q once, then K and V of every key
//! block the CTA visits, stage by stage through the ring.

use super::{HalfElem, Smem, Work};
use crate::abi::fwd::FwdParams;
use crate::arch::mbarrier::MBarrier;
use crate::arch::pipeline::{PipelineState, TmaPipeline};
use crate::arch::thread::Elected;
use crate::arch::tma;
use crate::attn::tiles::BLOCK_M;

/// Head-dim columns per TMA box (128 bytes of 16-bit elements).
const BOX_COLS: u32 = 64;

#[inline(always)]
pub(super) fn run<E: HalfElem, const D: u32, const N: u32, const S: usize>(
    one: &Elected,
    p: &FwdParams,
    w: &Work,
    mem: &Smem,
    q_bar: &MBarrier,
    ring: &TmaPipeline<S>,
) {
    tma::prefetch(p.q_map);
    tma::prefetch(p.k_map);
    tma::prefetch(p.v_map);
    let (head, kv_head, batch) = (w.head as i32, w.kv_head as i32, w.batch as i32);

    q_bar.arrive_expect_tx(BLOCK_M * D * E::BYTES);
    for b in 0..D / BOX_COLS {
        let dst = mem.q + b * BLOCK_M * 128;
        let coords = [
            (b * BOX_COLS) as i32,
            (w.m_block * BLOCK_M) as i32,
            head,
            batch,
        ];
        // SAFETY: box (64, 128, 1, 1) fills Q's column block b; the query
        // block starts inside the tensor (the grid covers seqlen_q).
        unsafe { tma::load(one, p.q_map, dst, q_bar, coords) };
    }

    let mut state = PipelineState::<S>::producer();
    for n in (w.n_min..w.n_max).rev() {
        ring.producer_acquire(state);
        let full = ring.producer_expect(state, 2 * N * D * E::BYTES);
        let stage = state.index() * mem.stage_bytes;
        for b in 0..D / BOX_COLS {
            let coords = [(b * BOX_COLS) as i32, (n * N) as i32, kv_head, batch];
            let block = b * N * 128;
            // SAFETY: the stage is free (acquired); boxes (64, N, 1, 1) fill
            // column block b of K and V; key block n starts inside the
            // tensor (n < key_blocks' max <= ceil(seqlen_k / N)).
            unsafe {
                tma::load(one, p.k_map, mem.k + stage + block, &full, coords);
                tma::load(one, p.v_map, mem.v + stage + block, &full, coords);
            }
        }
        state.advance();
    }
}
