//! The backward producer: one elected thread loads, per tile, K and V of
//! the key block once, then for every query block that sees it Q with the
//! block's LSE·log2e, and dO with its rowsum(dO∘O) (TMA, bulk copies), into
//! one stage of the Q and the dO ring: Q's barrier completes without
//! waiting for dO, so S = K·Qᵀ can start. Tiles no query sees load nothing
//! (their consumers only write zero gradients).

use super::{BwdElem, BwdTiles, Rings, Smem, mask_spec};
use crate::abi::bwd::BwdParams;
use crate::arch::pipeline::PipelineState;
use crate::arch::thread::Elected;
use crate::arch::{bulk, smem, tma};
use crate::attn::blocks::key_blocks;
use crate::sched::{ProducerTiles, TileFeed};

#[inline(always)]
pub(super) fn run<E: BwdElem, const D: u32, const M: u32, const N: u32, const S: usize>(
    one: &Elected,
    p: &BwdParams,
    mem: &Smem,
    feed: &TileFeed,
    rings: &Rings<S>,
) {
    tma::prefetch(p.q_map);
    tma::prefetch(p.dout_map);
    tma::prefetch(p.k_map);
    tma::prefetch(p.v_map);
    let mut kv_state = PipelineState::<1>::producer();
    let mut state = PipelineState::<S>::producer();
    for w in ProducerTiles::new(one, BwdTiles::<M, N>(p), feed) {
        if w.m_min >= w.m_max {
            continue;
        }
        let (head, kv_head, batch) = (w.head as i32, w.kv_head as i32, w.batch as i32);
        // K and V are free once the consumers' last GEMMs of the previous
        // tile have completed.
        rings.kv.producer_acquire(kv_state);
        let full = rings.kv.producer_expect(kv_state, 2 * N * D * E::BYTES);
        let at = [(w.n_block * N) as i32, kv_head, batch];
        // SAFETY: K and V are free (acquired); boxes (64, N, 1, 1) fill
        // them; the key block starts inside the tensor (n_block <
        // ceil(seqlen_k / N)).
        unsafe {
            tma::load_rows::<E>(one, p.k_map, mem.k(), &full, (N, D), at);
            tma::load_rows::<E>(one, p.v_map, mem.v(), &full, (N, D), at);
        }
        kv_state.advance();

        let stats_row0 = (w.batch * p.heads + w.head) * p.m_blocks * M;
        for m in w.m_min..w.m_max {
            let stage = state.index();
            rings.q.producer_acquire(state);
            rings.dout.producer_acquire(state);
            // The end of the key blocks that see query block m, for the
            // deterministic order of the dQ reductions (`dq`). The mask is
            // read here, not once per tile: what it hoists spilled at 24
            // registers.
            let (_, keys_end) = key_blocks(&mask_spec(p), m * M, M, N);
            // SAFETY: the stage's word (free: acquired); published by Q's
            // arrival below, which releases this thread's earlier stores.
            unsafe { smem::store_u32(mem.keys_end(stage), keys_end) };
            let at = [(m * M) as i32, head, batch];
            let row = (stats_row0 + m * M) as u64 * 4;
            // Q and its LSE row first (S and P need them), then dO and
            // rowsum(dO∘O).
            let q_full = rings.q.producer_expect(state, M * D * E::BYTES + M * 4);
            // SAFETY: the stage is free (acquired); boxes (64, M, 1, 1) fill
            // its Q; query block m starts inside the tensor (m <
            // ceil(seqlen_q / M)); M f32 at (batch, head, block m) of the
            // (batch, heads, m_blocks · M) LSE workspace: 16-byte aligned
            // (M · 4 is), into the stage's free statistics.
            unsafe {
                tma::load_rows::<E>(one, p.q_map, mem.q(stage), &q_full, (M, D), at);
                bulk::load(
                    one,
                    mem.stats(stage),
                    p.neg_lse_log2.address() + row,
                    M * 4,
                    &q_full,
                );
            }
            let dout_full = rings.dout.producer_expect(state, M * D * E::BYTES + M * 4);
            // SAFETY: as for Q, dO and the rowsum workspace.
            unsafe {
                tma::load_rows::<E>(one, p.dout_map, mem.dout(stage), &dout_full, (M, D), at);
                bulk::load(
                    one,
                    mem.stats(stage) + M * 4,
                    p.dpsum.address() + row,
                    M * 4,
                    &dout_full,
                );
            }
            state.advance();
        }
    }
}
