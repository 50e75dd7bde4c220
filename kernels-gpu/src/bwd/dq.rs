//! dQ partials into the f32 accumulator in global memory, one of two ways
//! (`attn::tiles::DqAdd`):
//! - staged (FA3's dQ writer): each consumer stores its 64 x 64 blocks of
//!   a query block's partial in shared memory in fragment order
//!   (`layout::fragment`: conflict-free 16-byte stores) and only arrives;
//!   warp 1 of the producer warpgroup ([`write`]) adds them into the
//!   accumulator with one bulk reduce-add per consumer and frees the
//!   staging block once the reduction has read it. The consumers never
//!   wait on the reduction nor take the deterministic turns: the hdim 128
//!   consumer loop went from 655 to 597 instructions, +4-5% (PERF.md,
//!   session 14);
//! - from registers: each consumer thread adds its registers with
//!   16-byte L2 atomics, in the same fragment order.
//!
//! Deterministic launches order the reductions of each query block: the
//! key blocks that see it add in descending order (the launch's tile order
//! claims each head's key blocks last first, so the CTA a reduction waits
//! for started earlier and the wait cannot deadlock), consumer 0 before
//! consumer 1, counted by the block's semaphore.

use super::{BwdTiles, Smem, Work, mask_spec};
use crate::abi::GlobalPtr;
use crate::abi::bwd::BwdParams;
use crate::arch::bulk;
use crate::arch::global::{
    fence_acq_rel_gpu, fence_proxy_async_global, load_acquire_gpu, reduce_add_16_bytes,
    release_increment_gpu,
};
use crate::arch::smem;
use crate::arch::sync::{NamedBarrier, arrive, fence_proxy_async_shared, sync};
use crate::arch::thread::{Elected, Warpgroup, elect_one, warp_index};
use crate::arch::tma;
use crate::arch::wgmma::{Accumulator, Mma};
use crate::attn::blocks::key_blocks;
use crate::attn::tiles::BwdTiling;
use crate::epilogue::for_each_fragment_chunk;
use crate::layout::fragment::FRAG_BLOCK_BYTES;
use crate::sched::{ConsumerTiles, TileFeed};

/// The threads of one consumer warpgroup.
const WARPGROUP_THREADS: u32 = 128;
/// The threads of the dQ writer: one warp, all of whose lanes follow the
/// tile feed and meet the consumers at the staging barriers.
pub(super) const WRITER_THREADS: u32 = 32;
/// A consumer and the writer at a staging barrier.
const STAGING_THREADS: u32 = WARPGROUP_THREADS + WRITER_THREADS;

/// Where consumer `c`'s part of query block `m` of `w`'s head goes in the
/// accumulator (its blocks are consecutive), and the query block's
/// semaphore.
#[inline(always)]
fn target(p: &BwdParams, t: BwdTiling, w: &Work, m: u32, c: u32) -> (u64, GlobalPtr<u32>) {
    let head_row = w.batch * p.heads + w.head;
    let first = t.dq_accum_block(head_row, p.m_blocks, m, c * t.dq_blocks_per_consumer());
    let dst = p.dq_accum.address() + first as u64 * FRAG_BLOCK_BYTES as u64;
    let head_block = head_row * p.m_blocks + m;
    let flag = GlobalPtr::<u32>::from_address(p.dq_semaphores.address() + 4 * head_block as u64);
    (dst, flag)
}

/// The semaphore value at which consumer `c`'s part of key block `w` is
/// added: after the key blocks above it that see the query block
/// (`keys_end`: the end of their range), consumer 0 before consumer 1.
#[inline(always)]
fn turn(w: &Work, keys_end: u32, c: u32) -> u32 {
    2 * (keys_end - 1 - w.n_block) + c
}

/// A consumer's side of the dQ reduction.
pub(super) struct DqReducer<'a> {
    p: &'a BwdParams,
    tiling: BwdTiling,
    me: u32,
    thread: u32,
    stage: u32,
    /// The issuer of a deterministic launch's turns, from registers (lane
    /// 0 of the first warp).
    issuer: Option<Elected>,
}

impl<'a> DqReducer<'a> {
    #[inline(always)]
    pub fn new(wg: &Warpgroup, me: u32, p: &'a BwdParams, mem: &Smem) -> Self {
        Self {
            p,
            tiling: mem.tiling,
            me,
            thread: wg.thread(),
            stage: mem.dq(me),
            issuer: if warp_index().is_multiple_of(4) {
                elect_one()
            } else {
                None
            },
        }
    }

    /// Adds this consumer's partial `dq` of query block `m` of `w`'s head
    /// (its `R / 32` 64 x 64 blocks,
    /// `attn::tiles::BwdTiling::dq_blocks_per_consumer`). `keys_end`: the
    /// end of the key blocks that see query block m (read only when the
    /// consumer adds from registers and takes the turns itself).
    #[inline(always)]
    pub fn reduce<const R: usize>(
        &self,
        dq: &Accumulator<R>,
        w: &Work,
        m: u32,
        keys_end: impl FnOnce() -> u32,
    ) where
        Accumulator<R>: Mma,
    {
        if !self.tiling.dq_staged() {
            self.add_from_registers(dq, w, m, keys_end);
            return;
        }
        // The writer frees the staging block once its reduction has read
        // it.
        sync(NamedBarrier::bwd_dq_free(self.me), STAGING_THREADS);
        for_each_fragment_chunk(dq, self.stage as u64, self.thread, |at, words| {
            // SAFETY: this consumer's staging block, free (synchronized
            // above), one 16-byte chunk per thread and register group.
            unsafe { smem::store_16_bytes(at as u32, words) };
        });
        fence_proxy_async_shared();
        arrive(NamedBarrier::bwd_dq_full(self.me), STAGING_THREADS);
    }

    /// `reduce` without staging: each thread adds its registers into the
    /// accumulator, in the same fragment order. Deterministic launches
    /// take the same turns, the whole warpgroup between the acquire and
    /// the release.
    #[inline(always)]
    fn add_from_registers<const R: usize>(
        &self,
        dq: &Accumulator<R>,
        w: &Work,
        m: u32,
        keys_end: impl FnOnce() -> u32,
    ) where
        Accumulator<R>: Mma,
    {
        let (dst, flag) = target(self.p, self.tiling, w, m, self.me);
        let deterministic = self.p.deterministic != 0;
        let barrier = NamedBarrier::bwd_consumer(self.me);
        if deterministic {
            if self.issuer.is_some() {
                let turn = turn(w, keys_end(), self.me);
                // SAFETY: the block's semaphore (cleared by the preprocess;
                // only these atomics touch it); its earlier turns belong to
                // CTAs that started before this one.
                while unsafe { load_acquire_gpu(flag) } != turn {}
            }
            sync(barrier, WARPGROUP_THREADS);
        }
        for_each_fragment_chunk(dq, dst, self.thread, |at, words| {
            // SAFETY: this consumer's blocks of query block m of the
            // accumulator (cleared by the preprocess; only reductions touch
            // it during this kernel), 16-byte aligned chunks.
            unsafe { reduce_add_16_bytes(at, words) };
        });
        if deterministic {
            fence_acq_rel_gpu();
            sync(barrier, WARPGROUP_THREADS);
            if self.issuer.is_some() {
                // SAFETY: as above; every thread's additions are fenced
                // before the barrier above.
                unsafe { release_increment_gpu(flag) };
            }
        }
    }
}

/// The dQ writer of a staged tiling, run by one whole warp of the producer
/// warpgroup: follows the tile feed as the consumers do and, for each
/// query block they visit, frees consumer c's staging block (once the
/// previous reduction has read it), waits for its partial and adds it
/// into the accumulator with one bulk reduce-add from one lane, consumer 0
/// then 1.
#[inline(always)]
pub(super) fn write<const M: u32, const N: u32>(p: &BwdParams, mem: &Smem, feed: &TileFeed) {
    let tiling = mem.tiling;
    let bytes = tiling.dq_stage_bytes();
    let one = elect_one();
    let mut tiles = ConsumerTiles::new(BwdTiles::<M, N>(p), feed);
    while let Some(w) = tiles.current() {
        for m in w.m_min..w.m_max {
            for c in 0..2 {
                if let Some(one) = &one {
                    // Groups in flight: consumer c's previous one, then
                    // at most the other consumer's.
                    tma::wait_group_read::<1>(one);
                }
                arrive(NamedBarrier::bwd_dq_free(c), STAGING_THREADS);
                sync(NamedBarrier::bwd_dq_full(c), STAGING_THREADS);
                if let Some(one) = &one {
                    let (dst, flag) = target(p, tiling, &w, m, c);
                    // SAFETY: consumer c's staged part (fenced, then the
                    // barrier above) into its blocks of query block m of
                    // the accumulator, which the preprocess cleared and
                    // only reductions touch during this kernel.
                    unsafe { add_staged::<M, N>(one, p, &w, m, c, dst, flag, mem.dq(c), bytes) };
                }
            }
        }
        tiles.advance();
    }
    if let Some(one) = &one {
        // The CTA must not exit while a reduction still reads its staging.
        tma::wait_group::<0>(one);
    }
}

/// One bulk reduce-add of `bytes` from `src` to `dst`; in a deterministic
/// launch at consumer `c`'s turn of query block `m`, completed before the
/// semaphore moves on.
///
/// # Safety
/// As `bulk::reduce_add_f32`; `flag` is the query block's semaphore
/// (cleared by the preprocess; only these atomics touch it).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn add_staged<const M: u32, const N: u32>(
    one: &Elected,
    p: &BwdParams,
    w: &Work,
    m: u32,
    c: u32,
    dst: u64,
    flag: GlobalPtr<u32>,
    src: u32,
    bytes: u32,
) {
    if p.deterministic == 0 {
        // SAFETY: per the contract.
        unsafe { bulk::reduce_add_f32(one, dst, src, bytes) };
        tma::commit_group(one);
        return;
    }
    // The end of the key blocks that see query block m, as the producer
    // computes it (the mask read here: held, it spills at 24 registers).
    let (_, keys_end) = key_blocks(&mask_spec(p), m * M, M, N);
    let turn = turn(w, keys_end, c);
    // SAFETY: per the contract; the semaphore's earlier turns belong to
    // CTAs that started before this one.
    unsafe {
        while load_acquire_gpu(flag) != turn {}
        fence_proxy_async_global();
        bulk::reduce_add_f32(one, dst, src, bytes);
        tma::commit_group(one);
        tma::wait_group::<0>(one);
        release_increment_gpu(flag);
    }
}
