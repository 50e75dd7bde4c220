//! A consumer warpgroup: 64 query rows, S = Q·Kᵀ, mask where needed, online
//! softmax, O += P·V for every key block, then the epilogue.

use super::softmax::OnlineSoftmax;
use super::{HalfElem, Smem, Work, epilogue};
use crate::abi::fwd::FwdParams;
use crate::arch::elem::{KMajor, MnMajor};
use crate::arch::mbarrier::MBarrier;
use crate::arch::pipeline::{PipelineState, TmaPipeline};
use crate::arch::smem::Tile;
use crate::arch::thread::{Warpgroup, lane};
use crate::arch::wgmma::{self, Accumulator, FragA, Mma, ScaleD};
use crate::attn::blocks::needs_mask;
use crate::attn::tiles::{BLOCK_M, ROWS_PER_CONSUMER};
use crate::layout::fragment::accumulator;

#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn run<
    E: HalfElem,
    const D: u32,
    const N: u32,
    const S: usize,
    const RS: usize,
    const RO: usize,
    const KB: usize,
>(
    wg: &Warpgroup,
    me: u32,
    p: &FwdParams,
    w: &Work,
    mem: &Smem,
    q_bar: &MBarrier,
    ring: &TmaPipeline<S>,
) where
    Accumulator<RS>: Mma,
    Accumulator<RO>: Mma,
{
    let thread = wg.thread();
    let first_row = ROWS_PER_CONSUMER * me;
    // SAFETY: Q's region (smem_layout), 1024-byte aligned.
    let q = unsafe { Tile::<E, BLOCK_M, D, KMajor>::at(mem.q) };
    let q_row0 = w.m_block * BLOCK_M + first_row;
    let mut softmax = OnlineSoftmax::new(p.scale_log2);
    let mut o = Accumulator::<RO>::zeroed();
    let mut s = Accumulator::<RS>::zeroed();
    q_bar.wait(0);

    let mut state = PipelineState::<S>::consumer();
    for n in (w.n_min..w.n_max).rev() {
        ring.consumer_wait(state);
        let stage = state.index() * mem.stage_bytes;
        // SAFETY: the stage holds key block n (consumer_wait).
        let (k, v) = unsafe {
            (
                Tile::<E, N, D, KMajor>::at(mem.k + stage),
                Tile::<E, N, D, MnMajor>::at(mem.v + stage),
            )
        };

        s.fence_operands();
        wgmma::fence(wg);
        for step in 0..D / 16 {
            let scale = if step == 0 {
                ScaleD::Zero
            } else {
                ScaleD::Accumulate
            };
            E::qk(
                &mut s,
                wg,
                q.desc_from_row(first_row, step),
                k.desc(step),
                scale,
            );
        }
        wgmma::commit_group(wg);
        s.wait::<0>(wg);

        if needs_mask(&w.spec, w.m_block * BLOCK_M, BLOCK_M, n, N) {
            let key0 = n * N;
            s.update(|reg, x| {
                let (r, c) = accumulator(thread, reg);
                if w.spec.visible(q_row0 + r, key0 + c) {
                    x
                } else {
                    f32::NEG_INFINITY
                }
            });
        }
        softmax.step(&mut s, &mut o);

        // All of P is packed before the fence and stays untouched until the
        // wait: wgmma reads A registers asynchronously.
        let p_frags: [FragA<E>; KB] = core::array::from_fn(|kb| E::p_fragment(&s, kb as u32));
        o.fence_operands();
        wgmma::fence(wg);
        for (kb, frag) in p_frags.iter().enumerate() {
            E::pv(&mut o, wg, *frag, v.desc(kb as u32));
        }
        wgmma::commit_group(wg);
        o.wait::<0>(wg);
        if lane() == 0 {
            ring.consumer_release(state);
        }
        state.advance();
    }

    let lse = softmax.finish(&mut o, p.scale);
    epilogue::store::<E, RO>(p, w, &o, lse, q_row0, thread);
}
