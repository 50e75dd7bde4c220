//! The kernel ABI, shared by host and device.
//!
//! Every kernel is declared once, in `abi/table.rs`, with its entry name, its
//! parameter block and its launch bounds. From that one declaration the
//! `kernel_table!` macro generates the device entry point (on nvptx64), the
//! host-side marker type implementing [`Kernel`], and the [`KERNELS`] list the
//! builder uses to patch `.maxntid`/`.minnctapersm` into the PTX.

pub mod bwd;
pub mod fp8;
pub mod fwd;
mod kernel;
mod ptr;
pub mod sched;
pub mod selftest;
mod table;
mod tensor_map;

pub use kernel::{Kernel, KernelParams, KernelSpec};
pub use ptr::GlobalPtr;
pub use table::*;
pub use tensor_map::TensorMap;
