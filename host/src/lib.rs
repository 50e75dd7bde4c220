//! FlashAttention-3 for NVIDIA Hopper GPUs (H100/H200, sm_90a), in pure Rust.
//!
//! The kernels are written in Rust (`fa3-kernels`) and compiled to PTX by
//! rustc's NVPTX backend; this crate embeds that module (and an sm_90a cubin
//! when ptxas was available at build time), loads it through the CUDA driver
//! and exposes checked, safe entry points.
//!
//! Start with [`Gpu::new`]: it tells you, as a typed [`Error`], when there is
//! no driver, no device, or a GPU that is not a Hopper.
//!
//! ```no_run
//! # fn main() -> Result<(), fa3::Error> {
//! let gpu = fa3::Gpu::new(0)?;
//! let x = gpu.upload(&[1.0f32, 2.0, 3.0])?;
//! let y = gpu.upload(&[0.5f32; 3])?;
//! let mut out = gpu.alloc::<f32>(3)?;
//! gpu.smoke_axpy(2.0, &x, &y, &mut out)?;
//! assert_eq!(gpu.download(&out)?, vec![2.5, 4.5, 6.5]);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod diagnostics;
mod error;
mod gpu;
pub mod kernel_image;
mod smoke;

pub use error::{Error, Result};
pub use gpu::{DeviceBuffer, Element, Gpu, ModuleSource};
