//! Device code of FlashAttention-3 in Rust, for Hopper GPUs (sm_90a).
//!
//! The crate compiles for two targets:
//! - `nvptx64-nvidia-cuda`: the kernels. `fa3-kernels-builder` takes the PTX of
//!   this crate (`--emit=asm`), patches launch bounds into the entries and
//!   checks that the module is self-contained.
//! - the host: only [`abi`], the kernel table and the `#[repr(C)]` parameter
//!   blocks. The host library builds its launches from these very types, so a
//!   change to a kernel's parameters that the host does not follow fails to
//!   compile instead of corrupting a launch.
#![no_std]
#![cfg_attr(
    target_arch = "nvptx64",
    feature(
        abi_ptx,
        asm_experimental_arch,
        stdarch_nvptx,
        link_llvm_intrinsics,
        stmt_expr_attributes
    )
)]
// link_llvm_intrinsics is how collective operations become `convergent`
// (arch::intrinsics); stmt_expr_attributes lets a closure be
// `#[inline(always)]` (a kernel's PTX must have no `.func`). Debug impls
// exist on the host only: on the device they would pull core::fmt into the
// PTX as unresolved calls.
#![cfg_attr(
    target_arch = "nvptx64",
    allow(internal_features, missing_debug_implementations)
)]

#[cfg(test)]
extern crate std;

pub mod abi;
pub mod attn;
pub mod fp8;
pub mod layout;

#[cfg(target_arch = "nvptx64")]
pub mod arch;
#[cfg(target_arch = "nvptx64")]
mod bwd;
#[cfg(target_arch = "nvptx64")]
mod epilogue;
#[cfg(target_arch = "nvptx64")]
mod fwd;
#[cfg(target_arch = "nvptx64")]
mod half;
#[cfg(target_arch = "nvptx64")]
mod sched;
#[cfg(target_arch = "nvptx64")]
mod selftest;
#[cfg(target_arch = "nvptx64")]
mod smoke;
