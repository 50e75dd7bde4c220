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

/// Raises the `u32` at `address` to at least `value`: a relaxed,
/// GPU-scope reduction (`red`, no result returned).
///
/// # Safety
/// `address` is a live, 4-byte aligned global address that other threads
/// access only atomically while this runs.
#[inline(always)]
pub unsafe fn reduce_max_u32_gpu(address: u64, value: u32) {
    // SAFETY: per the contract.
    unsafe {
        asm!(
            "red.relaxed.gpu.global.max.u32 [{a}], {v};",
            a = in(reg64) address,
            v = in(reg32) value,
        )
    }
}

/// Stores 8 bytes at `address` with one `st.global.v2` (`words[0]` at the
/// lowest address).
///
/// # Safety
/// `address` is an 8-byte aligned global address this thread may write.
#[inline(always)]
pub unsafe fn store_8_bytes(address: u64, words: [u32; 2]) {
    // SAFETY: per the contract.
    unsafe {
        asm!(
            "st.global.v2.b32 [{a}], {{{w0}, {w1}}};",
            a = in(reg64) address,
            w0 = in(reg32) words[0],
            w1 = in(reg32) words[1],
        )
    }
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

/// Adds four f32 at `address` with one `red.global.add.v4.f32` (relaxed,
/// GPU scope; the addition happens in L2).
///
/// # Safety
/// `address` is a 16-byte aligned global address of four f32 that other
/// threads access only through such reductions meanwhile.
#[inline(always)]
pub unsafe fn reduce_add_16_bytes(address: u64, words: [u32; 4]) {
    // SAFETY: per the contract.
    unsafe {
        asm!(
            "red.global.add.v4.f32 [{a}], {{{w0}, {w1}, {w2}, {w3}}};",
            a = in(reg64) address,
            w0 = in(reg32) words[0],
            w1 = in(reg32) words[1],
            w2 = in(reg32) words[2],
            w3 = in(reg32) words[3],
        )
    }
}

/// `fence.acq_rel.gpu`: this thread's earlier memory accesses are
/// visible GPU-wide before its later ones.
#[inline(always)]
pub fn fence_acq_rel_gpu() {
    // SAFETY: a fence has no operands.
    unsafe { asm!("fence.acq_rel.gpu;") }
}

/// Loads 16 bytes at `address` with one `ld.global.v4` (`[0]` from the
/// lowest address).
///
/// # Safety
/// `address` is a 16-byte aligned global address this thread may read, not
/// written concurrently.
#[inline(always)]
pub unsafe fn load_16_bytes(address: u64) -> [u32; 4] {
    let w: [u32; 4];
    // SAFETY: per the contract.
    unsafe {
        let (w0, w1, w2, w3): (u32, u32, u32, u32);
        asm!(
            "ld.global.v4.b32 {{{w0}, {w1}, {w2}, {w3}}}, [{a}];",
            a = in(reg64) address,
            w0 = out(reg32) w0,
            w1 = out(reg32) w1,
            w2 = out(reg32) w2,
            w3 = out(reg32) w3,
            options(readonly, nostack),
        );
        w = [w0, w1, w2, w3];
    }
    w
}

/// Reads the `u32` at `flag` with acquire semantics at GPU scope: memory
/// operations released before the value was written are visible after.
///
/// # Safety
/// `flag` is a live, 4-byte aligned global address.
#[inline(always)]
pub unsafe fn load_acquire_gpu(flag: GlobalPtr<u32>) -> u32 {
    let v: u32;
    // SAFETY: per the contract.
    unsafe {
        asm!(
            "ld.acquire.gpu.global.u32 {v}, [{a}];",
            v = out(reg32) v,
            a = in(reg64) flag.address(),
        )
    }
    v
}

/// Adds 1 to the `u32` at `flag` with release semantics at GPU scope,
/// after a fence that orders this thread's earlier writes, the bulk
/// (async-proxy) ones included, before it.
///
/// # Safety
/// As [`load_acquire_gpu`]; other threads access `flag` only atomically.
#[inline(always)]
pub unsafe fn release_increment_gpu(flag: GlobalPtr<u32>) {
    // SAFETY: per the contract.
    unsafe {
        asm!(
            "fence.proxy.async.global;",
            "red.release.gpu.global.add.u32 [{a}], 1;",
            a = in(reg64) flag.address(),
        )
    }
}

/// Orders global memory this thread acquired (generic proxy) before its
/// later bulk (async-proxy) accesses.
#[inline(always)]
pub fn fence_proxy_async_global() {
    // SAFETY: a fence has no operands.
    unsafe { asm!("fence.proxy.async.global;") }
}
