//! What the forward needs of its input element: S = Q·Kᵀ from shared memory
//! (both K-major), P packed from S's accumulator as the A operand of P·V,
//! how P·V reads V, and the type O is written in. bf16 and f16 read V as
//! loaded (MN-major: the keys are P·V's contraction), with P in k16
//! fragments, and write O in their own type. e4m3 (the FP8 forward) reads
//! V transposed (K-major: FP8 wgmma has no transpose), each 32-key block
//! in the order its k32 P fragments hold the keys
//! (`layout::fragment::fp8_key_of_k`, `fp8::transpose`), and writes O in
//! bf16.

use crate::arch::elem::{Bf16, E4m3, Element, F16, KMajor, Major, MnMajor};
use crate::arch::mma_elem::MmaElem;
use crate::arch::smem::{SmemDesc, Tile};
use crate::arch::thread::Warpgroup;
use crate::arch::wgmma::{Accumulator, FragA, Mma, ScaleD};
use crate::epilogue::Store16;
use crate::half::HalfElem;

pub(crate) trait FwdInput: Element + MmaElem<KMajor> {
    /// What O is written in.
    type Out: Store16;
    /// How P·V reads V's stage.
    type VMajor: Major;
    /// Keys per P fragment (the k-step of P·V).
    const P_KEYS: u32;
    /// log2 of P's largest value: the softmax shifts P into `[0,
    /// 2^P_LOG2_MAX]`. e4m3 takes 8, as FA3 does: P's small values then
    /// stay normal numbers (e4m3's smallest normal is 2^-6), where in
    /// `[0, 1]` everything below 2^-6 would lose bits or vanish.
    const P_LOG2_MAX: f32;
    /// Whether the kernel reads dequantization factors
    /// (`abi::fwd::Fp8DescaleParams`).
    const DESCALED: bool;
    /// Keys `P_KEYS · kb ..` of S, rounded, as the A operand of P·V.
    fn p_fragment<const R: usize>(s: &Accumulator<R>, kb: u32) -> FragA<Self>;
    /// The descriptor of k-step `kb` of P·V's B operand: the V stage at
    /// `v` of `N` keys and `D` head dims.
    fn v_desc<const N: u32, const D: u32>(v: u32, kb: u32) -> SmemDesc<Self::VMajor>;
    /// O += P·V for one k-step.
    fn pv<const R: usize>(
        o: &mut Accumulator<R>,
        wg: &Warpgroup,
        p: FragA<Self>,
        v: SmemDesc<Self::VMajor>,
    ) where
        Accumulator<R>: Mma;
}

macro_rules! half_input {
    ($($elem:ty),*) => {$(
        impl FwdInput for $elem {
            type Out = $elem;
            type VMajor = MnMajor;
            const P_KEYS: u32 = 16;
            const P_LOG2_MAX: f32 = 0.0;
            const DESCALED: bool = false;
            #[inline(always)]
            fn p_fragment<const R: usize>(s: &Accumulator<R>, kb: u32) -> FragA<Self> {
                <Self as HalfElem>::p_fragment(s, kb)
            }
            #[inline(always)]
            fn v_desc<const N: u32, const D: u32>(v: u32, kb: u32) -> SmemDesc<MnMajor> {
                // SAFETY: the caller's V stage (smem_layout), waited for.
                unsafe { Tile::<Self, N, D, MnMajor>::at(v) }.desc(kb)
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
                <Self as MmaElem<MnMajor>>::rs(o, wg, p, v, ScaleD::Accumulate);
            }
        }
    )*};
}
half_input!(Bf16, F16);

impl FwdInput for E4m3 {
    type Out = Bf16;
    type VMajor = KMajor;
    const P_KEYS: u32 = 32;
    const P_LOG2_MAX: f32 = 8.0;
    const DESCALED: bool = true;
    #[inline(always)]
    fn p_fragment<const R: usize>(s: &Accumulator<R>, kb: u32) -> FragA<Self> {
        s.to_a_e4m3(kb)
    }
    #[inline(always)]
    fn v_desc<const N: u32, const D: u32>(v: u32, kb: u32) -> SmemDesc<KMajor> {
        // SAFETY: the caller's transposed V stage (D rows of N keys), written
        // and fenced by the transposing threads.
        unsafe { Tile::<Self, D, N, KMajor>::at(v) }.desc(kb)
    }
    #[inline(always)]
    fn pv<const R: usize>(
        o: &mut Accumulator<R>,
        wg: &Warpgroup,
        p: FragA<Self>,
        v: SmemDesc<KMajor>,
    ) where
        Accumulator<R>: Mma,
    {
        <Self as MmaElem<KMajor>>::rs(o, wg, p, v, ScaleD::Accumulate);
    }
}
