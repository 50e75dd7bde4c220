//! Which wgmma an element type issues: the element-generic face of the
//! per-type [`Mma`] methods, so kernels and self-tests are generic over the
//! element and name each instruction once, here.

use super::elem::{Bf16, E4m3, Element, F16, KMajor, Major, MnMajor};
use super::smem::SmemDesc;
use super::thread::Warpgroup;
use super::wgmma::{Accumulator, FragA, Mma, ScaleD};

/// An element type whose wgmma takes B of major `MB`.
pub trait MmaElem<MB: Major>: Element + Sized {
    /// K elements per wgmma.
    const K_STEP: u32;
    /// D (+)= A·B, both operands from shared memory.
    fn ss<const R: usize>(
        acc: &mut Accumulator<R>,
        wg: &Warpgroup,
        a: SmemDesc<KMajor>,
        b: SmemDesc<MB>,
        scale: ScaleD,
    ) where
        Accumulator<R>: Mma;
    /// D (+)= A·B, A from registers.
    fn rs<const R: usize>(
        acc: &mut Accumulator<R>,
        wg: &Warpgroup,
        a: FragA<Self>,
        b: SmemDesc<MB>,
        scale: ScaleD,
    ) where
        Accumulator<R>: Mma;
}

macro_rules! mma_elem {
    (impl<$($generic:ident)?> $elem:ty, $major:ty, $k:literal, $ss:ident, $rs:ident) => {
        impl<$($generic: Major)?> MmaElem<$major> for $elem {
            const K_STEP: u32 = $k;
            #[inline(always)]
            fn ss<const R: usize>(
                acc: &mut Accumulator<R>,
                wg: &Warpgroup,
                a: SmemDesc<KMajor>,
                b: SmemDesc<$major>,
                scale: ScaleD,
            ) where
                Accumulator<R>: Mma,
            {
                acc.$ss(wg, a, b, scale);
            }
            #[inline(always)]
            fn rs<const R: usize>(
                acc: &mut Accumulator<R>,
                wg: &Warpgroup,
                a: FragA<Self>,
                b: SmemDesc<$major>,
                scale: ScaleD,
            ) where
                Accumulator<R>: Mma,
            {
                acc.$rs(wg, a, b, scale);
            }
        }
    };
}
// The 16-bit types take B of either major; FP8 wgmma reads both operands
// K-major only, so an MN-major FP8 GEMM does not compile.
mma_elem!(impl<MB> Bf16, MB, 16, mma_ss_bf16, mma_rs_bf16);
mma_elem!(impl<MB> F16, MB, 16, mma_ss_f16, mma_rs_f16);
mma_elem!(impl<> E4m3, KMajor, 32, mma_ss_e4m3, mma_rs_e4m3);

/// A 16-bit element type, whose SS wgmma also reads A MN-major (the
/// backward's dQ = dS·K reads dS from the dSᵀ tile it stored). FP8 wgmma
/// has no transpose: no e4m3 implementation.
pub trait MmaElemTransA<MB: Major>: MmaElem<MB> {
    /// D (+)= A·B, A from shared memory MN-major (M contiguous).
    fn ss_t<const R: usize>(
        acc: &mut Accumulator<R>,
        wg: &Warpgroup,
        a: SmemDesc<MnMajor>,
        b: SmemDesc<MB>,
        scale: ScaleD,
    ) where
        Accumulator<R>: Mma;
}

macro_rules! mma_elem_trans_a {
    ($elem:ty, $ss:ident) => {
        impl<MB: Major> MmaElemTransA<MB> for $elem {
            #[inline(always)]
            fn ss_t<const R: usize>(
                acc: &mut Accumulator<R>,
                wg: &Warpgroup,
                a: SmemDesc<MnMajor>,
                b: SmemDesc<MB>,
                scale: ScaleD,
            ) where
                Accumulator<R>: Mma,
            {
                acc.$ss(wg, a, b, scale);
            }
        }
    };
}
mma_elem_trans_a!(Bf16, mma_ss_bf16);
mma_elem_trans_a!(F16, mma_ss_f16);
