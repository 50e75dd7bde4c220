//! wgmma GEMM self-test: D (64 x N, f32) = A·Bᵀ by one warpgroup.

use super::check_len;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, LaunchShape, TmaElement, TmaView};
use fa3_kernels::abi::selftest::{GEMM_MAX_K, GemmParams, gemm_smem_layout};
use fa3_kernels::abi::*;
use float8::F8E4M3;
use half::{bf16, f16};

/// Where A comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmForm {
    /// A and B from shared memory (descriptors).
    Ss,
    /// A from registers, B from shared memory.
    Rs,
}

/// How B is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BMajor {
    /// B is N x K, K contiguous (K of attention's Q·Kᵀ).
    K,
    /// B is K x N, N contiguous (V of attention's P·V).
    Mn,
}

/// Input element types of the GEMM self-test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmElement {
    /// bfloat16, k16 steps.
    Bf16,
    /// IEEE half, k16 steps.
    F16,
    /// FP8 e4m3, k32 steps (K-major B only).
    E4m3,
}

/// One compiled GEMM self-test kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmCase {
    /// Input element type.
    pub element: GemmElement,
    /// SS or RS.
    pub form: GemmForm,
    /// Layout of B.
    pub b_major: BMajor,
    /// N (columns of D).
    pub n: usize,
}

macro_rules! gemm_cases {
    ($($kernel:ident: $elem:ident $form:ident $major:ident $n:literal;)*) => {
        /// Every GEMM self-test kernel in the module.
        pub const GEMM_CASES: &[GemmCase] = &[$(GemmCase {
            element: GemmElement::$elem,
            form: GemmForm::$form,
            b_major: BMajor::$major,
            n: $n,
        }),*];

        /// Launches the kernel of `case`.
        ///
        /// # Safety
        /// As `Gpu::launch`, for `GemmParams`.
        unsafe fn launch_case(gpu: &Gpu, case: GemmCase, shape: LaunchShape, params: GemmParams) -> Result<()> {
            $(
                if case == (GemmCase {
                    element: GemmElement::$elem,
                    form: GemmForm::$form,
                    b_major: BMajor::$major,
                    n: $n,
                }) {
                    // SAFETY: forwarded contract.
                    return unsafe { gpu.launch::<$kernel>(shape, params) };
                }
            )*
            Err(Error::InvalidArgument {
                argument: "case",
                problem: format!("{case:?} has no kernel; see GEMM_CASES"),
            })
        }
    };
}

gemm_cases! {
    SelftestGemmSsBf16KN64: Bf16 Ss K 64;
    SelftestGemmSsBf16KN80: Bf16 Ss K 80;
    SelftestGemmSsBf16KN176: Bf16 Ss K 176;
    SelftestGemmSsBf16KN256: Bf16 Ss K 256;
    SelftestGemmSsBf16MnN64: Bf16 Ss Mn 64;
    SelftestGemmSsBf16MnN128: Bf16 Ss Mn 128;
    SelftestGemmSsBf16MnN256: Bf16 Ss Mn 256;
    SelftestGemmSsF16KN128: F16 Ss K 128;
    SelftestGemmRsBf16KN64: Bf16 Rs K 64;
    SelftestGemmRsBf16MnN128: Bf16 Rs Mn 128;
    SelftestGemmRsBf16MnN256: Bf16 Rs Mn 256;
    SelftestGemmSsE4m3N64: E4m3 Ss K 64;
    SelftestGemmSsE4m3N256: E4m3 Ss K 256;
    SelftestGemmRsE4m3N128: E4m3 Rs K 128;
    SelftestGemmRsE4m3N256: E4m3 Rs K 256;
}

/// Element types the GEMM self-test takes, tied to [`GemmElement`].
pub trait GemmInput: TmaElement {
    /// The matching element kind.
    const ELEMENT: GemmElement;
}
impl GemmInput for bf16 {
    const ELEMENT: GemmElement = GemmElement::Bf16;
}
impl GemmInput for f16 {
    const ELEMENT: GemmElement = GemmElement::F16;
}
impl GemmInput for F8E4M3 {
    const ELEMENT: GemmElement = GemmElement::E4m3;
}

/// Computes D = A·Bᵀ (64 x `case.n`, f32, row-major) on `gpu` with the
/// self-test kernel of `case`. `a` is 64 x `k` row-major; `b` is `n` x `k`
/// row-major (K-major) or `k` x `n` row-major (MN-major). `k` is a multiple
/// of 128 bytes of elements, at most 256.
pub fn wgmma_gemm<T: GemmInput>(
    gpu: &Gpu,
    case: GemmCase,
    k: usize,
    a: &[T],
    b: &[T],
) -> Result<Vec<f32>> {
    if case.element != T::ELEMENT {
        return Err(Error::InvalidArgument {
            argument: "a",
            problem: format!("{:?} data for a {:?} case", T::ELEMENT, case.element),
        });
    }
    let elem = size_of::<T>();
    let block = 128 / elem;
    if k == 0 || !k.is_multiple_of(block) || k > GEMM_MAX_K as usize {
        return Err(Error::InvalidArgument {
            argument: "k",
            problem: format!("k = {k}; expected a multiple of {block} up to {GEMM_MAX_K}"),
        });
    }
    let n = case.n;
    check_len("a", a.len(), 64 * k)?;
    check_len("b", b.len(), n * k)?;

    let (da, db) = (gpu.upload(a)?, gpu.upload(b)?);
    let mut d = gpu.alloc::<f32>(64 * n)?;
    let a_map = gpu.tensor_map(
        &da,
        &TmaView {
            offset: 0,
            dims: &[k as u64, 64],
            strides_bytes: &[(k * elem) as u64],
            box_dims: &[block as u32, 64],
        },
    )?;
    // B's rows are N (K-major: K contiguous) or K (MN-major: N contiguous);
    // either way a box is 128 bytes wide and covers every row.
    let (cols, rows) = match case.b_major {
        BMajor::K => (k, n),
        BMajor::Mn => (n, k),
    };
    let b_map = gpu.tensor_map(
        &db,
        &TmaView {
            offset: 0,
            dims: &[cols as u64, rows as u64],
            strides_bytes: &[(cols * elem) as u64],
            box_dims: &[block as u32, rows as u32],
        },
    )?;
    let shape = LaunchShape {
        grid: (1, 1, 1),
        threads_per_block: 128,
        dynamic_smem_bytes: gemm_smem_layout(elem as u32, n as u32).2,
    };
    {
        let (a_map_ptr, _a) = gpu.map_ptr(&a_map);
        let (b_map_ptr, _b) = gpu.map_ptr(&b_map);
        let (a_ptr, _c) = gpu.read_ptr(&da);
        let (_b_ptr, _d) = gpu.read_ptr(&db);
        let (d_ptr, _e) = gpu.write_ptr(&mut d);
        let params = GemmParams {
            a_map: a_map_ptr,
            b_map: b_map_ptr,
            a: GlobalPtr::from_address(a_ptr.address()),
            d: d_ptr,
            k: k as u32,
        };
        // SAFETY: maps checked against their live buffers; A is 64 x k and D
        // 64 x n as the kernel reads and writes them; shared memory per the
        // kernel's own layout formula.
        unsafe { launch_case(gpu, case, shape, params)? };
    }
    gpu.download(&d)
}
