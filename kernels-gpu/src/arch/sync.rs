//! Barriers between threads and fences between memory proxies.

use super::intrinsics;
use core::arch::asm;

/// Hardware named barriers (16 per CTA). Id 0 is the block barrier
/// ([`sync_block`]).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum NamedBarrier {
    /// Turn of consumer warpgroup 1 to issue its GEMMs (pingpong).
    ConsumerTurn1 = 1,
    /// Turn of consumer warpgroup 2 to issue its GEMMs (pingpong).
    ConsumerTurn2 = 2,
    /// Backward: both consumers have written their dS of the query block
    /// (each one's dQ GEMM reads the other's); with split roles, consumer
    /// 1 has written the block's dS.
    BwdDsWritten = 3,
    /// Backward: consumer warpgroup 1's own warps (its turn to add dQ from
    /// registers, deterministic launches).
    BwdConsumer1 = 4,
    /// Backward: consumer warpgroup 2's own warps.
    BwdConsumer2 = 5,
    /// Backward with split roles: consumer 0 has stored the query block's
    /// Pᵀ (consumer 1 computes dSᵀ from it).
    BwdPWritten = 6,
    /// Backward, staged dQ: the dQ writer warp freed consumer 1's staging
    /// block (its previous reduction has read it).
    BwdDqFree1 = 7,
    /// Backward, staged dQ: the same for consumer 2.
    BwdDqFree2 = 8,
    /// Backward, staged dQ: consumer 1 has stored its dQ partial.
    BwdDqFull1 = 9,
    /// Backward, staged dQ: consumer 2 has stored its dQ partial.
    BwdDqFull2 = 10,
}

impl NamedBarrier {
    /// `pair[0]` for consumer `i == 0`, else `pair[1]`: the barriers that
    /// come one per consumer warpgroup.
    #[inline(always)]
    fn of_consumer(i: u32, pair: [Self; 2]) -> Self {
        if i == 0 { pair[0] } else { pair[1] }
    }

    /// The pingpong turn barrier of consumer `i` (0 or 1).
    #[inline(always)]
    pub fn consumer_turn(i: u32) -> Self {
        Self::of_consumer(i, [Self::ConsumerTurn1, Self::ConsumerTurn2])
    }

    /// The own barrier of backward consumer `i` (0 or 1).
    #[inline(always)]
    pub fn bwd_consumer(i: u32) -> Self {
        Self::of_consumer(i, [Self::BwdConsumer1, Self::BwdConsumer2])
    }

    /// The barrier at which backward consumer `i` (0 or 1) finds its dQ
    /// staging block free.
    #[inline(always)]
    pub fn bwd_dq_free(i: u32) -> Self {
        Self::of_consumer(i, [Self::BwdDqFree1, Self::BwdDqFree2])
    }

    /// The barrier at which backward consumer `i` (0 or 1) hands its staged
    /// dQ partial to the writer.
    #[inline(always)]
    pub fn bwd_dq_full(i: u32) -> Self {
        Self::of_consumer(i, [Self::BwdDqFull1, Self::BwdDqFull2])
    }
}

/// Waits at `barrier` until `threads` threads (a multiple of 32) have arrived
/// or synced on it.
#[inline(always)]
pub fn sync(barrier: NamedBarrier, threads: u32) {
    // SAFETY: a barrier; every participating warp executes it converged.
    unsafe { intrinsics::barrier_sync(barrier as u32, threads) }
}

/// Arrives at `barrier` without waiting (counts towards `threads`).
#[inline(always)]
pub fn arrive(barrier: NamedBarrier, threads: u32) {
    // SAFETY: as `sync`, without the wait.
    unsafe { intrinsics::barrier_arrive(barrier as u32, threads) }
}

/// `__syncwarp()`: the calling warp's lanes meet, and each lane's memory
/// accesses before it happen before every lane's after it.
#[inline(always)]
pub fn sync_warp() {
    // SAFETY: a barrier over the full warp, which every caller executes
    // converged.
    unsafe { asm!("bar.warp.sync 0xffffffff;") }
}

/// `__syncthreads()`.
#[inline(always)]
pub fn sync_block() {
    // SAFETY: barrier 0 over the whole block.
    unsafe { intrinsics::barrier_sync_all(0) }
}

/// Orders this thread's generic-proxy shared-memory accesses before later
/// async-proxy ones (TMA stores, wgmma reading data written by `st.shared`).
#[inline(always)]
pub fn fence_proxy_async_shared() {
    // SAFETY: a fence has no operands.
    unsafe { asm!("fence.proxy.async.shared::cta;") }
}
