//! Thread indices and execution scopes.
//!
//! Warpgroup-wide instructions (wgmma, setmaxnreg) take a [`Warpgroup`]
//! token; single-thread work (TMA issue, barrier init) takes an [`Elected`]
//! token. Both can only be made where their contract is stated, so calling a
//! warpgroup instruction from the wrong scope does not compile.

use super::intrinsics;
use core::arch::asm;
use core::arch::nvptx::{_block_idx_x, _block_idx_y, _block_idx_z, _thread_idx_x};

/// Threads in a warp.
pub const WARP: u32 = 32;
/// Threads in a warpgroup (4 consecutive warps, the first divisible by 4).
pub const WARPGROUP: u32 = 128;

/// `threadIdx.x`.
#[inline(always)]
pub fn thread_index() -> u32 {
    // SAFETY: reading a special register.
    unsafe { _thread_idx_x() as u32 }
}

/// `threadIdx.x`, read anew where it is used (a volatile asm read that
/// the compiler cannot hoist): addresses derived from it are recomputed in
/// place instead of being kept in registers across a loop (the backward's
/// `stmatrix` rows: kept live, ptxas spilled 28 bytes at hdim 128).
#[inline(always)]
pub fn thread_index_here() -> u32 {
    let t: u32;
    // SAFETY: reading a special register.
    unsafe { core::arch::asm!("mov.u32 {t}, %tid.x;", t = out(reg32) t) };
    t
}

/// `blockIdx.x`.
#[inline(always)]
pub fn block_index() -> u32 {
    // SAFETY: reading a special register.
    unsafe { _block_idx_x() as u32 }
}

/// `(blockIdx.x, blockIdx.y, blockIdx.z)`.
#[inline(always)]
pub fn block_index_3d() -> (u32, u32, u32) {
    // SAFETY: reading special registers.
    unsafe {
        (
            _block_idx_x() as u32,
            _block_idx_y() as u32,
            _block_idx_z() as u32,
        )
    }
}

/// `gridDim.x`, read where it is written: not hoisted out of a loop into a
/// register held through it (`regs::opaque`; the scheduler reads it per
/// claimed tile, and the backward's producer has 24 registers).
#[inline(always)]
pub fn grid_size_unhoisted() -> u32 {
    let n: u32;
    // SAFETY: reading a special register; not `pure`, so it stays put.
    unsafe {
        core::arch::asm!("mov.u32 {n}, %nctaid.x;", n = out(reg32) n,
            options(nomem, nostack, preserves_flags));
    }
    n
}

/// Lane within the warp.
#[inline(always)]
pub fn lane() -> u32 {
    thread_index() % WARP
}

/// Warp index within the block, broadcast from lane 0 so that ptxas knows it
/// is warp-uniform (branches on it then need no divergence handling).
#[inline(always)]
pub fn warp_index() -> u32 {
    // SAFETY: a full-warp shuffle, executed by every lane of the warp.
    unsafe { intrinsics::shfl_idx_u32(u32::MAX, thread_index() / WARP, 0, 0x1f) }
}

/// Warpgroup index within the block.
#[inline(always)]
pub fn warpgroup_index() -> u32 {
    warp_index() / 4
}

/// Proof that the 128 threads of one warpgroup execute together.
pub struct Warpgroup {
    index: u32,
}

impl Warpgroup {
    /// The calling thread's warpgroup.
    ///
    /// # Safety
    /// All 128 threads of the warpgroup call this at the same point and keep
    /// executing the code that uses the token converged (`.sync.aligned`
    /// instructions require it).
    #[inline(always)]
    pub unsafe fn enter() -> Self {
        Self {
            index: warpgroup_index(),
        }
    }

    /// Index of the warpgroup in the block.
    #[inline(always)]
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The calling thread's index within the warpgroup, `0..128`.
    #[inline(always)]
    pub fn thread(&self) -> u32 {
        thread_index() % WARPGROUP
    }
}

/// Proof that exactly one thread of a warp runs this code.
pub struct Elected(());

/// Elects one lane of the calling warp: `Some` on the lowest active lane.
/// (`elect.sync` returns `{i32, i1}`, which an extern declaration in Rust
/// cannot express; `activemask` is convergent and picks the same kind of
/// leader.)
#[inline(always)]
pub fn elect_one() -> Option<Elected> {
    // SAFETY: reads the mask of lanes executing this instruction.
    let active = unsafe { intrinsics::activemask() };
    (lane() == active.trailing_zeros()).then_some(Elected(()))
}

/// Stops the kernel with a trap: for broken invariants that must never run on.
#[inline(always)]
pub fn trap() -> ! {
    // SAFETY: `trap` aborts the kernel; nothing runs after it.
    unsafe { asm!("trap;", options(noreturn)) }
}
