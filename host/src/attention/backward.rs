//! The backward entry points of [`Device`]: fixed and variable length.

use super::args::{BackwardInputs, GradientsInto, Varlen};
use super::cpu::{self, LseLayout};
use super::device::{Backend, Device, fixed_seqlens};
use super::element::AttentionElement;
use super::gpu_backward;
use super::layout::Checked;
use super::options::AttentionOptions;
use super::owned::Gradients;
use super::shape::{FixedDims, PackedDims};
use super::validate;
use super::varlen;
use crate::error::{Error, Result};
use crate::gpu::Gpu;

impl Device {
    /// Attention backward, allocating `dq`, `dk`, `dv` (shaped like `q`,
    /// `k`, `v`) where the device computes (see [`Self::backward_into`]).
    ///
    /// ```
    /// use fa3::{AttentionOptions, BackwardInputs, Device, Qkv, Tensor, bf16};
    /// # fn main() -> fa3::Result<()> {
    /// let shape = [1, 4, 2, 8];
    /// let x: Vec<bf16> = (0..64).map(|i| bf16::from_f32((i % 5) as f32 / 5.0)).collect();
    /// let dout = vec![bf16::ONE; 64];
    /// let (device, options) = (Device::cpu(), AttentionOptions::new().causal(true));
    /// let t = Tensor::host(&x, shape);
    /// let fwd = device.forward(Qkv { q: t, k: t, v: t }, &options)?;
    /// let grads = device.backward(
    ///     BackwardInputs {
    ///         q: t,
    ///         k: t,
    ///         v: t,
    ///         out: fwd.out.view(),
    ///         lse: fwd.lse.view(),
    ///         dout: Tensor::host(&dout, shape),
    ///     },
    ///     &options,
    /// )?;
    /// assert_eq!(grads.dk.shape(), shape);
    /// // The first query sees one key: its probability is 1 whatever q is.
    /// assert!(grads.dq.as_host().unwrap()[..8].iter().all(|g| g.to_f32() == 0.0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn backward<T: AttentionElement>(
        &self,
        inputs: BackwardInputs<'_, T, 4, 3>,
        options: &AttentionOptions,
    ) -> Result<Gradients<T, 4>> {
        // The inputs are checked before anything is allocated.
        validate::backward::<FixedDims, T, 4, 3>(
            self.target(),
            &inputs,
            None,
            options,
            fixed_seqlens,
        )?;
        let mut dq = self.alloc("dq", inputs.q.shape())?;
        let mut dk = self.alloc("dk", inputs.k.shape())?;
        let mut dv = self.alloc("dv", inputs.v.shape())?;
        self.backward_into(
            inputs,
            GradientsInto {
                dq: dq.view_mut(),
                dk: dk.view_mut(),
                dv: dv.view_mut(),
            },
            options,
        )?;
        Ok(Gradients { dq, dk, dv })
    }

    /// Attention backward into caller buffers: `dq`, `dk`, `dv` shaped like
    /// `q`, `k`, `v`, from the forward's `out` and `lse` and the gradient
    /// `dout` of the loss with respect to `out`. GQA sums `dk`/`dv` over
    /// each group's query heads. `options` must be the forward's.
    ///
    /// Everything is validated before anything is written. Keys no query
    /// sees get zero gradients; fully masked query rows (`lse = -inf`)
    /// contribute nothing.
    ///
    /// ```
    /// use fa3::{AttentionOptions, BackwardInputs, Device, ForwardInto, GradientsInto, Qkv, Tensor, TensorMut, f16};
    /// # fn main() -> fa3::Result<()> {
    /// let shape = [2, 3, 1, 8];
    /// let q: Vec<f16> = (0..48).map(|i| f16::from_f32(i as f32 / 48.0)).collect();
    /// let (k, v) = (q.clone(), q.iter().map(|x| -*x).collect::<Vec<_>>());
    /// let (mut out, mut lse) = (vec![f16::ZERO; 48], vec![0.0f32; 6]);
    /// let device = Device::cpu();
    /// let options = AttentionOptions::new().softcap(5.0);
    /// let qkv = Qkv { q: Tensor::host(&q, shape), k: Tensor::host(&k, shape), v: Tensor::host(&v, shape) };
    /// device.forward_into(qkv, ForwardInto { out: TensorMut::host(&mut out, shape), lse: TensorMut::host(&mut lse, [2, 1, 3]) }, &options)?;
    /// let dout = vec![f16::ONE; 48];
    /// let (mut dq, mut dk, mut dv) = (vec![f16::ZERO; 48], vec![f16::ZERO; 48], vec![f16::ZERO; 48]);
    /// device.backward_into(
    ///     BackwardInputs {
    ///         q: qkv.q, k: qkv.k, v: qkv.v,
    ///         out: Tensor::host(&out, shape),
    ///         lse: Tensor::host(&lse, [2, 1, 3]),
    ///         dout: Tensor::host(&dout, shape),
    ///     },
    ///     GradientsInto {
    ///         dq: TensorMut::host(&mut dq, shape),
    ///         dk: TensorMut::host(&mut dk, shape),
    ///         dv: TensorMut::host(&mut dv, shape),
    ///     },
    ///     &options,
    /// )?;
    /// // With dout = 1, dv of each key is the sum of its probabilities:
    /// // over all keys of a sequence they add up to its 3 queries.
    /// let total: f32 = dv[..24].iter().step_by(8).map(|x| x.to_f32()).sum();
    /// assert!((total - 3.0).abs() < 0.01);
    /// # Ok(())
    /// # }
    /// ```
    pub fn backward_into<T: AttentionElement>(
        &self,
        inputs: BackwardInputs<'_, T, 4, 3>,
        into: GradientsInto<'_, T, 4>,
        options: &AttentionOptions,
    ) -> Result<()> {
        let checked = validate::backward::<FixedDims, T, 4, 3>(
            self.target(),
            &inputs,
            Some(&into),
            options,
            fixed_seqlens,
        )?;
        self.run_backward(
            checked,
            &inputs,
            into,
            LseLayout::BatchHeadSeq,
            |gpu, checked, inputs, into, grads| {
                gpu_backward::backward_into(
                    gpu,
                    checked,
                    inputs,
                    into,
                    grads,
                    options.deterministic,
                )
            },
        )
    }

    /// Variable-length backward: packed tensors as in
    /// [`Self::forward_varlen_into`], gradients shaped like packed `q`, `k`,
    /// `v`.
    ///
    /// ```
    /// use fa3::{AttentionOptions, BackwardInputs, Device, GradientsInto, Tensor, TensorMut, Varlen, bf16};
    /// # fn main() -> fa3::Result<()> {
    /// let varlen = Varlen { cu_seqlens_q: &[0, 1, 3], cu_seqlens_k: &[0, 2, 3], max_seqlen_q: 2, max_seqlen_k: 2 };
    /// let x = vec![bf16::from_f32(0.5); 3 * 8];
    /// // Uniform attention over equal values: out = v, lse = ln(#keys) + score.
    /// let out = x.clone();
    /// let score = 0.5f32 * 0.5 * 8.0 / 8f32.sqrt();
    /// let lse = [2f32.ln() + score, score, score];
    /// let dout = vec![bf16::ONE; 3 * 8];
    /// let (mut dq, mut dk, mut dv) = (vec![bf16::ZERO; 24], vec![bf16::ZERO; 24], vec![bf16::ZERO; 24]);
    /// let t = Tensor::host(&x, [3, 1, 8]);
    /// Device::cpu().backward_varlen_into(
    ///     BackwardInputs {
    ///         q: t, k: t, v: t,
    ///         out: Tensor::host(&out, [3, 1, 8]),
    ///         lse: Tensor::host(&lse, [1, 3]),
    ///         dout: Tensor::host(&dout, [3, 1, 8]),
    ///     },
    ///     &varlen,
    ///     GradientsInto {
    ///         dq: TensorMut::host(&mut dq, [3, 1, 8]),
    ///         dk: TensorMut::host(&mut dk, [3, 1, 8]),
    ///         dv: TensorMut::host(&mut dv, [3, 1, 8]),
    ///     },
    ///     &AttentionOptions::new(),
    /// )?;
    /// // dv of a key is the probability mass it gets: 1/2 from sequence 0's
    /// // single query, 1 + 1 from sequence 1's two queries.
    /// assert_eq!(dv[0].to_f32(), 0.5);
    /// assert_eq!(dv[16].to_f32(), 2.0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn backward_varlen_into<T: AttentionElement>(
        &self,
        inputs: BackwardInputs<'_, T, 3, 2>,
        varlen: &Varlen<'_>,
        into: GradientsInto<'_, T, 3>,
        options: &AttentionOptions,
    ) -> Result<()> {
        let checked = validate::backward::<PackedDims, T, 3, 2>(
            self.target(),
            &inputs,
            Some(&into),
            options,
            |d| varlen::seqlens(varlen, d),
        )?;
        self.run_backward(
            checked,
            &inputs,
            into,
            LseLayout::HeadToken,
            |_, _, _, _, _| {
                Err(Error::Unsupported {
                    feature: "GPU varlen backward",
                })
            },
        )
    }

    /// The gradients of a checked backward with at least one token, by the
    /// CPU reference or by `gpu`.
    fn run_backward<T: AttentionElement, const R: usize, const L: usize>(
        &self,
        checked: validate::CheckedBackward<R, L>,
        inputs: &BackwardInputs<'_, T, R, L>,
        into: GradientsInto<'_, T, R>,
        layout: LseLayout,
        gpu: impl FnOnce(
            &Gpu,
            &validate::CheckedBackward<R, L>,
            &BackwardInputs<'_, T, R, L>,
            GradientsInto<'_, T, R>,
            &[Checked<R>; 3],
        ) -> Result<()>,
    ) -> Result<()> {
        let seqlens = &checked.problem.seqlens;
        let Some(grads) = checked
            .grads
            .filter(|_| seqlens.total_q() + seqlens.total_k() > 0)
        else {
            return Ok(());
        };
        match self.backend {
            Backend::Cpu(precision) => {
                cpu::backward_into(precision, &checked, inputs, into, &grads, layout)
            }
            Backend::Gpu(ref device) => gpu(device, &checked, inputs, into, &grads),
        }
    }
}
