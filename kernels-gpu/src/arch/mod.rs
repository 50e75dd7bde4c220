//! Typed wrappers over the Hopper instructions the kernels are built from.
//!
//! Every function is `#[inline(always)]`: the module must contain only kernel
//! entries (no `.func`), and immediates (transposes, wait depths, register
//! counts) must fold into the instructions. Collective operations go through
//! LLVM intrinsics, never inline asm (see `intrinsics`).

pub mod bulk;
pub mod elem;
pub mod fragment;
pub mod global;
mod intrinsics;
pub mod mbarrier;
pub mod mma_elem;
pub mod pipeline;
pub mod regs;
pub mod smem;
pub mod sync;
pub mod thread;
pub mod tma;
pub mod turns;
pub mod wgmma;
