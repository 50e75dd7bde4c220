//! Bulk (non-tensor) asynchronous copies between global and shared memory:
//! contiguous byte ranges, no tensor map. The backward loads its per-query
//! statistics (LSE, rowsum(dO∘O)) this way and adds its dQ partials into
//! the f32 accumulator in global memory with one reduce-add each
//! (`cp.reduce.async.bulk ... .add.f32`: the addition happens in L2, so
//! CTAs adding into the same block need no lock unless the order matters).

use super::mbarrier::MBarrier;
use super::thread::Elected;
use core::arch::asm;

/// Copies `bytes` from global `src` to shared `dst`, completing `bar`'s
/// transaction count with them.
///
/// # Safety
/// `src` and `dst` are 16-byte aligned, `bytes` is a multiple of 16, the
/// source is readable and the destination reserved for this copy; `bar`
/// expects the bytes (`arrive_expect_tx`).
#[inline(always)]
pub unsafe fn load(_one: &Elected, dst: u32, src: u64, bytes: u32, bar: &MBarrier) {
    // SAFETY: per the contract; one thread issues (the token).
    unsafe {
        asm!(
            "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [{d}], [{s}], {n}, [{b}];",
            d = in(reg32) dst,
            s = in(reg64) src,
            n = in(reg32) bytes,
            b = in(reg32) bar.addr(),
        )
    }
}

/// Adds the `bytes / 4` f32 at shared `src` to those at global `dst`
/// (element-wise, in L2). Completes asynchronously in the calling thread's
/// bulk group: `tma::commit_group`, then `tma::wait_group_read` before
/// `src` is rewritten and `tma::wait_group` before the sums must be
/// complete.
///
/// # Safety
/// `src` and `dst` are 16-byte aligned, `bytes` is a multiple of 16; `dst`
/// is global memory the kernel may write, touched by other threads only
/// through reductions while this runs; generic-proxy writes to `src` were
/// fenced (`fence_proxy_async_shared`) and synchronized with this thread.
#[inline(always)]
pub unsafe fn reduce_add_f32(_one: &Elected, dst: u64, src: u32, bytes: u32) {
    // SAFETY: per the contract; one thread issues (the token).
    unsafe {
        asm!(
            "cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [{d}], [{s}], {n};",
            d = in(reg64) dst,
            s = in(reg32) src,
            n = in(reg32) bytes,
        )
    }
}
