//! The 16-bit element types of the forward: which wgmma they issue, how P
//! and O are rounded to them.

use crate::arch::elem::{Bf16, Element, F16, KMajor, MnMajor};
use crate::arch::fragment::{pack_bf16x2, pack_f16x2};
use crate::arch::smem::SmemDesc;
use crate::arch::thread::Warpgroup;
use crate::arch::wgmma::{Accumulator, FragA, Mma, ScaleD};

/// bf16 or f16, as the forward uses them.
pub(crate) trait HalfElem: Element + Sized {
    /// S (+)= Q·Kᵀ, both from shared memory.
    fn qk<const R: usize>(
        s: &mut Accumulator<R>,
        wg: &Warpgroup,
        q: SmemDesc<KMajor>,
        k: SmemDesc<KMajor>,
        scale: ScaleD,
    ) where
        Accumulator<R>: Mma;
    /// O += P·V, P from registers, V MN-major.
    fn pv<const R: usize>(
        o: &mut Accumulator<R>,
        wg: &Warpgroup,
        p: FragA<Self>,
        v: SmemDesc<MnMajor>,
    ) where
        Accumulator<R>: Mma;
    /// Columns `16 kb ..` of S, rounded, as the A operand of P·V.
    fn p_fragment<const R: usize>(s: &Accumulator<R>, kb: u32) -> FragA<Self>;
    /// Two f32 rounded to this type, `lo` in the low half.
    fn pack2(lo: f32, hi: f32) -> u32;
}

macro_rules! half_elem {
    ($elem:ty, $ss:ident, $rs:ident, $to_a:ident, $pack:ident) => {
        impl HalfElem for $elem {
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
                s.$ss(wg, q, k, scale);
            }
            #[inline(always)]
            fn pv<const R: usize>(
                o: &mut Accumulator<R>,
                wg: &Warpgroup,
                p: FragA<Self>,
                v: SmemDesc<MnMajor>,
            ) where
                Accumulator<R>: Mma,
            {
                o.$rs(wg, p, v, ScaleD::Accumulate);
            }
            #[inline(always)]
            fn p_fragment<const R: usize>(s: &Accumulator<R>, kb: u32) -> FragA<Self> {
                s.$to_a(kb)
            }
            #[inline(always)]
            fn pack2(lo: f32, hi: f32) -> u32 {
                $pack(lo, hi)
            }
        }
    };
}
half_elem!(Bf16, mma_ss_bf16, mma_rs_bf16, to_a_bf16, pack_bf16x2);
half_elem!(F16, mma_ss_f16, mma_rs_f16, to_a_f16, pack_f16x2);
