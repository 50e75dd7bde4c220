//! Self-test kernels: each proves one Hopper primitive on the GPU against a
//! CPU reference (launched by `fa3::diagnostics`, checked in `tests/`).

pub(crate) mod bulk_add;
pub(crate) mod chain;
pub(crate) mod chain_e4m3;
pub(crate) mod gemm;
pub(crate) mod pingpong;
pub(crate) mod tma_round_trip;

use crate::abi::{GlobalPtr, TensorMap};
use crate::arch::mbarrier::{MBarrier, init_for_one_issuer};
use crate::arch::tma;

/// Loads whole tiles, one 2-D TMA box each, behind `bar` (initialized here
/// for one issuer), and waits for them: `(map, shared address, bytes)` per
/// tile.
///
/// # Safety
/// Each map's box is exactly its tile: `bytes` at its 128-byte aligned
/// shared address, which nothing else touches until the wait; `bar` is
/// this block's and not yet initialized.
#[inline(always)]
pub(crate) unsafe fn load_whole_tiles<const N: usize>(
    bar: &MBarrier,
    tiles: [(GlobalPtr<TensorMap>, u32, u32); N],
) {
    if let Some(one) = &init_for_one_issuer(bar) {
        // By reference: an array's by-value iterator can stay a loop over
        // local memory.
        bar.arrive_expect_tx(tiles.iter().map(|t| t.2).sum());
        for &(map, dst, _) in &tiles {
            // SAFETY: the box is exactly the tile (contract).
            unsafe { tma::load(one, map, dst, bar, [0, 0]) };
        }
    }
    bar.wait(0);
}
