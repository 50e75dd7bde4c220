//! The forward entry points of [`Device`]: fixed length, variable length,
//! FP8.

use super::args::{ForwardInto, Fp8Scales, Qkv, Varlen};
use super::cpu::{self, LseLayout};
use super::device::{Backend, Device, fixed_seqlens};
use super::element::AttentionElement;
use super::gpu_forward::{self, Schedule};
use super::options::AttentionOptions;
use super::owned::ForwardOutput;
use super::shape::{FixedDims, PackedDims};
use super::validate;
use super::varlen;
use crate::error::{Error, Result};
use float8::F8E4M3;
use half::bf16;

impl Device {
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
        // Validated before allocating, so a bad call allocates nothing.
        validate::forward::<FixedDims, T, T, 4, 3>(
            self.target(),
            &qkv,
            None,
            options,
            fixed_seqlens,
        )?;
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
        self.forward_into_scheduled(qkv, into, options, Schedule::Full)
    }

    /// [`Self::forward_into`] with the GPU kernel build of `schedule`.
    pub(crate) fn forward_into_scheduled<T: AttentionElement>(
        &self,
        qkv: Qkv<'_, T, 4>,
        into: ForwardInto<'_, T, 4, 3>,
        options: &AttentionOptions,
        schedule: Schedule,
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
            Backend::Cpu(precision) => {
                cpu::forward_into(precision, &checked, &qkv, None, into, &outputs, layout)
            }
            Backend::Gpu(ref gpu) => {
                gpu_forward::forward_into(gpu, &checked, &qkv, into, &outputs, schedule, None)
            }
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
            Backend::Cpu(precision) => {
                cpu::forward_into(precision, &checked, &qkv, None, into, &outputs, layout)
            }
            Backend::Gpu(_) => Err(Error::Unsupported {
                feature: "GPU varlen forward",
            }),
        }
    }

    /// FP8 (e4m3) forward: `q`, `k`, `v` in [`F8E4M3`], `out` in `bf16`,
    /// shapes as in [`Self::forward_into`], with dequantization factors per
    /// (batch, kv head) (FA3's, [`Fp8Descale`](crate::Fp8Descale)) or per
    /// block ([`Fp8BlockDescale`](crate::Fp8BlockDescale)).
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
    pub fn forward_fp8_into<'d>(
        &self,
        qkv: Qkv<'_, F8E4M3, 4>,
        descale: impl Into<Fp8Scales<'d>>,
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
        let descale = descale.into();
        validate::descale(descale, &checked.problem)?;
        let Some(outputs) = outputs.filter(|_| checked.problem.seqlens.total_q() > 0) else {
            return Ok(());
        };
        let (descale, layout) = (Some(descale), LseLayout::BatchHeadSeq);
        match self.backend {
            Backend::Cpu(precision) => {
                cpu::forward_into(precision, &checked, &qkv, descale, into, &outputs, layout)
            }
            Backend::Gpu(ref gpu) => gpu_forward::forward_into(
                gpu,
                &checked,
                &qkv,
                into,
                &outputs,
                Schedule::Full,
                descale,
            ),
        }
    }
}
