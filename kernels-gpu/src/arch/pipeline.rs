//! A ring of `S` shared-memory stages guarded by full/empty mbarriers: a TMA
//! producer fills stages, consumers drain them.

use super::mbarrier::{MBarrier, fence_init};
use super::sync::sync_warp;
use super::thread::{Elected, lane};
pub use crate::layout::pipeline_state::PipelineState;

/// The barriers of an `S`-stage ring: `full[s]` completes when stage `s`
/// holds data (TMA bytes arrived), `empty[s]` when every consumer is done
/// with it.
pub struct TmaPipeline<const S: usize> {
    base: u32,
}

impl<const S: usize> TmaPipeline<S> {
    /// Shared bytes the barriers take (full then empty, 8 bytes each).
    pub const BYTES: u32 = 2 * S as u32 * MBarrier::BYTES;

    /// The ring whose barriers start at shared address `base`.
    ///
    /// # Safety
    /// `base` is 8-byte aligned and `base..base + BYTES` is reserved for it.
    #[inline(always)]
    pub unsafe fn at(base: u32) -> Self {
        Self { base }
    }

    #[inline(always)]
    fn full(&self, stage: u32) -> MBarrier {
        // SAFETY: inside the reserved range (`stage < S`).
        unsafe { MBarrier::at(self.base + stage * MBarrier::BYTES) }
    }

    #[inline(always)]
    fn empty(&self, stage: u32) -> MBarrier {
        // SAFETY: inside the reserved range (`stage < S`).
        unsafe { MBarrier::at(self.base + (S as u32 + stage) * MBarrier::BYTES) }
    }

    /// Initializes all barriers: `full` expects the producer's one arrival
    /// (plus TMA bytes), `empty` one arrival per consumer warp. One thread;
    /// a block barrier must follow before any use.
    #[inline(always)]
    pub fn init(&self, one: &Elected, consumer_arrivals: u32) {
        self.init_with_producers(one, 1, consumer_arrivals);
    }

    /// As [`Self::init`] for a stage that `producer_arrivals` threads fill
    /// with ordinary stores, each arriving once ([`Self::producer_commit`])
    /// after its `fence.proxy.async` when wgmma reads the stage.
    #[inline(always)]
    pub fn init_with_producers(
        &self,
        one: &Elected,
        producer_arrivals: u32,
        consumer_arrivals: u32,
    ) {
        for s in 0..S as u32 {
            self.full(s).init(one, producer_arrivals);
            self.empty(s).init(one, consumer_arrivals);
        }
        fence_init();
    }

    /// Producer: waits until the stage at `state` is free.
    #[inline(always)]
    pub fn producer_acquire(&self, state: PipelineState<S>) {
        self.empty(state.index()).wait(state.phase());
    }

    /// Producer: announces `bytes` of TMA data for the stage and returns the
    /// barrier the TMA loads complete on.
    #[inline(always)]
    pub fn producer_expect(&self, state: PipelineState<S>, bytes: u32) -> MBarrier {
        let full = self.full(state.index());
        full.arrive_expect_tx(bytes);
        full
    }

    /// Producer: announces data written by the producer thread itself (no
    /// TMA bytes); the arrival releases its earlier shared-memory stores.
    #[inline(always)]
    pub fn producer_commit(&self, state: PipelineState<S>) {
        self.full(state.index()).arrive();
    }

    /// Consumer: waits until the stage at `state` holds its data.
    #[inline(always)]
    pub fn consumer_wait(&self, state: PipelineState<S>) {
        self.full(state.index()).wait(state.phase());
    }

    /// Consumer: one arrival saying the caller is done with the stage (for
    /// rings initialized with one arrival per consumer thread).
    #[inline(always)]
    pub fn consumer_release(&self, state: PipelineState<S>) {
        self.empty(state.index()).arrive();
    }

    /// Consumer: the calling warp's one arrival, by its lane 0 (for rings
    /// initialized with one arrival per consumer warp). Call it after a
    /// warp-wide wait that covers every lane's use of the stage.
    #[inline(always)]
    pub fn warp_release(&self, state: PipelineState<S>) {
        if lane() == 0 {
            self.consumer_release(state);
        }
    }

    /// Consumer: [`Self::warp_release`] for a stage that the warp's lanes
    /// also read with their own loads (`ld.shared`, not only wgmma, whose
    /// wait is warp-wide): the lanes meet first, so that every lane's reads
    /// happen before lane 0's release: the PTX memory model orders a
    /// release only after the releasing thread's own accesses. (ptxas
    /// makes it a NOP in a converged warp; compute-sanitizer's racecheck
    /// reports the backward's row-statistic reads of lanes 1-31 against
    /// the producer's next write of the stage.)
    #[inline(always)]
    pub fn warp_release_after_loads(&self, state: PipelineState<S>) {
        sync_warp();
        self.warp_release(state);
    }
}
