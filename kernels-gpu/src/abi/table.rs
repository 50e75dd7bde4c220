//! The kernels of the module and their parameter blocks.
//!
//! One line per kernel: a forward row `Marker: entry = (elem, tiling,
//! schedule);`, any other `Marker: entry(Params) [max threads, min
//! blocks/SM] => device body;` (see `kernel_table!`).

use super::bwd::{BwdConvertParams, BwdPreParams};
use super::fp8::Fp8QuantizeParams;
use super::kernel::{KernelParams, kernel_table};
use super::ptr::GlobalPtr;
use super::selftest::{
    BulkAddParams, ChainE4m3Params, ChainParams, GemmParams, PingpongParams, TmaRoundTripParams,
};

/// Parameters of [`SmokeAxpy`]: `out[i] = alpha * x[i] + y[i]` for `i < len`.
#[repr(C)]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct SmokeParams {
    pub x: GlobalPtr<f32>,
    pub y: GlobalPtr<f32>,
    pub out: GlobalPtr<f32>,
    pub len: u64,
    pub alpha: f32,
}

// SAFETY: repr(C), Copy, align 8, device addresses as GlobalPtr.
unsafe impl KernelParams for SmokeParams {}

/// Parameters of [`SmokeSpin`]: one thread spins `cycles` SM clock cycles.
#[repr(C)]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct SpinParams {
    pub cycles: u64,
}

// SAFETY: repr(C), Copy, align 8, no pointers.
unsafe impl KernelParams for SpinParams {}

// Device-side names the bodies below refer to (nvptx64 only).
#[cfg(target_arch = "nvptx64")]
use crate::{
    arch::elem::{Bf16, E4m3, F16, KMajor, MnMajor},
    bwd, fp8,
    selftest::{
        bulk_add, chain, chain_e4m3,
        gemm::{self, BK, BMn},
        pingpong, tma_round_trip,
    },
    smoke,
};

kernel_table! {
    forward {
        /// Attention forward: element type, tiling (a row of `attn::tiles`:
        /// checked at compile time to be one) and schedule.
        FwdBf16Hdim64: fa3_fwd_bf16_hdim64 = (Bf16, HDIM64, Full);
        FwdBf16Hdim128: fa3_fwd_bf16_hdim128 = (Bf16, HDIM128, Full);
        FwdBf16Hdim256: fa3_fwd_bf16_hdim256 = (Bf16, HDIM256, Full);
        FwdF16Hdim64: fa3_fwd_f16_hdim64 = (F16, HDIM64, Full);
        FwdF16Hdim128: fa3_fwd_f16_hdim128 = (F16, HDIM128, Full);
        FwdF16Hdim256: fa3_fwd_f16_hdim256 = (F16, HDIM256, Full);
        /// hdim 64 from `attn::tiles::LONG_KEYS` keys on (`LONG_TILINGS`).
        FwdBf16Hdim64Long: fa3_fwd_bf16_hdim64_long = (Bf16, HDIM64_LONG, Full);
        FwdF16Hdim64Long: fa3_fwd_f16_hdim64_long = (F16, HDIM64_LONG, Full);
        /// FP8: e4m3 Q, K, V (`attn::tiles::FP8_TILINGS`), O in bf16.
        FwdE4m3Hdim64: fa3_fwd_e4m3_hdim64 = (E4m3, FP8_HDIM64, Full);
        FwdE4m3Hdim128: fa3_fwd_e4m3_hdim128 = (E4m3, FP8_HDIM128, Full);
        /// hdim 256 without the intra-warpgroup overlap: S of the next
        /// block in flight beside O (128 registers) spilled 56 bytes and
        /// serialized wgmma at 232 registers; without it, R218.
        FwdE4m3Hdim256: fa3_fwd_e4m3_hdim256 = (E4m3, FP8_HDIM256, NoOverlap);
        /// Ablation builds (bf16, hdim 128): without pingpong, without the
        /// intra-warpgroup overlap, and without either.
        FwdBf16Hdim128NoPingpong: fa3_fwd_bf16_hdim128_no_pingpong = (Bf16, HDIM128, NoPingpong);
        FwdBf16Hdim128NoOverlap: fa3_fwd_bf16_hdim128_no_overlap = (Bf16, HDIM128, NoOverlap);
        FwdBf16Hdim128Plain: fa3_fwd_bf16_hdim128_plain = (Bf16, HDIM128, Plain);
    }

    backward {
        /// Attention backward main kernel: element type and backward tiling
        /// (a row of `attn::tiles::BWD_TILINGS`, checked at compile time).
        BwdBf16Hdim64: fa3_bwd_bf16_hdim64 = (Bf16, BWD_HDIM64);
        BwdBf16Hdim128: fa3_bwd_bf16_hdim128 = (Bf16, BWD_HDIM128);
        BwdBf16Hdim256: fa3_bwd_bf16_hdim256 = (Bf16, BWD_HDIM256);
        BwdF16Hdim64: fa3_bwd_f16_hdim64 = (F16, BWD_HDIM64);
        BwdF16Hdim128: fa3_bwd_f16_hdim128 = (F16, BWD_HDIM128);
        BwdF16Hdim256: fa3_bwd_f16_hdim256 = (F16, BWD_HDIM256);
    }

    /// Backward preprocess: rowsum(dO∘O), LSE·log2e, dQ accumulator cleared.
    BwdPreprocessBf16: fa3_bwd_preprocess_bf16(BwdPreParams) [256, 1] => bwd::preprocess::run::<Bf16>;
    BwdPreprocessF16: fa3_bwd_preprocess_f16(BwdPreParams) [256, 1] => bwd::preprocess::run::<F16>;
    /// Backward: f32 partials (dQ; GQA's dK, dV) to 16-bit gradients.
    BwdConvertBf16: fa3_bwd_convert_bf16(BwdConvertParams) [128, 1] => bwd::convert::run::<Bf16>;
    BwdConvertF16: fa3_bwd_convert_f16(BwdConvertParams) [128, 1] => bwd::convert::run::<F16>;

    /// FP8 quantization (`fa3::Device::quantize_fp8_into`): group maxima,
    /// then scales and e4m3 data, in two launches.
    Fp8QuantizeBf16: fa3_fp8_quantize_bf16(Fp8QuantizeParams) [256, 1] => fp8::quantize::run::<Bf16>;
    Fp8QuantizeF16: fa3_fp8_quantize_f16(Fp8QuantizeParams) [256, 1] => fp8::quantize::run::<F16>;

    /// The smoke kernel: proves the build, load and launch path end to end.
    /// Grid-stride loop, so any grid covers any length.
    SmokeAxpy: fa3_smoke_axpy(SmokeParams) [256, 1] => smoke::axpy;
    /// One thread busy for a number of clock cycles: queued by the bench
    /// after each L2 flush, as the Python peers queue `torch.cuda._sleep`.
    SmokeSpin: fa3_smoke_spin(SpinParams) [32, 1] => smoke::spin;

    /// TMA round trip of 2-D boxes.
    SelftestTma2d: fa3_selftest_tma_2d(TmaRoundTripParams) [128, 1] => tma_round_trip::round_trip::<2>;
    /// TMA round trip of 4-D boxes.
    SelftestTma4d: fa3_selftest_tma_4d(TmaRoundTripParams) [128, 1] => tma_round_trip::round_trip::<4>;
    /// Bulk copy, bulk reduce-add and 16-byte reductions into shared sums.
    SelftestBulkAdd: fa3_selftest_bulk_add(BulkAddParams) [128, 1] => bulk_add::run;

    /// wgmma GEMM self-tests: SS/RS, element, B major, N.
    SelftestGemmSsBf16KN64: fa3_selftest_gemm_ss_bf16_k_n64(GemmParams) [128, 1] => gemm::run::<Bf16, KMajor, BK<Bf16, 64>, 64, 32, false>;
    SelftestGemmSsBf16KN80: fa3_selftest_gemm_ss_bf16_k_n80(GemmParams) [128, 1] => gemm::run::<Bf16, KMajor, BK<Bf16, 80>, 80, 40, false>;
    SelftestGemmSsBf16KN176: fa3_selftest_gemm_ss_bf16_k_n176(GemmParams) [128, 1] => gemm::run::<Bf16, KMajor, BK<Bf16, 176>, 176, 88, false>;
    SelftestGemmSsBf16KN256: fa3_selftest_gemm_ss_bf16_k_n256(GemmParams) [128, 1] => gemm::run::<Bf16, KMajor, BK<Bf16, 256>, 256, 128, false>;
    SelftestGemmSsBf16MnN64: fa3_selftest_gemm_ss_bf16_mn_n64(GemmParams) [128, 1] => gemm::run::<Bf16, MnMajor, BMn<Bf16, 64>, 64, 32, false>;
    SelftestGemmSsBf16MnN128: fa3_selftest_gemm_ss_bf16_mn_n128(GemmParams) [128, 1] => gemm::run::<Bf16, MnMajor, BMn<Bf16, 128>, 128, 64, false>;
    SelftestGemmSsBf16MnN256: fa3_selftest_gemm_ss_bf16_mn_n256(GemmParams) [128, 1] => gemm::run::<Bf16, MnMajor, BMn<Bf16, 256>, 256, 128, false>;
    SelftestGemmSsF16KN128: fa3_selftest_gemm_ss_f16_k_n128(GemmParams) [128, 1] => gemm::run::<F16, KMajor, BK<F16, 128>, 128, 64, false>;
    SelftestGemmRsBf16KN64: fa3_selftest_gemm_rs_bf16_k_n64(GemmParams) [128, 1] => gemm::run::<Bf16, KMajor, BK<Bf16, 64>, 64, 32, true>;
    SelftestGemmRsBf16MnN128: fa3_selftest_gemm_rs_bf16_mn_n128(GemmParams) [128, 1] => gemm::run::<Bf16, MnMajor, BMn<Bf16, 128>, 128, 64, true>;
    SelftestGemmRsBf16MnN256: fa3_selftest_gemm_rs_bf16_mn_n256(GemmParams) [128, 1] => gemm::run::<Bf16, MnMajor, BMn<Bf16, 256>, 256, 128, true>;
    SelftestGemmSsE4m3N64: fa3_selftest_gemm_ss_e4m3_n64(GemmParams) [128, 1] => gemm::run::<E4m3, KMajor, BK<E4m3, 64>, 64, 32, false>;
    SelftestGemmSsE4m3N256: fa3_selftest_gemm_ss_e4m3_n256(GemmParams) [128, 1] => gemm::run::<E4m3, KMajor, BK<E4m3, 256>, 256, 128, false>;
    SelftestGemmRsE4m3N128: fa3_selftest_gemm_rs_e4m3_n128(GemmParams) [128, 1] => gemm::run::<E4m3, KMajor, BK<E4m3, 128>, 128, 64, true>;
    SelftestGemmRsE4m3N256: fa3_selftest_gemm_rs_e4m3_n256(GemmParams) [128, 1] => gemm::run::<E4m3, KMajor, BK<E4m3, 256>, 256, 128, true>;

    /// S = Q·Kᵀ, row max/sum, P = bf16(S) in registers, O = P·V.
    SelftestChain: fa3_selftest_chain(ChainParams) [128, 1] => chain::run;
    /// The FP8 chain: P = e4m3(S) from registers, V transposed with its
    /// keys in the packing's order.
    SelftestChainE4m3: fa3_selftest_chain_e4m3(ChainE4m3Params) [128, 1] => chain_e4m3::run;

    /// Producer + two pingpong consumers over a 2-stage ring.
    SelftestPingpong2: fa3_selftest_pingpong_2(PingpongParams) [384, 1] => pingpong::run::<2>;
    /// Producer + two pingpong consumers over a 3-stage ring.
    SelftestPingpong3: fa3_selftest_pingpong_3(PingpongParams) [384, 1] => pingpong::run::<3>;
}
