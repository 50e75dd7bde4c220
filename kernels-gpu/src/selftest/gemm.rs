//! One warpgroup computes D(64 x N) = A·Bᵀ with wgmma, SS or RS, loading A
//! and B by TMA (SS) or A straight into register fragments (RS).

use crate::abi::selftest::{GEMM_MAX_K, GemmParams, gemm_smem_layout};
use crate::abi::{GlobalPtr, TensorMap};
use crate::arch::elem::{Bf16, E4m3, Element, F16, KMajor, Major, MnMajor};
use crate::arch::mbarrier::{MBarrier, init_for_one_issuer};
use crate::arch::mma_elem::MmaElem;
use crate::arch::smem::{self, SmemDesc, Tile};
use crate::arch::thread::{Elected, Warpgroup, trap};
use crate::arch::tma;
use crate::arch::wgmma::{self, Accumulator, FragA, Mma, ScaleD};
use crate::layout::fragment::{a_operand_k16, a_operand_k32, accumulator};

/// B as an N x K K-major tile.
pub(crate) type BK<E, const N: u32> = Tile<E, N, GEMM_MAX_K, KMajor>;
/// B as a K x N MN-major tile.
pub(crate) type BMn<E, const N: u32> = Tile<E, GEMM_MAX_K, N, MnMajor>;

/// An element type the GEMM self-test runs with B of major `MB`: its wgmma
/// (`MmaElem`) and how a thread loads its A fragment from global memory.
pub(crate) trait GemmElem<MB: Major>: MmaElem<MB> {
    /// This thread's A fragment of k-step `step` from row-major A (64 x k).
    fn fragment(a: GlobalPtr<u32>, k: u32, thread: u32, step: u32) -> FragA<Self>;
}

/// For each A register, the 32-bit word of row-major A holding its
/// `(row, col)` (from `layout`) at k-step `step`.
#[inline(always)]
fn fragment_words<E: Element>(
    a: GlobalPtr<u32>,
    k: u32,
    thread: u32,
    step: u32,
    k_step: u32,
    layout: fn(u32, u32) -> (u32, u32),
) -> FragA<E> {
    let per_word = 4 / E::BYTES;
    FragA::new(core::array::from_fn(|reg| {
        let (row, col) = layout(thread, reg as u32);
        // SAFETY: inside the 64 x k matrix (launch contract).
        unsafe {
            *a.as_mut_ptr()
                .add(((row * k + step * k_step + col) / per_word) as usize)
        }
    }))
}

// The 16-bit types share the k16 A-operand layout.
macro_rules! k16_gemm_elem {
    ($($elem:ty),*) => {$(
        impl<MB: Major> GemmElem<MB> for $elem {
            #[inline(always)]
            fn fragment(a: GlobalPtr<u32>, k: u32, thread: u32, step: u32) -> FragA<Self> {
                let k_step = <Self as MmaElem<MB>>::K_STEP;
                fragment_words(a, k, thread, step, k_step, a_operand_k16)
            }
        }
    )*};
}
k16_gemm_elem!(Bf16, F16);

impl GemmElem<KMajor> for E4m3 {
    #[inline(always)]
    fn fragment(a: GlobalPtr<u32>, k: u32, thread: u32, step: u32) -> FragA<Self> {
        fragment_words(
            a,
            k,
            thread,
            step,
            <Self as MmaElem<KMajor>>::K_STEP,
            a_operand_k32,
        )
    }
}

/// The B tile of major `M`, sized for `GEMM_MAX_K`.
pub(crate) trait BTile<M: Major>: Sized {
    /// The tile at shared address `addr`.
    ///
    /// # Safety
    /// As `Tile::at`.
    unsafe fn at(addr: u32) -> Self;
    /// Issues the TMA loads of the first `k` elements of K.
    fn load(&self, one: &Elected, map: GlobalPtr<TensorMap>, bar: &MBarrier, k: u32);
    fn desc(&self, step: u32) -> SmemDesc<M>;
}

impl<E: Element, const N: u32> BTile<KMajor> for Tile<E, N, GEMM_MAX_K, KMajor> {
    #[inline(always)]
    unsafe fn at(addr: u32) -> Self {
        // SAFETY: forwarded contract.
        unsafe { Tile::at(addr) }
    }
    #[inline(always)]
    fn load(&self, one: &Elected, map: GlobalPtr<TensorMap>, bar: &MBarrier, k: u32) {
        for block in 0..k / Self::BLOCK_COLS {
            let col = (block * Self::BLOCK_COLS) as i32;
            // SAFETY: box (128 bytes, N rows) fits one column block.
            unsafe { tma::load(one, map, self.block(block), bar, [col, 0]) };
        }
    }
    #[inline(always)]
    fn desc(&self, step: u32) -> SmemDesc<KMajor> {
        // The inherent `Tile::desc` of this major (inherent methods win).
        self.desc(step)
    }
}

impl<E: Element, const N: u32> BTile<MnMajor> for Tile<E, GEMM_MAX_K, N, MnMajor> {
    #[inline(always)]
    unsafe fn at(addr: u32) -> Self {
        // SAFETY: forwarded contract.
        unsafe { Tile::at(addr) }
    }
    #[inline(always)]
    fn load(&self, one: &Elected, map: GlobalPtr<TensorMap>, bar: &MBarrier, _k: u32) {
        for block in 0..Self::BLOCKS {
            let col = (block * Self::BLOCK_COLS) as i32;
            // SAFETY: box (64 columns, k rows) fits one column block.
            unsafe { tma::load(one, map, self.block(block), bar, [col, 0]) };
        }
    }
    #[inline(always)]
    fn desc(&self, step: u32) -> SmemDesc<MnMajor> {
        // The inherent `Tile::desc` of this major (inherent methods win).
        self.desc(step)
    }
}

/// # Safety
/// Launched with 128 threads and `gemm_smem_layout(E::BYTES, N).2` bytes of
/// dynamic shared memory; `p` as `GemmParams` documents; `R = N / 2`.
pub(crate) unsafe fn run<E, MB, B, const N: u32, const R: usize, const RS: bool>(p: GemmParams)
where
    E: GemmElem<MB>,
    MB: Major,
    B: BTile<MB>,
    Accumulator<R>: Mma,
{
    const { assert!(2 * R as u32 == N) };
    let base = smem::base();
    if base & 1023 != 0 || p.k == 0 || p.k > GEMM_MAX_K {
        trap();
    }
    let (b_offset, bar_offset, _) = gemm_smem_layout(E::BYTES, N);
    // SAFETY: offsets from gemm_smem_layout, which the host sized the
    // launch with; the tiles are 1024-byte aligned.
    let (a_tile, b_tile, bar) = unsafe {
        (
            Tile::<E, 64, GEMM_MAX_K, KMajor>::at(base),
            B::at(base + b_offset),
            MBarrier::at(base + bar_offset),
        )
    };

    let issuer = init_for_one_issuer(&bar);
    if let Some(one) = &issuer {
        let a_bytes = if RS { 0 } else { 64 * p.k * E::BYTES };
        bar.arrive_expect_tx(a_bytes + N * p.k * E::BYTES);
        if !RS {
            for block in 0..p.k / Tile::<E, 64, GEMM_MAX_K, KMajor>::BLOCK_COLS {
                let col = (block * Tile::<E, 64, GEMM_MAX_K, KMajor>::BLOCK_COLS) as i32;
                // SAFETY: box (128 bytes, 64 rows) fits one column block.
                unsafe { tma::load(one, p.a_map, a_tile.block(block), &bar, [col, 0]) };
            }
        }
        b_tile.load(one, p.b_map, &bar, p.k);
    }
    bar.wait(0);

    // SAFETY: all 128 threads of the (only) warpgroup run this converged.
    let wg = unsafe { Warpgroup::enter() };
    let thread = wg.thread();
    let mut acc = Accumulator::<R>::zeroed();
    acc.fence_operands();
    wgmma::fence(&wg);
    for step in 0..p.k / E::K_STEP {
        let scale = ScaleD::from_step(step);
        if RS {
            // wgmma reads A's registers asynchronously: the fragment of the
            // next step may only be loaded once this step has completed.
            let a = E::fragment(p.a, p.k, thread, step);
            acc.fence_operands();
            wgmma::fence(&wg);
            E::rs(&mut acc, &wg, a, b_tile.desc(step), scale);
            wgmma::commit_group(&wg);
            acc.wait::<0>(&wg);
        } else {
            E::ss(&mut acc, &wg, a_tile.desc(step), b_tile.desc(step), scale);
        }
    }
    wgmma::commit_group(&wg);
    acc.wait::<0>(&wg);
    acc.for_each(|reg, value| {
        let (row, col) = accumulator(thread, reg);
        // SAFETY: D is 64 x N (launch contract).
        unsafe { *p.d.as_mut_ptr().add((row * N + col) as usize) = value };
    });
}
