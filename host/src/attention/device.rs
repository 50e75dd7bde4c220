//! [`Device`]: the backend an entry point runs on, and the entry points.

use super::args::{BackwardInputs, ForwardInto, Fp8Descale, GradientsInto, Qkv, Varlen};
use super::cpu::{self, LseLayout};
use super::element::{AttentionElement, Real};
use super::options::AttentionOptions;
use super::owned::{ForwardOutput, Gradients, OwnedTensor, Storage};
use super::residency::Target;
use super::shape::{FixedDims, PackedDims};
use super::validate;
use super::varlen;
use crate::error::{Error, Result};
use crate::gpu::{Element, Gpu};
use crate::reference::seqlen::Seqlens;
use float8::F8E4M3;
use half::bf16;

/// The accumulation precision of the CPU reference backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// `f32`, like the GPU kernels.
    #[default]
    F32,
    /// `f64`, for tests.
    F64,
}

/// Where attention runs: a Hopper GPU, or the CPU reference.
///
/// Both backends take the same arguments and give the same results within
/// precision. The CPU backend needs every tensor in host memory, a GPU
/// backend every tensor in its own memory ([`Error::WrongMemory`]
/// otherwise). Entry points a GPU cannot run yet return
/// [`Error::Unsupported`] after validating everything; none falls back to
/// the CPU silently.
#[derive(Debug)]
pub struct Device {
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Cpu(Precision),
    Gpu(Gpu),
}

impl From<Gpu> for Device {
    fn from(gpu: Gpu) -> Self {
        Self {
            backend: Backend::Gpu(gpu),
        }
    }
}

fn fixed_seqlens(d: &FixedDims) -> Result<Seqlens> {
    Ok(d.seqlens())
}

/// The element count of a row-major tensor of `shape`, or
/// [`Error::Overflow`].
fn elements(tensor: &'static str, shape: &[usize]) -> Result<usize> {
    if shape.contains(&0) {
        // Empty, however large the other dimensions.
        return Ok(0);
    }
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| Error::Overflow {
            tensor,
            problem: format!("{shape:?} has more elements than usize holds"),
        })
}

impl Device {
    /// The CPU reference backend, accumulating in `f32`.
    pub fn cpu() -> Self {
        Self::cpu_with(Precision::F32)
    }

    /// The CPU reference backend with the given accumulation precision.
    pub fn cpu_with(precision: Precision) -> Self {
        Self {
            backend: Backend::Cpu(precision),
        }
    }

    /// GPU `ordinal` (see [`Gpu::new`] for the errors).
    pub fn gpu(ordinal: usize) -> Result<Self> {
        Gpu::new(ordinal).map(Self::from)
    }

    /// The GPU, for a GPU backend (to upload and download buffers).
    pub fn as_gpu(&self) -> Option<&Gpu> {
        match &self.backend {
            Backend::Gpu(gpu) => Some(gpu),
            Backend::Cpu(_) => None,
        }
    }

    /// The accumulation precision, for the CPU backend.
    pub fn precision(&self) -> Option<Precision> {
        match self.backend {
            Backend::Cpu(precision) => Some(precision),
            Backend::Gpu(_) => None,
        }
    }

    fn target(&self) -> Target<'_> {
        match &self.backend {
            Backend::Cpu(_) => Target::Cpu,
            Backend::Gpu(gpu) => Target::Gpu(gpu),
        }
    }

    /// Allocates a zeroed row-major tensor where this device computes.
    fn alloc<T: Real + Element, const R: usize>(
        &self,
        name: &'static str,
        shape: [usize; R],
    ) -> Result<OwnedTensor<T, R>> {
        let len = elements(name, &shape)?;
        let storage = match &self.backend {
            Backend::Cpu(_) => Storage::Host(vec![T::from_f32(0.0); len]),
            Backend::Gpu(gpu) => Storage::Device(gpu.alloc(len)?),
        };
        Ok(OwnedTensor::new(storage, shape))
    }

    /// Attention forward, allocating `out` `(batch, seqlen_q, heads_q,
    /// head_dim_v)` and `lse` `(batch, heads_q, seqlen_q)` where the device
    /// computes (see [`Self::forward_into`]).
    ///
    /// ```
    /// use fa3::{AttentionOptions, Device, Qkv, Tensor, bf16};
    /// # fn main() -> fa3::Result<()> {
    /// let (batch, seqlen, heads, head_dim) = (1, 4, 2, 8);
    /// let x: Vec<bf16> = (0..batch * seqlen * heads * head_dim)
    ///     .map(|i| bf16::from_f32((i % 7) as f32 / 7.0))
    ///     .collect();
    /// let shape = [batch, seqlen, heads, head_dim];
    /// let t = Tensor::host(&x, shape);
    /// let result = Device::cpu().forward(Qkv { q: t, k: t, v: t }, &AttentionOptions::new().causal(true))?;
    /// assert_eq!(result.out.shape(), shape);
    /// assert_eq!(result.lse.shape(), [batch, heads, seqlen]);
    /// // Causal: the first query sees only the first key, so it copies its value.
    /// let out = result.out.as_host().unwrap();
    /// assert_eq!(&out[..head_dim], &x[..head_dim]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn forward<T: AttentionElement>(
        &self,
        qkv: Qkv<'_, T, 4>,
        options: &AttentionOptions,
    ) -> Result<ForwardOutput<T, 4, 3>> {
        let (checked, _) = validate::forward::<FixedDims, T, T, 4, 3>(
            self.target(),
            &qkv,
            None,
            options,
            fixed_seqlens,
        )?;
        if matches!(self.backend, Backend::Gpu(_)) && checked.problem.seqlens.total_q() > 0 {
            return Err(Error::Unsupported {
                feature: "GPU forward for bf16/f16",
            });
        }
        let [batch, seqlen_q, heads_q, _] = qkv.q.shape();
        let mut out = self.alloc("out", [batch, seqlen_q, heads_q, qkv.v.shape()[3]])?;
        let mut lse = self.alloc("lse", [batch, heads_q, seqlen_q])?;
        self.forward_into(
            qkv,
            ForwardInto {
                out: out.view_mut(),
                lse: lse.view_mut(),
            },
            options,
        )?;
        Ok(ForwardOutput { out, lse })
    }

    /// Attention forward into caller buffers: `out` `(batch, seqlen_q,
    /// heads_q, head_dim_v)` and `lse` `(batch, heads_q, seqlen_q)`, any
    /// strides with a contiguous innermost dimension.
    ///
    /// Everything is validated before anything is written: on an error the
    /// outputs are untouched. With `batch` or `seqlen_q` 0 there is nothing
    /// to write and nothing runs. Query rows that see no key get `out = 0`
    /// and `lse = -inf`.
    ///
    /// ```
    /// use fa3::{AttentionOptions, Device, ForwardInto, Qkv, Tensor, TensorMut, bf16};
    /// # fn main() -> fa3::Result<()> {
    /// // GQA: 4 query heads share 2 kv heads; seqlen_q 3 < seqlen_k 5.
    /// let q = vec![bf16::from_f32(0.5); 3 * 4 * 16];
    /// let kv = vec![bf16::from_f32(0.25); 5 * 2 * 16];
    /// let mut out = vec![bf16::ZERO; 3 * 4 * 16];
    /// let mut lse = vec![0.0f32; 4 * 3];
    /// Device::cpu().forward_into(
    ///     Qkv {
    ///         q: Tensor::host(&q, [1, 3, 4, 16]),
    ///         k: Tensor::host(&kv, [1, 5, 2, 16]),
    ///         v: Tensor::host(&kv, [1, 5, 2, 16]),
    ///     },
    ///     ForwardInto {
    ///         out: TensorMut::host(&mut out, [1, 3, 4, 16]),
    ///         lse: TensorMut::host(&mut lse, [1, 4, 3]),
    ///     },
    ///     &AttentionOptions::new().window(Some(1), Some(0)),
    /// )?;
    /// // Every value is 0.25, so every output is 0.25.
    /// assert!(out.iter().all(|&o| o == bf16::from_f32(0.25)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn forward_into<T: AttentionElement>(
        &self,
        qkv: Qkv<'_, T, 4>,
        into: ForwardInto<'_, T, 4, 3>,
        options: &AttentionOptions,
    ) -> Result<()> {
        let (checked, outputs) = validate::forward::<FixedDims, T, T, 4, 3>(
            self.target(),
            &qkv,
            Some(&into),
            options,
            fixed_seqlens,
        )?;
        let Some(outputs) = outputs.filter(|_| checked.problem.seqlens.total_q() > 0) else {
            return Ok(());
        };
        let layout = LseLayout::BatchHeadSeq;
        match self.backend {
            Backend::Cpu(Precision::F32) => {
                cpu::forward_into::<f32, _, _, 4, 3>(&checked, &qkv, None, into, &outputs, layout)
            }
            Backend::Cpu(Precision::F64) => {
                cpu::forward_into::<f64, _, _, 4, 3>(&checked, &qkv, None, into, &outputs, layout)
            }
            Backend::Gpu(_) => Err(Error::Unsupported {
                feature: "GPU forward for bf16/f16",
            }),
        }
    }

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
        let checked = validate::backward::<FixedDims, T, 4, 3>(
            self.target(),
            &inputs,
            None,
            options,
            fixed_seqlens,
        )?;
        let seqlens = &checked.problem.seqlens;
        if matches!(self.backend, Backend::Gpu(_)) && seqlens.total_q() + seqlens.total_k() > 0 {
            return Err(Error::Unsupported {
                feature: "GPU backward",
            });
        }
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
            "GPU backward",
        )
    }

    fn run_backward<T: AttentionElement, const R: usize, const L: usize>(
        &self,
        checked: validate::CheckedBackward<R, L>,
        inputs: &BackwardInputs<'_, T, R, L>,
        into: GradientsInto<'_, T, R>,
        layout: LseLayout,
        gpu_feature: &'static str,
    ) -> Result<()> {
        let seqlens = &checked.problem.seqlens;
        let Some(grads) = checked
            .grads
            .filter(|_| seqlens.total_q() + seqlens.total_k() > 0)
        else {
            return Ok(());
        };
        match self.backend {
            Backend::Cpu(Precision::F32) => {
                cpu::backward_into::<f32, T, R, L>(&checked, inputs, into, &grads, layout)
            }
            Backend::Cpu(Precision::F64) => {
                cpu::backward_into::<f64, T, R, L>(&checked, inputs, into, &grads, layout)
            }
            Backend::Gpu(_) => Err(Error::Unsupported {
                feature: gpu_feature,
            }),
        }
    }

    /// Variable-length forward (FA3's `flash_attn_varlen_func`): packed `q`
    /// `(total_q, heads_q, head_dim)`, `k`/`v` `(total_k, heads_kv, ·)`,
    /// `out` `(total_q, heads_q, head_dim_v)` and `lse` `(heads_q,
    /// total_q)`; sequence `b` is `varlen.cu_seqlens_q[b]..[b + 1]` of the
    /// queries and likewise of the keys. Causal and window masks align each
    /// sequence to its own bottom-right corner.
    ///
    /// ```
    /// use fa3::{AttentionOptions, Device, ForwardInto, Qkv, Tensor, TensorMut, Varlen, bf16};
    /// # fn main() -> fa3::Result<()> {
    /// // Two sequences: 2 and 3 queries, 4 and 1 keys.
    /// let cu_q = [0, 2, 5];
    /// let cu_k = [0, 4, 5];
    /// let q = vec![bf16::from_f32(0.1); 5 * 2 * 8];
    /// let kv = vec![bf16::from_f32(-0.5); 5 * 2 * 8];
    /// let mut out = vec![bf16::ZERO; 5 * 2 * 8];
    /// let mut lse = vec![0.0f32; 2 * 5];
    /// Device::cpu().forward_varlen_into(
    ///     Qkv {
    ///         q: Tensor::host(&q, [5, 2, 8]),
    ///         k: Tensor::host(&kv, [5, 2, 8]),
    ///         v: Tensor::host(&kv, [5, 2, 8]),
    ///     },
    ///     &Varlen { cu_seqlens_q: &cu_q, cu_seqlens_k: &cu_k, max_seqlen_q: 3, max_seqlen_k: 4 },
    ///     ForwardInto {
    ///         out: TensorMut::host(&mut out, [5, 2, 8]),
    ///         lse: TensorMut::host(&mut lse, [2, 5]),
    ///     },
    ///     &AttentionOptions::new().causal(true),
    /// )?;
    /// // Sequence 1 has 3 queries but 1 key: causal (bottom-right) hides it
    /// // from its first two queries, whose rows are fully masked.
    /// // lse is (heads, total_q): head 0 of tokens 2 and 3.
    /// assert_eq!(lse[2], f32::NEG_INFINITY);
    /// assert_eq!(lse[3], f32::NEG_INFINITY);
    /// assert!(lse[4].is_finite());
    /// // out is (total_q, heads, head_dim): token 2 is zero, token 4 sees the key.
    /// assert_eq!(out[2 * 2 * 8].to_f32(), 0.0);
    /// assert_eq!(out[4 * 2 * 8].to_f32(), -0.5);
    /// # Ok(())
    /// # }
    /// ```
    pub fn forward_varlen_into<T: AttentionElement>(
        &self,
        qkv: Qkv<'_, T, 3>,
        varlen: &Varlen<'_>,
        into: ForwardInto<'_, T, 3, 2>,
        options: &AttentionOptions,
    ) -> Result<()> {
        let (checked, outputs) = validate::forward::<PackedDims, T, T, 3, 2>(
            self.target(),
            &qkv,
            Some(&into),
            options,
            |d| varlen::seqlens(varlen, d),
        )?;
        let Some(outputs) = outputs.filter(|_| checked.problem.seqlens.total_q() > 0) else {
            return Ok(());
        };
        let layout = LseLayout::HeadToken;
        match self.backend {
            Backend::Cpu(Precision::F32) => {
                cpu::forward_into::<f32, _, _, 3, 2>(&checked, &qkv, None, into, &outputs, layout)
            }
            Backend::Cpu(Precision::F64) => {
                cpu::forward_into::<f64, _, _, 3, 2>(&checked, &qkv, None, into, &outputs, layout)
            }
            Backend::Gpu(_) => Err(Error::Unsupported {
                feature: "GPU varlen forward",
            }),
        }
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
            "GPU varlen backward",
        )
    }

    /// FP8 (e4m3) forward: `q`, `k`, `v` in [`F8E4M3`], `out` in `bf16`,
    /// shapes as in [`Self::forward_into`]. Each (batch, kv head) has its
    /// dequantization factors ([`Fp8Descale`]).
    ///
    /// ```
    /// use fa3::{AttentionOptions, Device, F8E4M3, Fp8Descale, ForwardInto, Qkv, Tensor, TensorMut, bf16};
    /// # fn main() -> fa3::Result<()> {
    /// let shape = [1, 2, 1, 8];
    /// let x = vec![F8E4M3::from_f32(1.5); 16];
    /// let (mut out, mut lse) = (vec![bf16::ZERO; 16], vec![0.0f32; 2]);
    /// let t = Tensor::host(&x, shape);
    /// Device::cpu().forward_fp8_into(
    ///     Qkv { q: t, k: t, v: t },
    ///     &Fp8Descale { q: &[1.0], k: &[1.0], v: &[0.5] },
    ///     ForwardInto { out: TensorMut::host(&mut out, shape), lse: TensorMut::host(&mut lse, [1, 1, 2]) },
    ///     &AttentionOptions::new(),
    /// )?;
    /// // Equal values: out = descale_v · v = 0.75.
    /// assert!(out.iter().all(|o| o.to_f32() == 0.75));
    /// # Ok(())
    /// # }
    /// ```
    pub fn forward_fp8_into(
        &self,
        qkv: Qkv<'_, F8E4M3, 4>,
        descale: &Fp8Descale<'_>,
        into: ForwardInto<'_, bf16, 4, 3>,
        options: &AttentionOptions,
    ) -> Result<()> {
        let (checked, outputs) = validate::forward::<FixedDims, F8E4M3, bf16, 4, 3>(
            self.target(),
            &qkv,
            Some(&into),
            options,
            fixed_seqlens,
        )?;
        validate::descale(descale, &checked.problem)?;
        let Some(outputs) = outputs.filter(|_| checked.problem.seqlens.total_q() > 0) else {
            return Ok(());
        };
        let (descale, layout) = (Some(descale), LseLayout::BatchHeadSeq);
        match self.backend {
            Backend::Cpu(Precision::F32) => cpu::forward_into::<f32, _, _, 4, 3>(
                &checked, &qkv, descale, into, &outputs, layout,
            ),
            Backend::Cpu(Precision::F64) => cpu::forward_into::<f64, _, _, 4, 3>(
                &checked, &qkv, descale, into, &outputs, layout,
            ),
            Backend::Gpu(_) => Err(Error::Unsupported {
                feature: "GPU FP8 forward",
            }),
        }
    }
}
