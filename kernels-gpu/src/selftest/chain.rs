//! The attention GEMM chain on one 64-row block, without the softmax: S =
//! Q·Kᵀ (SS), row max and sum of S (quad reductions), P = bf16(S) kept in
//! registers, O = P·V (RS, V MN-major).

use super::load_whole_tiles;
use crate::abi::selftest::ChainParams;
use crate::arch::elem::{Bf16, KMajor, MnMajor};
use crate::arch::fragment::{quad_max, quad_sum};
use crate::arch::mbarrier::MBarrier;
use crate::arch::smem::{self, Tile};
use crate::arch::thread::{Warpgroup, lane, trap};
use crate::arch::wgmma::{self, Accumulator, FragA, Mma, ScaleD};
use crate::layout::fragment::accumulator;

type QTile = Tile<Bf16, 64, 64, KMajor>;
type KTile = Tile<Bf16, 128, 64, KMajor>;
type VTile = Tile<Bf16, 128, 64, MnMajor>;

/// # Safety
/// Launched with 128 threads and `CHAIN_SMEM_BYTES` of dynamic shared
/// memory; maps and outputs as `ChainParams` documents.
pub(crate) unsafe fn run(p: ChainParams) {
    let base = smem::base();
    if base & 1023 != 0 {
        trap();
    }
    // SAFETY: the layout of CHAIN_SMEM_BYTES: Q, K, V, then the barrier.
    let (q, k, v, bar) = unsafe {
        (
            QTile::at(base),
            KTile::at(base + QTile::BYTES),
            VTile::at(base + QTile::BYTES + KTile::BYTES),
            MBarrier::at(base + QTile::BYTES + KTile::BYTES + VTile::BYTES),
        )
    };
    // SAFETY: each box is exactly its tile, in this block's fresh layout; the
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
    let mut s = Accumulator::<64>::zeroed();
    s.fence_operands();
    wgmma::fence(&wg);
    for step in 0..4 {
        let scale = ScaleD::from_step(step);
        s.mma_ss_bf16(&wg, q.desc(step), k.desc(step), scale);
    }
    wgmma::commit_group(&wg);
    s.wait::<0>(&wg);

    // Each thread holds two rows: registers 4j, 4j+1 (row r) and 4j+2, 4j+3
    // (row r + 8).
    let (mut max, mut sum) = ([f32::NEG_INFINITY; 2], [0.0f32; 2]);
    s.for_each(|reg, x| {
        let half = ((reg % 4) / 2) as usize;
        max[half] = max[half].max(x);
        sum[half] += x;
    });
    for half in 0..2 {
        let (m, total) = (quad_max(max[half]), quad_sum(sum[half]));
        if lane() & 3 == 0 {
            let (row, _) = accumulator(thread, 2 * half as u32);
            // SAFETY: 64 row outputs (launch contract).
            unsafe {
                *p.row_max.as_mut_ptr().add(row as usize) = m;
                *p.row_sum.as_mut_ptr().add(row as usize) = total;
            }
        }
    }

    // P is packed completely before the fence: A registers written after
    // `wgmma.fence` may not feed a wgmma.
    let p_frags: [FragA<Bf16>; 8] = core::array::from_fn(|kb| s.to_a_bf16(kb as u32));
    let mut o = Accumulator::<32>::zeroed();
    o.fence_operands();
    wgmma::fence(&wg);
    for (kb, frag) in p_frags.iter().enumerate() {
        let scale = ScaleD::from_step(kb as u32);
        o.mma_rs_bf16(&wg, *frag, v.desc(kb as u32), scale);
    }
    wgmma::commit_group(&wg);
    o.wait::<0>(&wg);
    o.for_each(|reg, x| {
        let (row, col) = accumulator(thread, reg);
        // SAFETY: O is 64 x 64 (launch contract).
        unsafe { *p.o.as_mut_ptr().add((row * 64 + col) as usize) = x };
    });
}
