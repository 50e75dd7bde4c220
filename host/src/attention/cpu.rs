//! The CPU reference backend: copies the checked views into packed vectors,
//! runs the reference, and writes the results back into the views.

use super::args::{BackwardInputs, ForwardInto, Fp8Scales, Fp8Scaling, GradientsInto, Qkv};
use super::device::Precision;
use super::element::Real;
use super::layout::Checked;
use super::strided::{gather, scatter};
use super::tensor::{Tensor, TensorMut};
use super::validate::{CheckedBackward, CheckedForward, CheckedOutputs};
use crate::error::{Error, Result};
use crate::reference::accum::Acc;
use crate::reference::backward::{self, GradientRows};
use crate::reference::forward::{self, ForwardRows};
use crate::reference::problem::Problem;

/// How the API lays out `lse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LseLayout {
    /// `(batch, heads_q, seqlen_q)`: fixed length.
    BatchHeadSeq,
    /// `(heads_q, total_q)`: variable length.
    HeadToken,
}

/// For each element of the API's `lse`, in order, its packed row
/// `token · heads_q + head`.
pub(crate) fn lse_rows(p: &Problem, layout: LseLayout) -> Vec<usize> {
    let hq = p.heads_q;
    if p.seqlens.total_q() == 0 {
        // Also skips looping over a (possibly huge) batch of empty sequences.
        return Vec::new();
    }
    match layout {
        LseLayout::BatchHeadSeq => (0..p.seqlens.batch())
            .flat_map(|b| {
                let tokens = p.seqlens.q_tokens(b);
                (0..hq).flat_map(move |h| tokens.clone().map(move |t| t * hq + h))
            })
            .collect(),
        LseLayout::HeadToken => (0..hq)
            .flat_map(|h| (0..p.seqlens.total_q()).map(move |t| t * hq + h))
            .collect(),
    }
}

/// Packed `[token, head]` rows in the API's `lse` order.
pub(crate) fn lse_to_api<A: Copy>(p: &Problem, layout: LseLayout, rows: &[A]) -> Vec<A> {
    lse_rows(p, layout).into_iter().map(|r| rows[r]).collect()
}

fn host_only(tensor: &'static str) -> Error {
    Error::WrongMemory {
        tensor,
        expected: "host memory (the CPU reference backend reads and writes host slices)".into(),
        found: "device memory".into(),
    }
}

/// A checked host view's elements, row-major, in precision `A`.
pub(crate) fn read<T: Real, A: Acc, const R: usize>(
    name: &'static str,
    tensor: &Tensor<'_, T, R>,
    checked: &Checked<R>,
) -> Result<Vec<A>> {
    // SAFETY: validation found no output of this call overlapping the
    // tensor's checked layout.
    let data = unsafe { tensor.host_slice(checked) }.ok_or_else(|| host_only(name))?;
    Ok(gather(data, checked))
}

/// Writes row-major `packed` into a checked host view.
pub(crate) fn write<T: Real, A: Acc, const R: usize>(
    name: &'static str,
    tensor: &mut TensorMut<'_, T, R>,
    checked: &Checked<R>,
    packed: &[A],
) -> Result<()> {
    // SAFETY: validation found no other view of this call overlapping the
    // tensor's checked layout.
    let data = unsafe { tensor.host_slice_mut(checked) }.ok_or_else(|| host_only(name))?;
    scatter(packed, data, checked);
    Ok(())
}

/// Errors unless the host memory a CPU computation of `p` in `A` (a
/// backward when `backward`) holds at once can be had now.
pub(crate) fn reserve<A>(p: &Problem, backward: bool) -> Result<()> {
    crate::memory::probe(
        "the CPU computation (packed copies, results)",
        p.host_bytes(size_of::<A>(), backward),
    )
}

/// Packed `q`, `k`, `v` in precision `A`, dequantized when `descale` is given.
pub(crate) fn packed_qkv<T: Real, A: Acc, const R: usize>(
    checked: &CheckedForward<R>,
    qkv: &Qkv<'_, T, R>,
    descale: Option<Fp8Scales<'_>>,
) -> Result<[Vec<A>; 3]> {
    let [cq, ck, cv] = &checked.qkv;
    let mut q = read("q", &qkv.q, cq)?;
    let mut k = read("k", &qkv.k, ck)?;
    let mut v = read("v", &qkv.v, cv)?;
    if let Some(scales) = descale {
        let p = &checked.problem;
        for (operand, values, dim) in [
            (Operand::Q, &mut q, p.head_dim),
            (Operand::K, &mut k, p.head_dim),
            (Operand::V, &mut v, p.head_dim_v),
        ] {
            dequantize(values, dim, &row_factors(p, scales, operand));
        }
    }
    Ok([q, k, v])
}

/// Multiplies each packed row of `dim` values by its factor.
fn dequantize<A: Acc>(values: &mut [A], dim: usize, factors: &[f32]) {
    for (row, &factor) in values.chunks_exact_mut(dim).zip(factors) {
        let factor = A::of(factor);
        row.iter_mut().for_each(|x| *x = *x * factor);
    }
}

/// Which input a dequantization factor belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operand {
    Q,
    K,
    V,
}

/// The dequantization factor of each packed `[token, head]` row of
/// `operand` (fixed-length problems): per (batch, kv head), query head h
/// taking its kv head's (FA3), or per block of positions of one head.
pub(crate) fn row_factors(p: &Problem, scales: Fp8Scales<'_>, operand: Operand) -> Vec<f32> {
    let queries = operand == Operand::Q;
    let (heads, tokens) = if queries {
        (p.heads_q, p.seqlens.total_q())
    } else {
        (p.heads_kv, p.seqlens.total_k())
    };
    (0..tokens * heads)
        .map(|row| {
            let (token, h) = (row / heads, row % heads);
            let (b, pos) = if queries {
                p.seqlens.locate_q(token)
            } else {
                p.seqlens.locate_k(token)
            };
            factor(scales, p, operand, (b, pos, h))
        })
        .collect()
}

/// The factor of `operand` at (batch, position in its sequence, head of
/// its tensor).
fn factor(
    scales: Fp8Scales<'_>,
    p: &Problem,
    operand: Operand,
    (b, pos, h): (usize, usize, usize),
) -> f32 {
    let pick = |q, k, v| match operand {
        Operand::Q => q,
        Operand::K => k,
        Operand::V => v,
    };
    match scales {
        Fp8Scales::PerKvHead(d) => {
            let g = if operand == Operand::Q {
                p.kv_head(h)
            } else {
                h
            };
            pick(d.q, d.k, d.v)[b * p.heads_kv + g]
        }
        Fp8Scales::PerBlock(d) => {
            let (heads, rows, seqlen) = if operand == Operand::Q {
                (p.heads_q, d.q_rows, p.seqlens.q_tokens(b).len())
            } else {
                (p.heads_kv, d.k_rows, p.seqlens.k_tokens(b).len())
            };
            pick(d.q, d.k, d.v)[Fp8Scaling::PerBlock { rows }.group((b, pos, h), heads, seqlen)]
        }
    }
}

/// The reference forward of checked inputs, in precision `A`.
pub(crate) fn forward_rows<T: Real, A: Acc, const R: usize>(
    checked: &CheckedForward<R>,
    qkv: &Qkv<'_, T, R>,
    descale: Option<Fp8Scales<'_>>,
) -> Result<ForwardRows<A>> {
    reserve::<A>(&checked.problem, false)?;
    let [q, k, v] = packed_qkv::<T, A, R>(checked, qkv, descale)?;
    Ok(forward::forward(&checked.problem, &q, &k, &v))
}

/// The forward of checked views in `precision`, written into `into`.
pub(crate) fn forward_into<T: Real, O: Real, const R: usize, const L: usize>(
    precision: Precision,
    checked: &CheckedForward<R>,
    qkv: &Qkv<'_, T, R>,
    descale: Option<Fp8Scales<'_>>,
    into: ForwardInto<'_, O, R, L>,
    outputs: &CheckedOutputs<R, L>,
    lse_layout: LseLayout,
) -> Result<()> {
    match precision {
        Precision::F32 => {
            forward_into_in::<f32, T, O, R, L>(checked, qkv, descale, into, outputs, lse_layout)
        }
        Precision::F64 => {
            forward_into_in::<f64, T, O, R, L>(checked, qkv, descale, into, outputs, lse_layout)
        }
    }
}

fn forward_into_in<A: Acc, T: Real, O: Real, const R: usize, const L: usize>(
    checked: &CheckedForward<R>,
    qkv: &Qkv<'_, T, R>,
    descale: Option<Fp8Scales<'_>>,
    mut into: ForwardInto<'_, O, R, L>,
    outputs: &CheckedOutputs<R, L>,
    lse_layout: LseLayout,
) -> Result<()> {
    let rows = forward_rows::<T, A, R>(checked, qkv, descale)?;
    write("out", &mut into.out, &outputs.out, &rows.out)?;
    let lse = lse_to_api(&checked.problem, lse_layout, &rows.lse);
    write("lse", &mut into.lse, &outputs.lse, &lse)
}

/// The backward of checked views in `precision` (FA3 semantics: `out` and
/// `lse` as given), written into `into`.
pub(crate) fn backward_into<T: Real, const R: usize, const L: usize>(
    precision: Precision,
    checked: &CheckedBackward<R, L>,
    inputs: &BackwardInputs<'_, T, R, L>,
    into: GradientsInto<'_, T, R>,
    grads: &[Checked<R>; 3],
    lse_layout: LseLayout,
) -> Result<()> {
    match precision {
        Precision::F32 => {
            backward_into_in::<f32, T, R, L>(checked, inputs, into, grads, lse_layout)
        }
        Precision::F64 => {
            backward_into_in::<f64, T, R, L>(checked, inputs, into, grads, lse_layout)
        }
    }
}

fn backward_into_in<A: Acc, T: Real, const R: usize, const L: usize>(
    checked: &CheckedBackward<R, L>,
    inputs: &BackwardInputs<'_, T, R, L>,
    mut into: GradientsInto<'_, T, R>,
    grads: &[Checked<R>; 3],
    lse_layout: LseLayout,
) -> Result<()> {
    let p = &checked.problem;
    reserve::<A>(p, true)?;
    let [cq, ck, cv] = &checked.qkv;
    let q: Vec<A> = read("q", &inputs.q, cq)?;
    let k: Vec<A> = read("k", &inputs.k, ck)?;
    let v: Vec<A> = read("v", &inputs.v, cv)?;
    let out: Vec<A> = read("out", &inputs.out, &checked.out)?;
    let dout: Vec<A> = read("dout", &inputs.dout, &checked.dout)?;
    let lse_api: Vec<A> = read("lse", &inputs.lse, &checked.lse)?;
    let mut lse = vec![A::ZERO; p.q_rows()];
    for (row, x) in lse_rows(p, lse_layout).into_iter().zip(lse_api) {
        lse[row] = x;
    }
    let GradientRows { dq, dk, dv } = backward::backward(
        p,
        &backward::BackwardInputs {
            q: &q,
            k: &k,
            v: &v,
            out: &out,
            lse: &lse,
            dout: &dout,
        },
    );
    let [cdq, cdk, cdv] = grads;
    write("dq", &mut into.dq, cdq, &dq)?;
    write("dk", &mut into.dk, cdk, &dk)?;
    write("dv", &mut into.dv, cdv, &dv)
}
