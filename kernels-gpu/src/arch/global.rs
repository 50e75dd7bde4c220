//! Global-memory accesses that must be one particular instruction.

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

/// Stores 16 bytes at `address` with one `st.global.v4` (`words[0]` at the
/// lowest address).
///
/// # Safety
/// `address` is a 16-byte aligned global address this thread may write.
#[inline(always)]
pub unsafe fn store_16_bytes(address: u64, words: [u32; 4]) {
    // SAFETY: per the contract.
    unsafe {
        asm!(
            "st.global.v4.b32 [{a}], {{{w0}, {w1}, {w2}, {w3}}};",
            a = in(reg64) address,
            w0 = in(reg32) words[0],
            w1 = in(reg32) words[1],
            w2 = in(reg32) words[2],
            w3 = in(reg32) words[3],
        )
    }
}
