//! Validation of a whole call, before anything is read or written: shapes,
//! options, then each tensor's layout and residency in argument order (an
//! output must also not overlap itself), then overlaps between tensors,
//! then the sequences. Every entry point and backend goes through here.

use super::alias::{Region, Regions};
use super::args::{
    BackwardInputs, ForwardInto, Fp8Quantize, Fp8QuantizedInto, Fp8Scales, Fp8Scaling,
    GradientsInto, Qkv,
};
use super::layout::{Checked, Layout};
use super::options::{AttentionOptions, ScoreParams};
use super::residency::{self, Target};
use super::shape::{Axis, Dims, LseShape, axis, expect};
use super::tensor::{Place, Tensor, TensorMut};
use crate::error::{Error, Result};
use crate::reference::problem::Problem;
use crate::reference::seqlen::Seqlens;
use std::mem::size_of;

/// Checks tensors one by one and remembers their regions.
struct Validator<'g, D> {
    target: Target<'g>,
    dims: D,
    regions: Regions,
}

impl<'g> Validator<'g, ()> {
    /// For a call without `q`, `k`, `v` (the tensors set their own shapes).
    fn without_dims(target: Target<'g>) -> Self {
        Self {
            target,
            dims: (),
            regions: Regions::default(),
        }
    }
}

impl<'g, D> Validator<'g, D> {
    /// Reads and checks the dimensions of `q`, `k`, `v`.
    fn new<T, const R: usize>(target: Target<'g>, qkv: &Qkv<'_, T, R>) -> Result<Self>
    where
        D: Dims<R>,
    {
        Ok(Self {
            target,
            dims: D::read(qkv.q.shape(), qkv.k.shape(), qkv.v.shape())?,
            regions: Regions::default(),
        })
    }

    fn layout<const N: usize>(
        &self,
        name: &'static str,
        place: Place,
        layout: &Layout<N>,
        elem_size: usize,
        tma: bool,
    ) -> Result<Checked<N>> {
        let checked = layout.check(name, place.len(), elem_size)?;
        residency::check(self.target, name, place, &checked, elem_size, tma)?;
        Ok(checked)
    }

    /// Checks an input's shape (when given), layout and residency. `tma`:
    /// the GPU path loads it with TMA (alignment rules apply).
    fn input<T, const N: usize>(
        &mut self,
        name: &'static str,
        tensor: &Tensor<'_, T, N>,
        shape: Option<[Axis; N]>,
        tma: bool,
    ) -> Result<Checked<N>> {
        if let Some(shape) = shape {
            expect(name, tensor.shape(), shape)?;
        }
        let place = tensor.place();
        let checked = self.layout(name, place, tensor.layout(), size_of::<T>(), tma)?;
        checked.elements(name)?;
        self.regions
            .input(name, Region::new(place, &checked, size_of::<T>()));
        Ok(checked)
    }

    /// Checks an output's shape, layout and residency.
    fn output<T, const N: usize>(
        &mut self,
        name: &'static str,
        tensor: &TensorMut<'_, T, N>,
        shape: [Axis; N],
        tma: bool,
    ) -> Result<Checked<N>> {
        expect(name, tensor.shape(), shape)?;
        let place = tensor.place();
        let checked = self.layout(name, place, tensor.layout(), size_of::<T>(), tma)?;
        checked.distinct(name)?;
        self.regions
            .output(name, Region::new(place, &checked, size_of::<T>()));
        Ok(checked)
    }

    fn qkv<T, const R: usize>(&mut self, qkv: &Qkv<'_, T, R>) -> Result<[Checked<R>; 3]> {
        Ok([
            self.input("q", &qkv.q, None, true)?,
            self.input("k", &qkv.k, None, true)?,
            self.input("v", &qkv.v, None, true)?,
        ])
    }
}

/// A checked forward: the problem and the layouts of `q`, `k`, `v`.
#[derive(Debug)]
pub(crate) struct CheckedForward<const R: usize> {
    pub problem: Problem,
    pub qkv: [Checked<R>; 3],
}

/// The layouts of a forward's `out` and `lse`.
#[derive(Debug)]
pub(crate) struct CheckedOutputs<const R: usize, const L: usize> {
    pub out: Checked<R>,
    pub lse: Checked<L>,
}

/// Checks a forward; `into` is absent when the outputs are allocated by
/// the entry point. `seqlens` describes the batch once `D` is known.
pub(crate) fn forward<D, T, O, const R: usize, const L: usize>(
    target: Target<'_>,
    qkv: &Qkv<'_, T, R>,
    into: Option<&ForwardInto<'_, O, R, L>>,
    options: &AttentionOptions,
    seqlens: impl FnOnce(&D) -> Result<Seqlens>,
) -> Result<(CheckedForward<R>, Option<CheckedOutputs<R, L>>)>
where
    D: Dims<R> + LseShape<L>,
{
    let mut v = Validator::<D>::new(target, qkv)?;
    let params = options.resolve(v.dims.heads().head_dim)?;
    let checked_qkv = v.qkv(qkv)?;
    let outputs = match into {
        Some(into) => Some(CheckedOutputs {
            out: v.output("out", &into.out, v.dims.out(), true)?,
            lse: v.output("lse", &into.lse, v.dims.lse(), false)?,
        }),
        None => None,
    };
    v.regions.check()?;
    let problem = problem(&v.dims, seqlens(&v.dims)?, params);
    Ok((
        CheckedForward {
            problem,
            qkv: checked_qkv,
        },
        outputs,
    ))
}

/// A checked backward: the problem and the layouts of its tensors.
#[derive(Debug)]
pub(crate) struct CheckedBackward<const R: usize, const L: usize> {
    pub problem: Problem,
    pub qkv: [Checked<R>; 3],
    pub out: Checked<R>,
    pub lse: Checked<L>,
    pub dout: Checked<R>,
    /// `dq`, `dk`, `dv`, when given.
    pub grads: Option<[Checked<R>; 3]>,
}

/// Checks a backward; `into` is absent when the gradients are allocated by
/// the entry point.
pub(crate) fn backward<D, T, const R: usize, const L: usize>(
    target: Target<'_>,
    inputs: &BackwardInputs<'_, T, R, L>,
    into: Option<&GradientsInto<'_, T, R>>,
    options: &AttentionOptions,
    seqlens: impl FnOnce(&D) -> Result<Seqlens>,
) -> Result<CheckedBackward<R, L>>
where
    D: Dims<R> + LseShape<L>,
{
    let qkv = Qkv {
        q: inputs.q,
        k: inputs.k,
        v: inputs.v,
    };
    let mut v = Validator::<D>::new(target, &qkv)?;
    let params = options.resolve(v.dims.heads().head_dim)?;
    let checked_qkv = v.qkv(&qkv)?;
    let out = v.input("out", &inputs.out, Some(v.dims.out()), true)?;
    let lse = v.input("lse", &inputs.lse, Some(v.dims.lse()), false)?;
    let dout = v.input("dout", &inputs.dout, Some(v.dims.out()), true)?;
    let [dq, dk, dv] = v.dims.grads();
    let grads = match into {
        Some(into) => Some([
            v.output("dq", &into.dq, dq, true)?,
            v.output("dk", &into.dk, dk, true)?,
            v.output("dv", &into.dv, dv, true)?,
        ]),
        None => None,
    };
    v.regions.check()?;
    Ok(CheckedBackward {
        problem: problem(&v.dims, seqlens(&v.dims)?, params),
        qkv: checked_qkv,
        out,
        lse,
        dout,
        grads,
    })
}

/// Checks the reference backward's inputs: `q`, `k`, `v` and `dout` (it
/// recomputes `out` and `lse`).
pub(crate) fn reference_backward<D, T, const R: usize>(
    qkv: &Qkv<'_, T, R>,
    dout: &Tensor<'_, T, R>,
    options: &AttentionOptions,
    seqlens: impl FnOnce(&D) -> Result<Seqlens>,
) -> Result<(CheckedForward<R>, Checked<R>)>
where
    D: Dims<R>,
{
    let mut v = Validator::<D>::new(Target::Cpu, qkv)?;
    let params = options.resolve(v.dims.heads().head_dim)?;
    let checked_qkv = v.qkv(qkv)?;
    let dout = v.input("dout", dout, Some(v.dims.out()), false)?;
    Ok((
        CheckedForward {
            problem: problem(&v.dims, seqlens(&v.dims)?, params),
            qkv: checked_qkv,
        },
        dout,
    ))
}

fn problem<const R: usize>(dims: &impl Dims<R>, seqlens: Seqlens, params: ScoreParams) -> Problem {
    let heads = dims.heads();
    Problem {
        seqlens,
        heads_q: heads.q,
        heads_kv: heads.kv,
        head_dim: heads.head_dim,
        head_dim_v: heads.head_dim_v,
        params,
    }
}

/// Checks the FP8 dequantization factors: per (batch, kv head) `batch ·
/// heads_kv` each, per block `batch · heads · blocks` (blocks of at least
/// one row); all finite and positive.
pub(crate) fn descale(scales: Fp8Scales<'_>, problem: &Problem) -> Result<()> {
    let batch = problem.seqlens.batch();
    // Fixed-length problems: every sequence has the first one's lengths.
    let (seqlen_q, seqlen_k) = if batch == 0 {
        (0, 0)
    } else {
        (
            problem.seqlens.q_tokens(0).len(),
            problem.seqlens.k_tokens(0).len(),
        )
    };
    // The lengths each tensor's factors must have, and how to say so.
    let (q, k, v, q_len, kv_len, accepted) = match scales {
        Fp8Scales::PerKvHead(d) => {
            let len = batch.checked_mul(problem.heads_kv);
            let accepted = format!(
                "one per (batch, kv head), batch {batch} × heads_kv {}",
                problem.heads_kv
            );
            (d.q, d.k, d.v, len, len, accepted)
        }
        Fp8Scales::PerBlock(d) => {
            for (argument, rows) in [("descale.q_rows", d.q_rows), ("descale.k_rows", d.k_rows)] {
                if rows == 0 {
                    return Err(Error::InvalidArgument {
                        argument,
                        problem: "0; accepted: blocks of at least one row".into(),
                    });
                }
            }
            // What `quantize_fp8_into` writes for these blocks.
            let len = |heads: usize, seqlen: usize, rows: usize| {
                let [b, h, blocks] =
                    Fp8Scaling::PerBlock { rows }.scales_shape([batch, seqlen, heads, 0]);
                b.checked_mul(h)?.checked_mul(blocks)
            };
            let accepted = format!(
                "one per (batch, head, block): q {batch} × {} × ceil({seqlen_q} / {}), k and v {batch} × {} × ceil({seqlen_k} / {})",
                problem.heads_q, d.q_rows, problem.heads_kv, d.k_rows
            );
            (
                d.q,
                d.k,
                d.v,
                len(problem.heads_q, seqlen_q, d.q_rows),
                len(problem.heads_kv, seqlen_k, d.k_rows),
                accepted,
            )
        }
    };
    for (argument, factors, expected) in [
        ("descale_q", q, q_len),
        ("descale_k", k, kv_len),
        ("descale_v", v, kv_len),
    ] {
        if Some(factors.len()) != expected {
            return Err(Error::InvalidArgument {
                argument,
                problem: format!("{} factors; accepted: {accepted}", factors.len()),
            });
        }
        if let Some(bad) = factors.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
            return Err(Error::InvalidArgument {
                argument,
                problem: format!("contains {bad}; accepted: finite positive factors"),
            });
        }
    }
    Ok(())
}

/// The layouts of a checked FP8 quantization.
#[derive(Debug)]
pub(crate) struct CheckedQuantize {
    pub x: Checked<4>,
    pub data: Checked<4>,
    pub scales: Checked<3>,
}

/// Checks an FP8 quantization: the options against `x`'s shape, then `x`,
/// `data` (`x`'s shape) and `scales` (`Fp8Scaling::scales_shape`).
pub(crate) fn quantize<T>(
    target: Target<'_>,
    x: &Tensor<'_, T, 4>,
    into: &Fp8QuantizedInto<'_>,
    options: &Fp8Quantize,
) -> Result<CheckedQuantize> {
    let shape = x.shape();
    let [batch, seqlen, heads, head_dim] = shape;
    if options.scaling == (Fp8Scaling::PerBlock { rows: 0 }) {
        return Err(Error::InvalidArgument {
            argument: "options.scaling",
            problem: "PerBlock { rows: 0 }; accepted: blocks of at least one row".into(),
        });
    }
    if options.hadamard_seed.is_some() && !head_dim.is_power_of_two() {
        return Err(Error::InvalidArgument {
            argument: "options.hadamard_seed",
            problem: format!(
                "incoherent processing (a Walsh–Hadamard rotation along head_dim) needs a \
                 power-of-two head_dim; `x` has head_dim {head_dim}"
            ),
        });
    }
    let mut v = Validator::without_dims(target);
    // On a GPU x and data follow the tensor rules of q/k/v and out (16-byte
    // aligned start and strides): the kernel moves 16 and 8 bytes at once.
    let checked_x = v.input("x", x, None, true)?;
    let data_shape = [
        axis("batch", batch, "x"),
        axis("seqlen", seqlen, "x"),
        axis("heads", heads, "x"),
        axis("head_dim", head_dim, "x"),
    ];
    let data = v.output("data", &into.data, data_shape, true)?;
    let [sb, sh, sn] = options.scaling.scales_shape(shape);
    let scales_shape = [
        axis("batch or 1", sb, "options.scaling"),
        axis("heads or 1", sh, "options.scaling"),
        axis("blocks or 1", sn, "options.scaling"),
    ];
    let scales = v.output("scales", &into.scales, scales_shape, false)?;
    v.regions.check()?;
    Ok(CheckedQuantize {
        x: checked_x,
        data,
        scales,
    })
}
