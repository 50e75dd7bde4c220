//! LLVM NVVM intrinsics for every collective operation.
//!
//! rustc does not mark inline asm `convergent`, so LLVM may duplicate an
//! asm `bar.sync` into divergent paths (jump threading did exactly that to a
//! block barrier following an elected-lane branch: warp 0 then waited at two
//! different barriers and the kernel hung). The intrinsics below are
//! `convergent` in LLVM, which forbids such transformations. Inline asm stays
//! for per-thread instructions (TMA, mbarrier, cvt) and for
//! `wgmma.mma_async`, which has no intrinsic; it is always issued right after
//! a `wgmma.fence` from here, in warpgroup-uniform code.
//!
//! One arithmetic intrinsic sits here too: `llvm.fma.f32`, because Rust
//! never contracts `a * b + c` into a fused multiply-add.

unsafe extern "C" {
    #[link_name = "llvm.nvvm.barrier.cta.sync.aligned.all"]
    pub(super) fn barrier_sync_all(id: u32);
    #[link_name = "llvm.nvvm.barrier.cta.sync.aligned.count"]
    pub(super) fn barrier_sync(id: u32, threads: u32);
    #[link_name = "llvm.nvvm.barrier.cta.arrive.aligned.count"]
    pub(super) fn barrier_arrive(id: u32, threads: u32);
    #[link_name = "llvm.nvvm.shfl.sync.idx.i32"]
    pub(super) fn shfl_idx_u32(mask: u32, value: u32, lane: u32, clamp: u32) -> u32;
    #[link_name = "llvm.nvvm.shfl.sync.bfly.f32"]
    pub(super) fn shfl_bfly_f32(mask: u32, value: f32, lane_mask: u32, clamp: u32) -> f32;
    #[link_name = "llvm.nvvm.activemask"]
    pub(super) fn activemask() -> u32;
    #[link_name = "llvm.nvvm.setmaxnreg.inc.sync.aligned.u32"]
    pub(super) fn setmaxnreg_inc(registers: u32);
    #[link_name = "llvm.nvvm.setmaxnreg.dec.sync.aligned.u32"]
    pub(super) fn setmaxnreg_dec(registers: u32);
    #[link_name = "llvm.nvvm.wgmma.fence.sync.aligned"]
    pub(super) fn wgmma_fence();
    #[link_name = "llvm.nvvm.wgmma.commit_group.sync.aligned"]
    pub(super) fn wgmma_commit_group();
    #[link_name = "llvm.nvvm.wgmma.wait_group.sync.aligned"]
    pub(super) fn wgmma_wait_group(pending: i64);
    #[link_name = "llvm.fma.f32"]
    pub(super) fn fma_f32(a: f32, b: f32, c: f32) -> f32;
}
