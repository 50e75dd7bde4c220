//! The exact attention every kernel is tested against, and the
//! same-precision naive implementation FA3's accuracy rule measures
//! kernels by.
//!
//! [`forward`] and [`backward`] compute attention exactly (two-pass
//! softmax, every operation in the accumulation [`Precision`]: `f32` like
//! the kernels, or `f64`), with every option of [`AttentionOptions`]: GQA,
//! causal and window masks (bottom-right aligned, also when `seqlen_q !=
//! seqlen_k`), soft-capping, variable length. Inputs are converted to the
//! accumulation type; results are returned in `f64` (in `F32` precision,
//! the `f32` values widened) and are not rounded to the element type.
//! Fully masked query rows give `out = 0` and `lse = -inf`, and no
//! gradient, never NaN. The work is spread over rayon's threads by output
//! row, each row summed in a fixed order: results do not depend on the
//! thread count.
//!
//! [`naive_forward`] and [`naive_backward`] compute like PyTorch on `bf16`
//! / `f16` tensors (see [`naive_forward`] for exactly what is rounded).
//! FA3's rule: a kernel's error against the `f32` reference must be at most
//! twice (three times with soft-capping) the naive implementation's, plus
//! the `f32` noise.
//!
//! Inputs are host [`Tensor`] views, validated exactly like the
//! [`Device`](crate::Device) entry points'. Results are row-major: `out`
//! `(batch, seqlen_q, heads_q, head_dim_v)`, `lse` `(batch, heads_q,
//! seqlen_q)`, gradients like `q`, `k`, `v`; for variable length `out`
//! `(total_q, heads_q, head_dim_v)` and `lse` `(heads_q, total_q)`.
//!
//! ```
//! use fa3::reference::{self, Precision};
//! use fa3::{AttentionOptions, Qkv, Tensor};
//! # fn main() -> fa3::Result<()> {
//! // f64 inputs work too (finite differences need them).
//! let x: Vec<f64> = (0..2 * 8 * 8).map(|i| (i as f64 * 0.37).sin()).collect();
//! let t = Tensor::host(&x, [1, 8, 2, 8]);
//! let fwd = reference::forward(Qkv { q: t, k: t, v: t }, &AttentionOptions::new().causal(true), Precision::F64)?;
//! // The first query sees only the first key: out = v, lse = its score.
//! assert_eq!(&fwd.out[..8], &x[..8]);
//! # Ok(())
//! # }
//! ```

pub(crate) mod accum;
pub(crate) mod backward;
pub(crate) mod forward;
pub(crate) mod mask;
pub(crate) mod naive_lowp;
pub(crate) mod problem;
pub(crate) mod scores;
pub(crate) mod seqlen;

use crate::attention::{
    AttentionElement, Checked, CheckedForward, FixedDims, Fp8Scales, LseLayout, Operand,
    PackedDims, Qkv, Real, Target, Tensor, Varlen, forward_rows, lse_to_api, packed_qkv, read,
    reserve, row_factors, validate_descale, validate_forward, validate_reference_backward,
    varlen_seqlens,
};
use crate::error::Result;
use accum::Acc;
use float8::F8E4M3;
use half::bf16;
use naive_lowp::Arithmetic;
pub use naive_lowp::fp8_mma_dot;

pub use crate::attention::{AttentionOptions, Precision};

/// Reference forward results.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    /// The attention output, row-major like the API's `out`.
    pub out: Vec<f64>,
    /// Natural-log log-sum-exp of the scores, row-major like the API's `lse`.
    pub lse: Vec<f64>,
}

/// Reference backward results: the forward it recomputed and the gradients.
#[derive(Debug, Clone, PartialEq)]
pub struct Backward {
    /// The attention output.
    pub out: Vec<f64>,
    /// The log-sum-exp.
    pub lse: Vec<f64>,
    /// Gradient with respect to `q`, row-major like `q`.
    pub dq: Vec<f64>,
    /// Gradient with respect to `k`, row-major like `k`.
    pub dk: Vec<f64>,
    /// Gradient with respect to `v`, row-major like `v`.
    pub dv: Vec<f64>,
}

/// Naive same-precision forward results.
#[derive(Debug, Clone, PartialEq)]
pub struct NaiveForward<T> {
    /// The output, rounded to `T` like every intermediate.
    pub out: Vec<T>,
    /// The log-sum-exp of the `f32` softmax over the rounded scores.
    pub lse: Vec<f32>,
}

/// Naive same-precision gradients.
#[derive(Debug, Clone, PartialEq)]
pub struct NaiveBackward<T> {
    /// Gradient with respect to `q`.
    pub dq: Vec<T>,
    /// Gradient with respect to `k`.
    pub dk: Vec<T>,
    /// Gradient with respect to `v`.
    pub dv: Vec<T>,
}

fn widen<A: Acc>(values: Vec<A>) -> Vec<f64> {
    values.into_iter().map(A::to_f64).collect()
}

fn forward_in<A: Acc, T: Real, const R: usize>(
    checked: &CheckedForward<R>,
    qkv: &Qkv<'_, T, R>,
    descale: Option<Fp8Scales<'_>>,
    layout: LseLayout,
) -> Result<Forward> {
    let rows = forward_rows::<T, A, R>(checked, qkv, descale)?;
    Ok(Forward {
        lse: widen(lse_to_api(&checked.problem, layout, &rows.lse)),
        out: widen(rows.out),
    })
}

fn forward_any<T: Real, const R: usize>(
    checked: &CheckedForward<R>,
    qkv: &Qkv<'_, T, R>,
    descale: Option<Fp8Scales<'_>>,
    layout: LseLayout,
    precision: Precision,
) -> Result<Forward> {
    match precision {
        Precision::F32 => forward_in::<f32, T, R>(checked, qkv, descale, layout),
        Precision::F64 => forward_in::<f64, T, R>(checked, qkv, descale, layout),
    }
}

/// The exact forward of fixed-length `q`, `k`, `v` (any [`Real`] element
/// type, host memory).
pub fn forward<T: Real>(
    qkv: Qkv<'_, T, 4>,
    options: &AttentionOptions,
    precision: Precision,
) -> Result<Forward> {
    let (checked, _) =
        validate_forward::<FixedDims, T, T, 4, 3>(Target::Cpu, &qkv, None, options, |d| {
            Ok(d.seqlens())
        })?;
    forward_any(&checked, &qkv, None, LseLayout::BatchHeadSeq, precision)
}

/// The exact forward of packed variable-length `q`, `k`, `v`.
pub fn forward_varlen<T: Real>(
    qkv: Qkv<'_, T, 3>,
    varlen: &Varlen<'_>,
    options: &AttentionOptions,
    precision: Precision,
) -> Result<Forward> {
    let (checked, _) =
        validate_forward::<PackedDims, T, T, 3, 2>(Target::Cpu, &qkv, None, options, |d| {
            varlen_seqlens(varlen, d)
        })?;
    forward_any(&checked, &qkv, None, LseLayout::HeadToken, precision)
}

/// FP8 inputs and their factors validated for the CPU.
fn checked_fp8<'d>(
    qkv: &Qkv<'_, F8E4M3, 4>,
    descale: Fp8Scales<'d>,
    options: &AttentionOptions,
) -> Result<(CheckedForward<4>, Fp8Scales<'d>)> {
    let (checked, _) = validate_forward::<FixedDims, F8E4M3, F8E4M3, 4, 3>(
        Target::Cpu,
        qkv,
        None,
        options,
        |d| Ok(d.seqlens()),
    )?;
    validate_descale(descale, &checked.problem)?;
    Ok((checked, descale))
}

/// The exact forward of FP8 `q`, `k`, `v`: each value dequantized exactly
/// (`x · descale` of its (batch, kv head), or of its block) before the
/// attention.
pub fn forward_fp8<'d>(
    qkv: Qkv<'_, F8E4M3, 4>,
    descale: impl Into<Fp8Scales<'d>>,
    options: &AttentionOptions,
    precision: Precision,
) -> Result<Forward> {
    let (checked, descale) = checked_fp8(&qkv, descale.into(), options)?;
    forward_any(
        &checked,
        &qkv,
        Some(descale),
        LseLayout::BatchHeadSeq,
        precision,
    )
}

/// The same-precision baseline of the FP8 forward: attention as a naive
/// implementation on FP8 tensor cores computes it. S is an e4m3 GEMM of the
/// raw `q`, `k` with Hopper's accumulation (every product exact, each k32
/// step's addends aligned to the largest and kept to 13 fraction bits,
/// truncated: [`fp8_mma_dot`]), times its scales and rounded to `bf16`;
/// the softmax is [`naive_forward`]'s `bf16` one, with `exp(S - max)` times
/// 2^8 rounded to e4m3 as FA3's FP8 kernel rounds it; P·V is an e4m3 GEMM
/// of that P and the raw `v` on the same tensor cores, one per run of keys
/// sharing V's factor, times that factor, and O is divided by `2^8 ·` the
/// unrounded sum (FA3's FP8 baseline, `attention_ref(...,
/// intermediate_dtype=float8_e4m3fn)`, with P scaled as the kernel scales
/// it and both GEMMs taken as the tensor cores compute them).
pub fn naive_forward_fp8<'d>(
    qkv: Qkv<'_, F8E4M3, 4>,
    descale: impl Into<Fp8Scales<'d>>,
    options: &AttentionOptions,
) -> Result<NaiveForward<bf16>> {
    let (checked, descale) = checked_fp8(&qkv, descale.into(), options)?;
    let p = &checked.problem;
    reserve::<(f32, bf16)>(p, false)?;
    // q, k and v raw: their factors go with S and with P·V.
    let [q, k, v] = packed_qkv::<F8E4M3, f32, 4>(&checked, &qkv, None)?;
    let (q_factor, k_factor, v_factor) = (
        row_factors(p, descale, Operand::Q),
        row_factors(p, descale, Operand::K),
        row_factors(p, descale, Operand::V),
    );
    let rows = naive_lowp::forward::<bf16>(
        p,
        (&q, &k, &v),
        Arithmetic::Fp8 {
            q_factor: &q_factor,
            k_factor: &k_factor,
            v_factor: &v_factor,
        },
    );
    Ok(NaiveForward {
        lse: lse_to_api(p, LseLayout::BatchHeadSeq, &rows.lse),
        out: rows.out,
    })
}

fn backward_in<A: Acc, T: Real, const R: usize>(
    checked: &CheckedForward<R>,
    qkv: &Qkv<'_, T, R>,
    dout: (&Tensor<'_, T, R>, &Checked<R>),
    layout: LseLayout,
) -> Result<Backward> {
    let p = &checked.problem;
    reserve::<A>(p, true)?;
    let [q, k, v] = packed_qkv::<T, A, R>(checked, qkv, None)?;
    let dout: Vec<A> = read("dout", dout.0, dout.1)?;
    let fwd = forward::forward(p, &q, &k, &v);
    let grads = backward::backward(
        p,
        &backward::BackwardInputs {
            q: &q,
            k: &k,
            v: &v,
            out: &fwd.out,
            lse: &fwd.lse,
            dout: &dout,
        },
    );
    Ok(Backward {
        lse: widen(lse_to_api(p, layout, &fwd.lse)),
        out: widen(fwd.out),
        dq: widen(grads.dq),
        dk: widen(grads.dk),
        dv: widen(grads.dv),
    })
}

fn backward_any<T: Real, const R: usize>(
    checked: &CheckedForward<R>,
    qkv: &Qkv<'_, T, R>,
    dout: (&Tensor<'_, T, R>, &Checked<R>),
    layout: LseLayout,
    precision: Precision,
) -> Result<Backward> {
    match precision {
        Precision::F32 => backward_in::<f32, T, R>(checked, qkv, dout, layout),
        Precision::F64 => backward_in::<f64, T, R>(checked, qkv, dout, layout),
    }
}

/// The exact gradients of `sum(out ⊙ dout)` with respect to fixed-length
/// `q`, `k`, `v` (the forward is recomputed in the same precision).
///
/// ```
/// use fa3::reference::{self, Precision};
/// use fa3::{AttentionOptions, Qkv, Tensor};
/// # fn main() -> fa3::Result<()> {
/// let x: Vec<f64> = (0..3 * 8).map(|i| (i as f64).cos()).collect();
/// let t = Tensor::host(&x, [1, 3, 1, 8]);
/// let ones = vec![1.0; 3 * 8];
/// let grads = reference::backward(Qkv { q: t, k: t, v: t }, Tensor::host(&ones, [1, 3, 1, 8]), &AttentionOptions::new(), Precision::F64)?;
/// // With dout = 1, each key's dv is its total probability; they sum to
/// // the number of queries.
/// let total: f64 = grads.dv.iter().step_by(8).sum();
/// assert!((total - 3.0).abs() < 1e-12);
/// # Ok(())
/// # }
/// ```
pub fn backward<T: Real>(
    qkv: Qkv<'_, T, 4>,
    dout: Tensor<'_, T, 4>,
    options: &AttentionOptions,
    precision: Precision,
) -> Result<Backward> {
    let (checked, cdout) =
        validate_reference_backward::<FixedDims, T, 4>(&qkv, &dout, options, |d| Ok(d.seqlens()))?;
    backward_any(
        &checked,
        &qkv,
        (&dout, &cdout),
        LseLayout::BatchHeadSeq,
        precision,
    )
}

/// The exact gradients for packed variable-length `q`, `k`, `v`.
pub fn backward_varlen<T: Real>(
    qkv: Qkv<'_, T, 3>,
    dout: Tensor<'_, T, 3>,
    varlen: &Varlen<'_>,
    options: &AttentionOptions,
    precision: Precision,
) -> Result<Backward> {
    let (checked, cdout) =
        validate_reference_backward::<PackedDims, T, 3>(&qkv, &dout, options, |d| {
            varlen_seqlens(varlen, d)
        })?;
    backward_any(
        &checked,
        &qkv,
        (&dout, &cdout),
        LseLayout::HeadToken,
        precision,
    )
}

fn naive_forward_in<T: AttentionElement, const R: usize>(
    checked: &CheckedForward<R>,
    qkv: &Qkv<'_, T, R>,
    layout: LseLayout,
) -> Result<NaiveForward<T>> {
    let p = &checked.problem;
    // f32 working values and their rounded T copies.
    reserve::<(f32, T)>(p, false)?;
    let [q, k, v] = packed_qkv::<T, f32, R>(checked, qkv, None)?;
    let rows = naive_lowp::forward::<T>(p, (&q, &k, &v), Arithmetic::Element);
    Ok(NaiveForward {
        lse: lse_to_api(p, layout, &rows.lse),
        out: rows.out,
    })
}

fn naive_backward_in<T: AttentionElement, const R: usize>(
    checked: &CheckedForward<R>,
    qkv: &Qkv<'_, T, R>,
    dout: (&Tensor<'_, T, R>, &Checked<R>),
) -> Result<NaiveBackward<T>> {
    reserve::<(f32, T)>(&checked.problem, true)?;
    let [q, k, v] = packed_qkv::<T, f32, R>(checked, qkv, None)?;
    let dout: Vec<f32> = read("dout", dout.0, dout.1)?;
    let rows = naive_lowp::backward::<T>(&checked.problem, &q, &k, &v, &dout);
    Ok(NaiveBackward {
        dq: rows.dq,
        dk: rows.dk,
        dv: rows.dv,
    })
}

/// The forward as PyTorch computes it on `T` tensors (FA3's
/// `attention_ref(upcast=False)`).
///
/// Every operation's result is rounded to `T`, products and reductions
/// accumulating in `f32`: `q' = r(q · scale)`, `S = r(q'·k)`; with
/// soft-capping `c`: `S = r(r(tanh(r(S / c))) · c)`; `P = r(softmax(S))`
/// with the softmax in `f32` (`exp(S - max) / sum`); `O = r(P·V)`; `lse =
/// max + ln(sum)` of that softmax, in `f32`. Fully masked rows give `O = 0`
/// and `lse = -inf`.
///
/// ```
/// use fa3::reference::{self, Precision};
/// use fa3::{AttentionOptions, Qkv, Tensor, bf16};
/// # fn main() -> fa3::Result<()> {
/// let x: Vec<bf16> = (0..4 * 8).map(|i| bf16::from_f32((i as f32 * 0.7).sin())).collect();
/// let t = Tensor::host(&x, [1, 4, 1, 8]);
/// let qkv = Qkv { q: t, k: t, v: t };
/// let options = AttentionOptions::new();
/// let naive = reference::naive_forward(qkv, &options)?;
/// let exact = reference::forward(qkv, &options, Precision::F32)?;
/// // Rounding every step costs more than bf16's half an ulp (2^-9)...
/// let err = naive.out.iter().zip(&exact.out).map(|(n, e)| (n.to_f64() - e).abs()).fold(0.0, f64::max);
/// assert!(err > 0.0 && err < 0.05);
/// # Ok(())
/// # }
/// ```
pub fn naive_forward<T: AttentionElement>(
    qkv: Qkv<'_, T, 4>,
    options: &AttentionOptions,
) -> Result<NaiveForward<T>> {
    let (checked, _) =
        validate_forward::<FixedDims, T, T, 4, 3>(Target::Cpu, &qkv, None, options, |d| {
            Ok(d.seqlens())
        })?;
    naive_forward_in(&checked, &qkv, LseLayout::BatchHeadSeq)
}

/// [`naive_forward`] for packed variable-length tensors.
pub fn naive_forward_varlen<T: AttentionElement>(
    qkv: Qkv<'_, T, 3>,
    varlen: &Varlen<'_>,
    options: &AttentionOptions,
) -> Result<NaiveForward<T>> {
    let (checked, _) =
        validate_forward::<PackedDims, T, T, 3, 2>(Target::Cpu, &qkv, None, options, |d| {
            varlen_seqlens(varlen, d)
        })?;
    naive_forward_in(&checked, &qkv, LseLayout::HeadToken)
}

/// The backward as PyTorch's autograd computes it through
/// [`naive_forward`]'s graph on `T` tensors.
///
/// Rounded to `T` (`r`), in `f32` otherwise: `dP = r(dO·Vᵀ)`, `dV = r(Pᵀ·dO)`
/// per query head; `dS = r(P ⊙ (dP - rowsum(P ⊙ dP)))`; with soft-capping
/// `dT = r(dS · c)`, `dA = r(dT · (1 - t²))` (`t` the rounded tanh),
/// `dU = r(dA / c)`, else `dU = dS`; `dQ' = r(dU·K)`, `dq = r(dQ' · scale)`,
/// `dK = r(dUᵀ·Q')` per query head; with GQA `dk = r(Σ dK)` and
/// `dv = r(Σ dV)` over the group's heads (the backward of `repeat`).
pub fn naive_backward<T: AttentionElement>(
    qkv: Qkv<'_, T, 4>,
    dout: Tensor<'_, T, 4>,
    options: &AttentionOptions,
) -> Result<NaiveBackward<T>> {
    let (checked, cdout) =
        validate_reference_backward::<FixedDims, T, 4>(&qkv, &dout, options, |d| Ok(d.seqlens()))?;
    naive_backward_in(&checked, &qkv, (&dout, &cdout))
}

/// [`naive_backward`] for packed variable-length tensors.
pub fn naive_backward_varlen<T: AttentionElement>(
    qkv: Qkv<'_, T, 3>,
    dout: Tensor<'_, T, 3>,
    varlen: &Varlen<'_>,
    options: &AttentionOptions,
) -> Result<NaiveBackward<T>> {
    let (checked, cdout) =
        validate_reference_backward::<PackedDims, T, 3>(&qkv, &dout, options, |d| {
            varlen_seqlens(varlen, d)
        })?;
    naive_backward_in(&checked, &qkv, (&dout, &cdout))
}
