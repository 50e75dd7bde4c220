//! The smoke kernels: a grid-stride `out = alpha * x + y` over f32, and a
//! one-thread spin of a number of clock cycles.

use crate::abi::{SmokeParams, SpinParams};
use core::arch::asm;
use core::arch::nvptx::{_block_dim_x, _block_idx_x, _grid_dim_x, _thread_idx_x};

/// # Safety
/// `x`, `y` and `out` address `len` f32 each in global memory; `out` does not
/// overlap `x` or `y` (checked by `fa3::smoke`).
pub(crate) unsafe fn axpy(p: SmokeParams) {
    // SAFETY: reading special registers has no preconditions.
    let (block, threads, blocks, thread) = unsafe {
        (
            _block_idx_x(),
            _block_dim_x(),
            _grid_dim_x(),
            _thread_idx_x(),
        )
    };
    let stride = threads as u64 * blocks as u64;
    let mut i = block as u64 * threads as u64 + thread as u64;
    while i < p.len {
        // SAFETY: i < len, and the caller guarantees `len` elements behind each
        // pointer with `out` disjoint from the inputs.
        unsafe {
            let x = *p.x.as_mut_ptr().add(i as usize);
            let y = *p.y.as_mut_ptr().add(i as usize);
            *p.out.as_mut_ptr().add(i as usize) = p.alpha * x + y;
        }
        i += stride;
    }
}

/// Returns once `p.cycles` cycles of this SM's clock have passed.
///
/// # Safety
/// None beyond a launch: it touches no memory.
pub(crate) unsafe fn spin(p: SpinParams) {
    let start = clock64();
    while clock64().wrapping_sub(start) < p.cycles {}
}

/// The SM's 64-bit cycle counter.
#[inline(always)]
fn clock64() -> u64 {
    let t: u64;
    // SAFETY: reads a special register; volatile, so each read is its own.
    unsafe { asm!("mov.u64 {t}, %clock64;", t = out(reg64) t) };
    t
}
