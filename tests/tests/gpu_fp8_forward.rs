//! The FP8 (e4m3) forward on the GPU against the reference on the
//! dequantized inputs, with both scale conventions (FA3's per (batch, kv
//! head) factors and block factors), on the forward's matrix; bitwise
//! repeatable launches.
//!
//! Tolerance: FA3's rule (`fa3_tests::accuracy`) against the `f64`
//! reference on the dequantized inputs, for out and lse, with the naive
//! implementation on FP8 tensor cores as the baseline
//! (`reference::naive_forward_fp8`). Kernel and baseline read the same e4m3
//! inputs and factors, so the inputs' quantization error is in neither.
//! What each adds:
//! - S: both take Q·Kᵀ from the FP8 tensor cores' accumulation
//!   (`reference::fp8_mma_dot`: addends aligned to the largest, 13 fraction
//!   bits, truncated, so biased toward zero). The baseline then rounds S to
//!   bf16 (unbiased, averaging out over a row), the kernel keeps f32.
//!   Truncation is what dominates lse: a baseline with f32 accumulation
//!   (session 8) bounded lse at 2.1e-5 where the kernel was at 2.3e-5
//!   (sq 4224, causal), and at 9.5e-7 where it was at 2.4e-6 (sq 1).
//! - P: both round `exp(S - max) · 2^8` to e4m3 (3 mantissa bits) before
//!   P·V and divide by `2^8 ·` the unrounded sum after it (FA3's kernel
//!   does the same). A baseline rounding the normalized P (FA3's
//!   `attention_ref`) put a near-uniform 512-key row's P into one e4m3
//!   subnormal step, with none of the kernel's per-key rounding noise: the
//!   kernel's `out` was 1.2-1.8x that bound at (2, 256, 512) in three of
//!   five H200 runs; on the CPU the kernel's arithmetic, emulated, was
//!   within 0.9-1.1x of this baseline in eight draws where the old one gave
//!   0.2-3.0x.
//! - P·V: both on the FP8 tensor cores, V raw and its factor applied after
//!   (the baseline per run of keys sharing a factor).
//! - O: both round to bf16.

use fa3::reference::{self, Precision};
use fa3::{
    Device, F8E4M3, ForwardInto, Fp8BlockDescale, Fp8Descale, Fp8Scales, Qkv, Tensor, TensorMut,
    bf16, fp8_block_rows,
};
use fa3_tests::accuracy::{Report, check_floored};
use fa3_tests::matrix::{Case, cases};
use fa3_tests::{random_f32, random_normal, reduced, repeats};

/// e4m3 inputs: normal values times 3 (most of e4m3's exponent range is
/// used, a few values saturate nothing: |3x| < 448).
fn fp8_normal(len: usize) -> Vec<F8E4M3> {
    random_normal(len)
        .into_iter()
        .map(|x| F8E4M3::from_f32(3.0 * x))
        .collect()
}

/// `len` positive factors spread over 2^-3 .. 2^3, so that neighbouring
/// key blocks' factors differ (V's factor is folded into O block by block).
fn factors(len: usize) -> Vec<f32> {
    random_f32(len)
        .into_iter()
        .map(|u| (6.0 * u - 3.0).exp2() / 8.0)
        .collect()
}

/// The two conventions' factors for `case`.
struct Factors {
    per_kv_head: [Vec<f32>; 3],
    per_block: [Vec<f32>; 3],
    rows: (usize, usize),
}

impl Factors {
    fn new(case: &Case) -> Self {
        let rows = fp8_block_rows(case.head_dim).expect("an FP8 kernel for this head dim");
        let kv = case.batch * case.heads_kv;
        let q_blocks = case.batch * case.heads_q * case.seqlen_q.div_ceil(rows.0);
        let k_blocks = kv * case.seqlen_k.div_ceil(rows.1);
        Self {
            per_kv_head: [factors(kv), factors(kv), factors(kv)],
            per_block: [factors(q_blocks), factors(k_blocks), factors(k_blocks)],
            rows,
        }
    }

    /// FA3's factors and the block factors, as `forward_fp8_into` takes them.
    fn descales(&self) -> (Fp8Descale<'_>, Fp8BlockDescale<'_>) {
        let ([q, k, v], [bq, bk, bv]) = (&self.per_kv_head, &self.per_block);
        (
            Fp8Descale { q, k, v },
            Fp8BlockDescale {
                q: bq,
                k: bk,
                v: bv,
                q_rows: self.rows.0,
                k_rows: self.rows.1,
            },
        )
    }
}

/// Runs `case` with both conventions on the GPU with poisoned outputs and
/// checks out and lse; returns the reports.
fn check(device: &Device, case: &Case) -> Vec<Report> {
    let gpu = device.as_gpu().expect("a GPU device");
    let (q_shape, k_shape, lse_shape) = (case.q_shape(), case.k_shape(), case.lse_shape());
    let (q, k, v) = (
        fp8_normal(q_shape.iter().product()),
        fp8_normal(k_shape.iter().product()),
        fp8_normal(k_shape.iter().product()),
    );
    let (dq, dk, dv) = (
        gpu.upload(&q).unwrap(),
        gpu.upload(&k).unwrap(),
        gpu.upload(&v).unwrap(),
    );
    let host_qkv = Qkv {
        q: Tensor::host(&q, q_shape),
        k: Tensor::host(&k, k_shape),
        v: Tensor::host(&v, k_shape),
    };
    let factors = Factors::new(case);
    let (per_kv_head, per_block) = factors.descales();
    let mut reports = Vec::new();
    for (convention, scales) in [
        ("per kv head", Fp8Scales::from(&per_kv_head)),
        ("per block", Fp8Scales::from(&per_block)),
    ] {
        let n_out: usize = q_shape.iter().product();
        let mut out = gpu.upload(&vec![bf16::NAN; n_out]).unwrap();
        let mut lse = gpu
            .upload(&vec![f32::NAN; lse_shape.iter().product()])
            .unwrap();
        let name = format!("{} {convention}", case.label());
        device
            .forward_fp8_into(
                Qkv {
                    q: Tensor::device(&dq, q_shape),
                    k: Tensor::device(&dk, k_shape),
                    v: Tensor::device(&dv, k_shape),
                },
                scales,
                ForwardInto {
                    out: TensorMut::device(&mut out, q_shape),
                    lse: TensorMut::device(&mut lse, lse_shape),
                },
                &case.options,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (out, lse) = (gpu.download(&out).unwrap(), gpu.download(&lse).unwrap());
        let exact =
            reference::forward_fp8(host_qkv, scales, &case.options, Precision::F64).unwrap();
        let naive = reference::naive_forward_fp8(host_qkv, scales, &case.options).unwrap();
        // The naive's S and out are bf16: its rounding floors the naive
        // error of the one-row cases' 12 lse values.
        let bf16_fraction_bits = Some(bf16::MANTISSA_DIGITS as i32 - 1);
        let checked = |r: Result<Report, String>| r.unwrap_or_else(|message| panic!("{message}"));
        reports.push(checked(check_floored(
            &format!("{name} out"),
            &out,
            &exact.out,
            &naive.out,
            false,
            bf16_fraction_bits,
        )));
        reports.push(checked(check_floored(
            &format!("{name} lse"),
            &lse,
            &exact.lse,
            &naive.lse,
            false,
            bf16_fraction_bits,
        )));
    }
    reports
}

/// The matrix for `head_dim` (reduced under the sanitizers); prints each
/// case as it passes (a run cut short by a time limit shows how far it
/// got) and the worst error relative to its bound.
fn matrix(head_dim: usize) {
    let device = Device::gpu(0).expect("a Hopper GPU");
    let mut worst: Option<Report> = None;
    let mut checks = 0;
    for case in cases(head_dim, reduced()) {
        let reports = check(&device, &case);
        println!("passed: {}", case.label());
        for report in reports {
            checks += 1;
            let ratio = |r: &Report| r.error / r.bound();
            if worst.as_ref().is_none_or(|w| ratio(&report) > ratio(w)) {
                worst = Some(report);
            }
        }
    }
    let worst = worst.expect("the matrix has cases");
    println!(
        "hdim {head_dim}: {checks} checks passed; worst error / bound {:.3} ({worst})",
        worst.error / worst.bound()
    );
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn fp8_forward_hdim64_matches_the_reference() {
    matrix(64);
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn fp8_forward_hdim128_matches_the_reference() {
    matrix(128);
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn fp8_forward_hdim256_matches_the_reference() {
    matrix(256);
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn fp8_forward_launches_are_bitwise_repeatable() {
    let device = Device::gpu(0).expect("a Hopper GPU");
    let gpu = device.as_gpu().unwrap();
    let case = Case {
        batch: 2,
        seqlen_q: 1000,
        seqlen_k: 1000,
        heads_q: 6,
        heads_kv: 2,
        head_dim: 128,
        options: fa3::AttentionOptions::new().causal(true),
    };
    let (q_shape, k_shape, lse_shape) = (case.q_shape(), case.k_shape(), case.lse_shape());
    let (q, k, v) = (
        gpu.upload(&fp8_normal(q_shape.iter().product())).unwrap(),
        gpu.upload(&fp8_normal(k_shape.iter().product())).unwrap(),
        gpu.upload(&fp8_normal(k_shape.iter().product())).unwrap(),
    );
    let factors = Factors::new(&case);
    let (per_kv_head, per_block) = factors.descales();
    for (convention, scales) in [
        ("per kv head", Fp8Scales::from(&per_kv_head)),
        ("per block", Fp8Scales::from(&per_block)),
    ] {
        let mut out = gpu.alloc::<bf16>(q_shape.iter().product()).unwrap();
        let mut lse = gpu.alloc::<f32>(lse_shape.iter().product()).unwrap();
        let mut run_once = || {
            device
                .forward_fp8_into(
                    Qkv {
                        q: Tensor::device(&q, q_shape),
                        k: Tensor::device(&k, k_shape),
                        v: Tensor::device(&v, k_shape),
                    },
                    scales,
                    ForwardInto {
                        out: TensorMut::device(&mut out, q_shape),
                        lse: TensorMut::device(&mut lse, lse_shape),
                    },
                    &case.options,
                )
                .unwrap();
            (gpu.download(&out).unwrap(), gpu.download(&lse).unwrap())
        };
        let first = run_once();
        assert!(
            first.0.iter().all(|x| x.is_finite()),
            "{convention}: out finite"
        );
        for run in 1..repeats() {
            let again = run_once();
            let same = again
                .0
                .iter()
                .zip(&first.0)
                .all(|(a, b)| a.to_bits() == b.to_bits())
                && again
                    .1
                    .iter()
                    .zip(&first.1)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{convention}: run {run} differs");
        }
    }
}

/// The FA3 paper's FP8 experiment (`fa3_tests::fp8_accuracy`): block
/// quantization with incoherent processing at most the paper's 9.1e-3 RMSE
/// and within `ABOVE_FLOOR` of the error its quantized inputs alone cause.
/// The third bar, 2.5x below per-tensor FP8, is `fa3-bench
/// --fp8-accuracy`'s to report: on these inputs it is out of reach of any
/// kernel (per tensor sits about 2.0x above the floor; `BELOW_PER_TENSOR`).
#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn fp8_accuracy_is_the_papers_and_at_its_inputs_floor() {
    use fa3_tests::fp8_accuracy::{ABOVE_FLOOR, BAR, Experiment, Method, SHAPE};
    let device = Device::gpu(0).expect("a Hopper GPU");
    let experiment = Experiment::new(device.as_gpu().unwrap(), SHAPE).unwrap();
    let table = experiment.table(&device).unwrap();
    for (method, rmse) in table.rows {
        println!("{:<48} RMSE {rmse:.3e}", method.label());
    }
    let (both, bounds) = (table.both(), table.bounds);
    println!(
        "naive FP8 per tensor (the paper's baseline)      RMSE {:.3e}\n\
         exact attention of the quantized inputs (floor)  RMSE {:.3e}\n\
         per tensor / both: {:.2}x (fa3's kernel), {:.2}x (naive)",
        bounds.naive_per_tensor,
        bounds.floor,
        table.of(Method::PerTensor) / both,
        bounds.naive_per_tensor / both,
    );
    assert!(
        both <= BAR,
        "block + incoherent: RMSE {both:.3e} > {BAR:.1e}"
    );
    assert!(
        both <= ABOVE_FLOOR * bounds.floor,
        "block + incoherent {both:.3e} is more than {ABOVE_FLOOR}x its inputs' floor {:.3e}",
        bounds.floor
    );
}
