//! The FP8 attention GEMM chain on one 64-row block, head_dim 128: S =
//! Q·Kᵀ (SS e4m3), P = e4m3(S) packed from the thread's own accumulator
//! registers (`Accumulator::to_a_e4m3`), O = P·V (RS e4m3) with V
//! transposed in shared memory (keys contiguous: FP8 wgmma reads B K-major
//! only), its keys in `layout::fragment::fp8_key_of_k` order within each
//! 32-key block (`fp8::transpose`).

use super::load_whole_tiles;
use crate::abi::selftest::ChainE4m3Params;
use crate::arch::elem::{E4m3, KMajor};
use crate::arch::mbarrier::MBarrier;
use crate::arch::smem::{self, Tile};
use crate::arch::sync::{fence_proxy_async_shared, sync_block};
use crate::arch::thread::{Warpgroup, trap};
use crate::arch::wgmma::{self, Accumulator, FragA, Mma, ScaleD};
use crate::fp8::transpose;
use crate::layout::fragment::accumulator;

/// 64 queries x 128 head dims.
type QTile = Tile<E4m3, 64, 128, KMajor>;
/// 128 keys x 128 head dims.
type KTile = Tile<E4m3, 128, 128, KMajor>;
/// 128 keys x 128 head dims (V as loaded), and 128 head dims x 128 keys
/// (Vᵀ, keys permuted per 32-key block).
type VTile = Tile<E4m3, 128, 128, KMajor>;

/// # Safety
/// Launched with 128 threads and `CHAIN_E4M3_SMEM_BYTES` of dynamic shared
/// memory; maps and output as `ChainE4m3Params` documents.
pub(crate) unsafe fn run(p: ChainE4m3Params) {
    let base = smem::base();
    if base & 1023 != 0 {
        trap();
    }
    // SAFETY: the layout of CHAIN_E4M3_SMEM_BYTES: Q, K, V, Vᵀ, the barrier.
    let (q, k, v, vt, bar) = unsafe {
        (
            QTile::at(base),
            KTile::at(base + QTile::BYTES),
            VTile::at(base + QTile::BYTES + KTile::BYTES),
            VTile::at(base + QTile::BYTES + KTile::BYTES + VTile::BYTES),
            MBarrier::at(base + QTile::BYTES + KTile::BYTES + 2 * VTile::BYTES),
        )
    };
    // SAFETY: each box (128 bytes x rows) is exactly its tile, in this block's fresh layout; the
    // barrier is not initialized yet.
    unsafe {
        load_whole_tiles(
            &bar,
            [
                (p.q_map, q.addr(), QTile::BYTES),
                (p.k_map, k.addr(), KTile::BYTES),
                (p.v_map, v.addr(), VTile::BYTES),
            ],
        )
    };

    // SAFETY: the block's only warpgroup, converged.
    let wg = unsafe { Warpgroup::enter() };
    let thread = wg.thread();
    // SAFETY: V is loaded (waited for) and never written; Vᵀ is this
    // call's alone.
    unsafe { transpose::v_tile::<128>(v.addr(), vt.addr(), thread / 32, 4) };
    // Every thread's part of Vᵀ written, then visible to wgmma.
    sync_block();
    fence_proxy_async_shared();
    let mut s = Accumulator::<64>::zeroed();
    s.fence_operands();
    wgmma::fence(&wg);
    for step in 0..4 {
        let scale = ScaleD::from_step(step);
        s.mma_ss_e4m3(&wg, q.desc(step), k.desc(step), scale);
    }
    wgmma::commit_group(&wg);
    s.wait::<0>(&wg);

    // P is packed completely before the fence (as in `chain`).
    let p_frags: [FragA<E4m3>; 4] = core::array::from_fn(|kb| s.to_a_e4m3(kb as u32));
    let mut o = Accumulator::<64>::zeroed();
    o.fence_operands();
    wgmma::fence(&wg);
    for (kb, frag) in p_frags.iter().enumerate() {
        let scale = ScaleD::from_step(kb as u32);
        o.mma_rs_e4m3(&wg, *frag, vt.desc(kb as u32), scale);
    }
    wgmma::commit_group(&wg);
    o.wait::<0>(&wg);
    o.for_each(|reg, x| {
        let (row, col) = accumulator(thread, reg);
        // SAFETY: O is 64 x 128 (launch contract).
        unsafe { *p.o.as_mut_ptr().add((row * 128 + col) as usize) = x };
    });
}
