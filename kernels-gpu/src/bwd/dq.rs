//! dQ partials into the f32 accumulator in global memory. Each consumer
//! stages its 64 x 64 blocks of a query block's partial in shared memory
//! in fragment order (`layout::fragment`: conflict-free 16-byte stores)
//! and one of its threads adds them into the accumulator with one bulk
//! reduce-add
//! (FA3 does the same with a dedicated warp; here the consumer's elected
//! thread issues it and moves on, the reduction runs in L2).
//!
//! Deterministic launches order the reductions of each query block: the
//! key blocks that see it add in descending order (the launch's tile order
//! claims each head's key blocks last first, so the CTA a reduction waits
//! for started earlier and the wait cannot deadlock), consumer 0 before
//! consumer 1, counted by the block's semaphore.

use super::{Smem, Work};
use crate::abi::GlobalPtr;
use crate::abi::bwd::BwdParams;
use crate::arch::bulk;
use crate::arch::global::{
    fence_acq_rel_gpu, fence_proxy_async_global, load_acquire_gpu, reduce_add_16_bytes,
    release_increment_gpu,
};
use crate::arch::smem;
use crate::arch::sync::{NamedBarrier, fence_proxy_async_shared, sync};
use crate::arch::thread::{Elected, Warpgroup, elect_one, warp_index};
use crate::arch::tma;
use crate::arch::wgmma::{Accumulator, Mma};
use crate::attn::tiles::BwdTiling;
use crate::epilogue::for_each_fragment_chunk;
use crate::layout::fragment::FRAG_BLOCK_BYTES;

/// The threads of one consumer warpgroup.
const WARPGROUP_THREADS: u32 = 128;

pub(super) struct DqReducer<'a> {
    p: &'a BwdParams,
    tiling: BwdTiling,
    me: u32,
    thread: u32,
    stage: u32,
    barrier: NamedBarrier,
    /// The thread that issues the reductions (lane 0 of the first warp).
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
            barrier: NamedBarrier::bwd_consumer(me),
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
    /// end of the key blocks that see query block m.
    #[inline(always)]
    pub fn reduce<const R: usize>(&self, dq: &Accumulator<R>, w: &Work, m: u32, keys_end: u32)
    where
        Accumulator<R>: Mma,
    {
        if !self.tiling.dq_staged() {
            self.add_from_registers(dq, w, m, keys_end);
            return;
        }
        let p = self.p;
        // The staging block is free once the previous reduction has read it.
        if let Some(one) = &self.issuer {
            tma::wait_group_read::<0>(one);
        }
        sync(self.barrier, WARPGROUP_THREADS);
        for_each_fragment_chunk(dq, self.stage as u64, self.thread, |at, words| {
            // SAFETY: this consumer's staging block, free (synchronized
            // above), one 16-byte chunk per thread and register group.
            unsafe { smem::store_16_bytes(at as u32, words) };
        });
        fence_proxy_async_shared();
        sync(self.barrier, WARPGROUP_THREADS);
        let Some(one) = &self.issuer else {
            return;
        };
        let (dst, flag) = self.target(w, m);
        let bytes = self.tiling.dq_stage_bytes();
        if p.deterministic == 0 {
            // SAFETY: the staged block (fenced, synchronized) into query
            // block m's part of the accumulator, which the preprocess
            // cleared and only reductions touch during this kernel.
            unsafe { bulk::reduce_add_f32(one, dst, self.stage, bytes) };
            tma::commit_group(one);
            return;
        }
        let turn = self.turn(w, keys_end);
        // SAFETY: the block's semaphore (cleared by the preprocess; only
        // these atomics touch it); its earlier turns belong to CTAs that
        // started before this one.
        unsafe {
            while load_acquire_gpu(flag) != turn {}
            fence_proxy_async_global();
            bulk::reduce_add_f32(one, dst, self.stage, bytes);
            tma::commit_group(one);
            tma::wait_group::<0>(one);
            release_increment_gpu(flag);
        }
    }

    /// Where this consumer's blocks of query block `m` of `w`'s head go in
    /// the accumulator (consecutive), and the query block's semaphore.
    #[inline(always)]
    fn target(&self, w: &Work, m: u32) -> (u64, GlobalPtr<u32>) {
        let (p, t) = (self.p, self.tiling);
        let head_row = w.batch * p.heads + w.head;
        let first = t.dq_accum_block(
            head_row,
            p.m_blocks,
            m,
            self.me * t.dq_blocks_per_consumer(),
        );
        let dst = p.dq_accum.address() + first as u64 * FRAG_BLOCK_BYTES as u64;
        let head_block = head_row * p.m_blocks + m;
        let flag =
            GlobalPtr::<u32>::from_address(p.dq_semaphores.address() + 4 * head_block as u64);
        (dst, flag)
    }

    /// The semaphore value at which this consumer of key block `w` adds:
    /// after the key blocks above it that see the query block
    /// (`keys_end`: the end of their range, from the producer), consumer 0
    /// before consumer 1.
    #[inline(always)]
    fn turn(&self, w: &Work, keys_end: u32) -> u32 {
        2 * (keys_end - 1 - w.n_block) + self.me
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
        keys_end: u32,
    ) where
        Accumulator<R>: Mma,
    {
        let (dst, flag) = self.target(w, m);
        let deterministic = self.p.deterministic != 0;
        if deterministic {
            if self.issuer.is_some() {
                let turn = self.turn(w, keys_end);
                // SAFETY: as in `reduce`.
                while unsafe { load_acquire_gpu(flag) } != turn {}
            }
            sync(self.barrier, WARPGROUP_THREADS);
        }
        for_each_fragment_chunk(dq, dst, self.thread, |at, words| {
            // SAFETY: this consumer's blocks of query block m of the
            // accumulator (cleared by the preprocess; only reductions touch
            // it during this kernel), 16-byte aligned chunks.
            unsafe { reduce_add_16_bytes(at, words) };
        });
        if deterministic {
            fence_acq_rel_gpu();
            sync(self.barrier, WARPGROUP_THREADS);
            if self.issuer.is_some() {
                // SAFETY: as in `reduce`; every thread's additions are
                // fenced before the barrier above.
                unsafe { release_increment_gpu(flag) };
            }
        }
    }

    /// Waits for the last reduction to finish reading shared memory (the
    /// CTA must not exit before).
    #[inline(always)]
    pub fn finish(&self) {
        if let Some(one) = &self.issuer {
            tma::wait_group::<0>(one);
        }
    }
}
