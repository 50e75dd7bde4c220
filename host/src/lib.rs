//! FlashAttention-3 for NVIDIA Hopper GPUs (H100/H200, sm_90a), in pure Rust.
//!
//! The kernels are written in Rust (`fa3-kernels`) and compiled to PTX by
//! rustc's NVPTX backend; this crate embeds that module (and an sm_90a cubin
//! when ptxas was available at build time), loads it through the CUDA driver
//! and exposes checked, safe entry points.
//!
//! # Attention
//!
//! Pick a [`Device`] — a Hopper GPU ([`Device::gpu`]) or the exact CPU
//! reference ([`Device::cpu`]) — and call its entry points with strided
//! [`Tensor`] views and [`AttentionOptions`]. Layouts, options and
//! semantics follow FA3's `flash_attn_interface`:
//!
//! | entry point | FA3 | on a GPU |
//! |---|---|---|
//! | [`Device::forward`], [`Device::forward_into`] | `flash_attn_func` | bf16/f16, head_dim = head_dim_v 64, 128, 256 |
//! | [`Device::backward`], [`Device::backward_into`] | its backward | bf16/f16, head_dim = head_dim_v 64, 128, 256 |
//! | [`Device::forward_varlen_into`], [`Device::backward_varlen_into`] | `flash_attn_varlen_func` | not yet |
//! | [`Device::forward_fp8_into`] | `flash_attn_func` on `float8_e4m3fn` | e4m3 in, bf16 out, head_dim = head_dim_v 64, 128, 256 |
//! | [`Device::quantize_fp8_into`] | (the paper's block quantization and incoherent processing) | bf16/f16 in, e4m3 out |
//!
//! The CPU reference runs every entry point. On a GPU, what is not covered
//! yet (the last column, and softcap) is an [`Error::Unsupported`] after
//! validation; nothing falls back to the CPU silently.
//!
//! ```
//! use fa3::{AttentionOptions, Device, Qkv, Tensor, bf16};
//! # fn main() -> fa3::Result<()> {
//! let shape = [2, 16, 4, 64]; // (batch, seqlen, heads, head_dim)
//! let x = vec![bf16::from_f32(0.1); shape.iter().product()];
//! let t = Tensor::host(&x, shape);
//! let result = Device::cpu().forward(Qkv { q: t, k: t, v: t }, &AttentionOptions::new().causal(true))?;
//! assert_eq!(result.lse.shape(), [2, 4, 16]);
//! # Ok(())
//! # }
//! ```
//!
//! Every argument is validated before anything is read or written; a bad
//! one is a typed [`Error`] saying what is wrong and what is accepted, and
//! the outputs are untouched. [`reference`](mod@reference) exposes the high-precision
//! reference and the same-precision naive implementation tests compare
//! kernels against.
//!
//! # The GPU
//!
//! [`Gpu::new`] tells you, as a typed [`Error`], when there is no driver,
//! no device, or a GPU that is not a Hopper.
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

mod attention;
pub mod diagnostics;
mod error;
mod gpu;
pub mod kernel_image;
mod memory;
pub mod reference;
mod smoke;

pub use attention::{
    AttentionElement, AttentionOptions, BackwardInputs, Device, E4M3_MAX, ForwardInto,
    ForwardOutput, Fp8BlockDescale, Fp8Descale, Fp8Quantize, Fp8QuantizedInto, Fp8Scales,
    Fp8Scaling, Gradients, GradientsInto, OwnedTensor, Precision, Qkv, Real, Storage, Tensor,
    TensorMut, Varlen, fp8_block_rows, hadamard_rotate, hadamard_sign,
};
pub use error::{Error, Result};
/// FP8 e4m3, from the `float8` crate (the type cudarc and candle use).
pub use float8::F8E4M3;
pub use gpu::{DeviceBuffer, Element, Gpu, ModuleSource};
/// The 16-bit element types, from the `half` crate.
pub use half::{bf16, f16};
