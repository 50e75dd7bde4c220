//! mbarriers: shared-memory barriers that count arrivals and TMA bytes.

use super::sync::sync_block;
use super::thread::{Elected, elect_one, warp_index};
use core::arch::asm;

/// An mbarrier in shared memory (8 bytes, 8-byte aligned). Opaque: made only
/// by a shared-memory layout that reserved its slot.
pub struct MBarrier {
    addr: u32,
}

impl MBarrier {
    /// Bytes one barrier takes.
    pub const BYTES: u32 = 8;

    /// The barrier at shared address `addr`.
    ///
    /// # Safety
    /// `addr` is 8-byte aligned and reserved for this barrier.
    #[inline(always)]
    pub unsafe fn at(addr: u32) -> Self {
        Self { addr }
    }

    /// Shared address of the barrier (for TMA's completion operand).
    #[inline(always)]
    pub fn addr(&self) -> u32 {
        self.addr
    }

    /// Sets the expected arrival count of each phase. One thread, before
    /// any use; follow with [`fence_init`] and a block barrier.
    #[inline(always)]
    pub fn init(&self, _one: &Elected, arrivals: u32) {
        // SAFETY: the slot is reserved (constructor contract); one thread.
        unsafe {
            asm!("mbarrier.init.shared::cta.b64 [{a}], {n};", a = in(reg32) self.addr, n = in(reg32) arrivals)
        }
    }

    /// Counts one arrival.
    #[inline(always)]
    pub fn arrive(&self) {
        // SAFETY: an initialized barrier (constructor + init contract).
        unsafe { asm!("mbarrier.arrive.shared::cta.b64 _, [{a}];", a = in(reg32) self.addr) }
    }

    /// Counts one arrival and adds `bytes` to the transaction count the
    /// current phase waits for (the bytes a TMA load will deliver).
    #[inline(always)]
    pub fn arrive_expect_tx(&self, bytes: u32) {
        // SAFETY: as `arrive`.
        unsafe {
            asm!(
                "mbarrier.arrive.expect_tx.shared::cta.b64 _, [{a}], {b};",
                a = in(reg32) self.addr,
                b = in(reg32) bytes,
            )
        }
    }

    /// True once the phase with parity `phase` has completed.
    #[inline(always)]
    pub fn try_wait(&self, phase: u32) -> bool {
        let done: u32;
        // SAFETY: as `arrive`; the predicate lives inside the asm block.
        unsafe {
            asm!(
                "{{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [{a}], {ph}; selp.u32 {d}, 1, 0, p; }}",
                a = in(reg32) self.addr,
                ph = in(reg32) phase,
                d = out(reg32) done,
            )
        }
        done != 0
    }

    /// Waits until the phase with parity `phase` has completed.
    #[inline(always)]
    pub fn wait(&self, phase: u32) {
        while !self.try_wait(phase) {}
    }
}

/// Warp 0 elects one thread, which initializes `bar` for one arrival (its
/// own `arrive_expect_tx`, followed by TMA bytes); then the block syncs.
/// Returns the elected thread's token, for issuing the loads that complete
/// `bar`: the one-shot load at the start of a self-test kernel.
#[inline(always)]
pub fn init_for_one_issuer(bar: &MBarrier) -> Option<Elected> {
    let issuer = if warp_index() == 0 { elect_one() } else { None };
    if let Some(one) = &issuer {
        bar.init(one, 1);
        fence_init();
    }
    sync_block();
    issuer
}

/// Makes barrier initialization visible to the async proxy (TMA) and to the
/// other threads (after the next block barrier).
#[inline(always)]
pub fn fence_init() {
    // SAFETY: a fence.
    unsafe { asm!("fence.mbarrier_init.release.cluster;") }
}
