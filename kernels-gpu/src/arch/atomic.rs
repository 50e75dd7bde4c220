//! Atomics on global memory.

use crate::abi::GlobalPtr;
use core::arch::asm;

/// Adds `value` to the `u32` at `counter` and returns the old value:
/// relaxed, GPU scope (`AtomicU32` would give system scope, which only
/// host-shared memory needs).
///
/// # Safety
/// `counter` is a live, 4-byte aligned global address that other threads
/// access only atomically while this runs.
#[inline(always)]
pub unsafe fn fetch_add_gpu(counter: GlobalPtr<u32>, value: u32) -> u32 {
    let old: u32;
    // SAFETY: per the contract.
    unsafe {
        asm!(
            "atom.relaxed.gpu.global.add.u32 {old}, [{a}], {v};",
            old = out(reg32) old,
            a = in(reg64) counter.address(),
            v = in(reg32) value,
        )
    }
    old
}
