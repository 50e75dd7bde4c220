//! The element types attention reads and writes.
//!
//! `bf16` and `f16` come from the `half` crate, FP8 e4m3 from the `float8`
//! crate ([`F8E4M3`]). `float8` is chosen over a home-made 1-byte newtype
//! because it is maintained, converts with IEEE-style round-to-nearest-even
//! and saturation, and is the type cudarc (feature `f8`) implements
//! `DeviceRepr` for and candle stores its FP8 tensors in: device buffers of
//! this crate and of those libraries hold the same Rust type.

use crate::gpu::Element;
use float8::F8E4M3;
use half::{bf16, f16};

mod sealed {
    pub trait Sealed {}
}

/// A floating-point type the CPU reference can read and write: `f32`,
/// `f64`, `bf16`, `f16` and FP8 e4m3.
///
/// Conversions to the wider types are exact; conversions from them round to
/// nearest (even).
pub trait Real: sealed::Sealed + Copy + Send + Sync + 'static {
    /// The type's name, for messages.
    const NAME: &'static str;
    /// The value as an `f64` (exact).
    fn to_f64(self) -> f64;
    /// The value as an `f32` (exact for every type but `f64`).
    fn to_f32(self) -> f32;
    /// The nearest value of this type.
    fn from_f64(x: f64) -> Self;
    /// The nearest value of this type.
    fn from_f32(x: f32) -> Self;
}

/// The 16-bit element types of the forward and backward entry points:
/// `bf16` and `f16`.
pub trait AttentionElement: Real + Element {}

impl AttentionElement for bf16 {}
impl AttentionElement for f16 {}

macro_rules! real {
    ($t:ty, $name:literal, to_f64: $to64:expr, to_f32: $to32:expr, from_f64: $from64:expr, from_f32: $from32:expr) => {
        impl sealed::Sealed for $t {}
        impl Real for $t {
            const NAME: &'static str = $name;
            fn to_f64(self) -> f64 {
                $to64(self)
            }
            fn to_f32(self) -> f32 {
                $to32(self)
            }
            fn from_f64(x: f64) -> Self {
                $from64(x)
            }
            fn from_f32(x: f32) -> Self {
                $from32(x)
            }
        }
    };
}

real!(f32, "f32", to_f64: f64::from, to_f32: |x| x, from_f64: |x| x as f32, from_f32: |x| x);
real!(f64, "f64", to_f64: |x| x, to_f32: |x| x as f32, from_f64: |x| x, from_f32: f64::from);
real!(bf16, "bf16", to_f64: f64::from, to_f32: f32::from, from_f64: bf16::from_f64, from_f32: bf16::from_f32);
real!(f16, "f16", to_f64: f64::from, to_f32: f32::from, from_f64: f16::from_f64, from_f32: f16::from_f32);
// Paths, not method calls: `x.to_f64()` would pick `Real::to_f64` (by value)
// over the inherent `F8E4M3::to_f64(&self)` and recurse.
real!(
    F8E4M3,
    "fp8 e4m3",
    to_f64: |x| F8E4M3::to_f64(&x),
    to_f32: |x| F8E4M3::to_f32(&x),
    from_f64: F8E4M3::from_f64,
    from_f32: F8E4M3::from_f32
);
