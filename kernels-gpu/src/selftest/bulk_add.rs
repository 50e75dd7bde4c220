//! Bulk copy and the two ways the backward adds f32 blocks into global
//! memory, in one block each: `src`'s block goes to shared memory by one
//! bulk copy, then into `bulk_sum` by one bulk reduce-add
//! (`cp.reduce.async.bulk .add.f32`) and into `red_sum` by every thread's
//! 16-byte `red.global.add.v4.f32` of the words it reads back. All blocks
//! add into the same sums, so the additions race in L2 as the backward's
//! do (and compute-sanitizer's racecheck sees the same instructions).

use crate::abi::selftest::{BulkAddParams, bulk_add_smem_bytes};
use crate::arch::bulk;
use crate::arch::global::reduce_add_16_bytes;
use crate::arch::mbarrier::{MBarrier, init_for_one_issuer};
use crate::arch::smem;
use crate::arch::sync::{fence_proxy_async_shared, sync_block};
use crate::arch::thread::{block_index, thread_index, trap};
use crate::arch::tma;

/// # Safety
/// Launched with 128 threads and `bulk_add_smem_bytes(p.words)` bytes of
/// dynamic shared memory, as `BulkAddParams` documents.
pub(crate) unsafe fn run(p: BulkAddParams) {
    let base = smem::base();
    if base & 15 != 0 || !p.words.is_multiple_of(512) {
        trap(); // 16-byte copies, four words per thread and chunk
    }
    let bytes = 4 * p.words;
    // SAFETY: the barrier follows the block's words (bulk_add_smem_bytes).
    let bar = unsafe { MBarrier::at(base + bulk_add_smem_bytes(p.words) - 8) };
    let block = block_index();
    let src = p.src.address() + u64::from(block) * u64::from(bytes);
    let issuer = init_for_one_issuer(&bar);
    if let Some(one) = &issuer {
        bar.arrive_expect_tx(bytes);
        // SAFETY: this block's words of `src` (launch contract), 16-byte
        // aligned; the shared words are this copy's; the barrier expects
        // the bytes.
        unsafe { bulk::load(one, base, src, bytes, &bar) };
    }
    bar.wait(0);

    let mut chunk = thread_index();
    while 4 * chunk < p.words {
        let at = base + 16 * chunk;
        // SAFETY: inside the copied words (completed above).
        let words = core::array::from_fn(|i| unsafe { smem::load_u32(at + 4 * i as u32) });
        // SAFETY: chunk `chunk` of `red_sum` (launch contract: `words`
        // f32, 16-byte aligned), touched only by reductions meanwhile.
        unsafe { reduce_add_16_bytes(p.red_sum.address() + 16 * u64::from(chunk), words) };
        chunk += 128;
    }
    // The bulk reduce reads the shared words through the async proxy; they
    // were written by the bulk copy (async proxy too), read above by the
    // generic proxy: the fence orders those reads before it.
    fence_proxy_async_shared();
    sync_block();
    if let Some(one) = &issuer {
        // SAFETY: `bulk_sum` holds `words` f32 (launch contract), 16-byte
        // aligned, touched only by reductions meanwhile; the shared words
        // are complete.
        unsafe { bulk::reduce_add_f32(one, p.bulk_sum.address(), base, bytes) };
        tma::commit_group(one);
        tma::wait_group::<0>(one);
    }
}
