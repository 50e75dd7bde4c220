//! The accumulation types of the reference: `f32` (what the GPU kernels
//! accumulate in) and `f64` (for tests).

use crate::attention::Real;
use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Sub};

/// Arithmetic the reference needs, in one precision.
pub(crate) trait Acc:
    Copy
    + Send
    + Sync
    + Debug
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + AddAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    /// Whether [`dot`] may sum in independent lanes (reassociated, so it
    /// vectorizes): `f64`, the tests' exact reference; `f32` sums in order
    /// (what the kernels and PyTorch's naive path are compared with).
    const LANES: bool;
    const NEG_INFINITY: Self;
    /// `x` rounded to this precision.
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// An element converted to this precision (exact for every element type
    /// but `f64` into `f32`).
    fn of<T: Real>(x: T) -> Self;
    /// This value rounded (once) to `T`.
    fn to<T: Real>(self) -> T;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn tanh(self) -> Self;
    fn max(self, other: Self) -> Self;
    fn is_finite(self) -> bool;
    /// This value in precision `W` (exact when `W` is at least as wide).
    fn cast<W: Acc>(self) -> W {
        W::from_f64(self.to_f64())
    }
}

macro_rules! acc {
    ($t:ty, $of:ident, $to:ident, $lanes:literal) => {
        impl Acc for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const LANES: bool = $lanes;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            fn from_f64(x: f64) -> Self {
                <$t as Real>::from_f64(x)
            }
            fn to_f64(self) -> f64 {
                <$t as Real>::to_f64(self)
            }
            fn of<T: Real>(x: T) -> Self {
                x.$of()
            }
            fn to<T: Real>(self) -> T {
                T::$to(self)
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
        }
    };
}

acc!(f32, to_f32, from_f32, false);
acc!(f64, to_f64, from_f64, true);

/// `Σ a[i]·b[i]` in precision `W`: in order, or with `W::LANES` in 8
/// interleaved partial sums (element `i` into sum `i % 8`) added pairwise,
/// then the tail in order.
pub(crate) fn dot<A: Acc, W: Acc>(a: &[A], b: &[A]) -> W {
    let term = |(&x, &y): (&A, &A)| x.cast::<W>() * y.cast::<W>();
    if !W::LANES {
        return a.iter().zip(b).map(term).fold(W::ZERO, |acc, t| acc + t);
    }
    let n = a.len().min(b.len());
    let (head, tail) = (n - n % 8, n);
    let mut sums = [W::ZERO; 8];
    for (xs, ys) in a[..head].chunks_exact(8).zip(b[..head].chunks_exact(8)) {
        for (s, t) in sums.iter_mut().zip(xs.iter().zip(ys).map(term)) {
            *s += t;
        }
    }
    let [s0, s1, s2, s3, s4, s5, s6, s7] = sums;
    let lanes = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
    a[head..tail]
        .iter()
        .zip(&b[head..tail])
        .map(term)
        .fold(lanes, |acc, t| acc + t)
}

/// `acc[i] += w · x[i]`, in precision `W`.
pub(crate) fn axpy<A: Acc, W: Acc>(acc: &mut [W], w: W, x: &[A]) {
    for (a, &x) in acc.iter_mut().zip(x) {
        *a += w * x.cast::<W>();
    }
}
