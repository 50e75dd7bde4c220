//! The element types attention reads and writes.
//!
//! `bf16` and `f16` come from the `half` crate, FP8 e4m3 from the `float8`
//! crate ([`F8E4M3`]). `float8` is chosen over a home-made 1-byte newtype
//! because it is maintained, converts with IEEE-style round-to-nearest-even
//! and saturation, and is the type cudarc (feature `f8`) implements
//! `DeviceRepr` for and candle stores its FP8 tensors in: device buffers of
//! this crate and of those libraries hold the same Rust type.

use crate::gpu::TmaElement;
use fa3_kernels::abi::{
    BwdConvertBf16, BwdConvertF16, BwdPreprocessBf16, BwdPreprocessF16, Fp8QuantizeBf16,
    Fp8QuantizeF16, Kernel, KernelSpec,
};
use float8::F8E4M3;
use half::{bf16, f16};

mod sealed {
    use fa3_kernels::abi::KernelSpec;

    pub trait Sealed {}

    /// Which forward kernels take this element type (`FWD_KERNELS` rows).
    pub trait ForwardKernels {
        const FWD_ELEM: fa3_kernels::abi::fwd::FwdElem;
    }

    /// The kernels of the 16-bit types' other entry points.
    pub trait HalfKernels {
        /// The backward's preprocess and conversion kernels.
        const BWD_AUX: (KernelSpec, KernelSpec);
        /// The FP8 quantizer reading this type.
        const FP8_QUANTIZE: KernelSpec;
    }
}

/// A floating-point type the CPU reference can read and write: `f32`,
/// `f64`, `bf16`, `f16` and FP8 e4m3.
///
/// Conversions to the wider types are exact; conversions from them round
/// once to nearest (even), also from `f64` (`half`'s own `from_f64` ignores
/// the low 32 bits of the `f64`, so it can be off by one unit in the last
/// place; these are not).
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
pub trait AttentionElement:
    Real + TmaElement + sealed::ForwardKernels + sealed::HalfKernels
{
}

impl AttentionElement for bf16 {}
impl AttentionElement for f16 {}
impl sealed::ForwardKernels for bf16 {
    const FWD_ELEM: fa3_kernels::abi::fwd::FwdElem = fa3_kernels::abi::fwd::FwdElem::Bf16;
}
impl sealed::ForwardKernels for f16 {
    const FWD_ELEM: fa3_kernels::abi::fwd::FwdElem = fa3_kernels::abi::fwd::FwdElem::F16;
}
impl sealed::ForwardKernels for F8E4M3 {
    const FWD_ELEM: fa3_kernels::abi::fwd::FwdElem = fa3_kernels::abi::fwd::FwdElem::E4m3;
}

impl sealed::HalfKernels for bf16 {
    const BWD_AUX: (KernelSpec, KernelSpec) = (BwdPreprocessBf16::SPEC, BwdConvertBf16::SPEC);
    const FP8_QUANTIZE: KernelSpec = Fp8QuantizeBf16::SPEC;
}
impl sealed::HalfKernels for f16 {
    const BWD_AUX: (KernelSpec, KernelSpec) = (BwdPreprocessF16::SPEC, BwdConvertF16::SPEC);
    const FP8_QUANTIZE: KernelSpec = Fp8QuantizeF16::SPEC;
}

pub(crate) use sealed::ForwardKernels;

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
real!(bf16, "bf16", to_f64: f64::from, to_f32: f32::from, from_f64: |x| bf16::from_f32(round_to_odd_f32(x)), from_f32: bf16::from_f32);
real!(f16, "f16", to_f64: f64::from, to_f32: f32::from, from_f64: |x| f16::from_f32(round_to_odd_f32(x)), from_f32: f16::from_f32);
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

/// `x` rounded to `f32` toward zero, its last bit set when inexact ("round
/// to odd"). Rounding that to nearest in a type with at least two bits less
/// precision (bf16: 8, f16: 11, against f32's 24) gives `x` correctly
/// rounded to that type: the odd bit stands for everything `f32` dropped,
/// so no tie is created or lost.
fn round_to_odd_f32(x: f64) -> f32 {
    let nearest = x as f32;
    if !nearest.is_finite() || f64::from(nearest) == x {
        // Exact, NaN, or beyond f32's range (and so beyond bf16's and f16's).
        return nearest;
    }
    // One step toward zero when rounding went away from it.
    let toward_zero = if f64::from(nearest).abs() > x.abs() {
        f32::from_bits(nearest.to_bits() - 1)
    } else {
        nearest
    };
    f32::from_bits(toward_zero.to_bits() | 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_f64_rounds_once() {
        // Just above the tie between bf16 values 1 and 1 + 2^-7: the excess
        // is below f32's precision, so f64 -> f32 -> bf16 would tie to even.
        let x = 1.0 + 2f64.powi(-8) + 2f64.powi(-40);
        assert_eq!(
            <bf16 as Real>::from_f64(x),
            bf16::from_f32(1.0 + 2f32.powi(-7))
        );
        assert_eq!(
            <bf16 as Real>::from_f64(-x),
            -bf16::from_f32(1.0 + 2f32.powi(-7))
        );
        let y = 1.0 + 2f64.powi(-11) + 2f64.powi(-40);
        assert_eq!(
            <f16 as Real>::from_f64(y),
            f16::from_f32(1.0 + 2f32.powi(-10))
        );
        // Exact ties still go to even, and f32 values round as from_f32.
        assert_eq!(<bf16 as Real>::from_f64(1.0 + 2f64.powi(-8)), bf16::ONE);
        let v = 0.123_456_79_f32;
        assert_eq!(<bf16 as Real>::from_f64(f64::from(v)), bf16::from_f32(v));
        assert!(<bf16 as Real>::from_f64(f64::NAN).is_nan());
        assert_eq!(<bf16 as Real>::from_f64(1e300), bf16::INFINITY);
        assert_eq!(<f16 as Real>::from_f64(-1e-300), -f16::ZERO);
    }
}
