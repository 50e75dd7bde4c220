//! The 16-bit element types of the attention kernels: the two GEMMs of the
//! forward (which the backward's Sᵀ, dPᵀ, dV and dK take the same forms
//! of) as wgmma (`arch::mma_elem`), and how P is rounded to them; results
//! are rounded on their way out (`crate::epilogue::Store16`).

use crate::arch::elem::{Bf16, F16, KMajor, MnMajor};
use crate::arch::fragment::{unpack_bf16x2, unpack_f16x2};
use crate::arch::mma_elem::MmaElem;
use crate::arch::smem::SmemDesc;
use crate::arch::thread::Warpgroup;
use crate::arch::wgmma::{Accumulator, FragA, Mma, ScaleD};
use crate::epilogue::Store16;

/// bf16 or f16, as the attention kernels use them: their inputs, and the
/// type results are written in.
pub(crate) trait HalfElem: MmaElem<KMajor> + MmaElem<MnMajor> + Store16 {
    /// S (+)= Q·Kᵀ, both from shared memory.
    #[inline(always)]
    fn qk<const R: usize>(
        s: &mut Accumulator<R>,
        wg: &Warpgroup,
        q: SmemDesc<KMajor>,
        k: SmemDesc<KMajor>,
        scale: ScaleD,
    ) where
        Accumulator<R>: Mma,
    {
        <Self as MmaElem<KMajor>>::ss(s, wg, q, k, scale);
    }
    /// O += P·V, P from registers, V MN-major.
    #[inline(always)]
    fn pv<const R: usize>(
        o: &mut Accumulator<R>,
        wg: &Warpgroup,
        p: FragA<Self>,
        v: SmemDesc<MnMajor>,
    ) where
        Accumulator<R>: Mma,
    {
        <Self as MmaElem<MnMajor>>::rs(o, wg, p, v, ScaleD::Accumulate);
    }
    /// Columns `16 kb ..` of S, rounded, as the A operand of P·V.
    fn p_fragment<const R: usize>(s: &Accumulator<R>, kb: u32) -> FragA<Self>;
    /// A pair of values packed in one word, widened exactly (low half
    /// first): how the backward's preprocess and the FP8 quantizer read
    /// 16-bit inputs.
    fn unpack2(w: u32) -> (f32, f32);
}

macro_rules! half_elem {
    ($elem:ty, $to_a:ident, $unpack:ident) => {
        impl HalfElem for $elem {
            #[inline(always)]
            fn p_fragment<const R: usize>(s: &Accumulator<R>, kb: u32) -> FragA<Self> {
                s.$to_a(kb)
            }
            #[inline(always)]
            fn unpack2(w: u32) -> (f32, f32) {
                $unpack(w)
            }
        }
    };
}
half_elem!(Bf16, to_a_bf16, unpack_bf16x2);
half_elem!(F16, to_a_f16, unpack_f16x2);
