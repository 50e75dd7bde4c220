//! The argument groups of the entry points, named like FA3's arguments.
//!
//! Fixed-length tensors are rank 4 (`R = 4`, lse rank `L = 3`): `q`
//! `(batch, seqlen_q, heads_q, head_dim)`, `k` `(batch, seqlen_k, heads_kv,
//! head_dim)`, `v` `(batch, seqlen_k, heads_kv, head_dim_v)`, `out` like `q`
//! with `head_dim_v`, `lse` `(batch, heads_q, seqlen_q)`. Variable-length
//! tensors are packed, rank 3 (`R = 3`, `L = 2`): `q` `(total_q, heads_q,
//! head_dim)`, `k`/`v` `(total_k, heads_kv, ·)`, `lse` `(heads_q, total_q)`,
//! with the sequences given by [`Varlen`].

use super::tensor::{Tensor, TensorMut};
use float8::F8E4M3;

/// The inputs of a forward.
///
/// # Element types
///
/// `q`, `k`, `v` and the outputs share one element type, checked by the
/// compiler: FA3's runtime "dtype mismatch" is a type error here, so it has
/// no [`Error`](crate::Error) variant. Mixing `bf16` and `f16` does not
/// compile:
///
/// ```compile_fail,E0308
/// use fa3::{Qkv, Tensor, bf16, f16};
/// let (a, b) = (vec![bf16::ZERO; 8], vec![f16::ZERO; 8]);
/// let qkv = Qkv {
///     q: Tensor::host(&a, [1, 1, 1, 8]),
///     k: Tensor::host(&b, [1, 1, 1, 8]),
///     v: Tensor::host(&a, [1, 1, 1, 8]),
/// };
/// ```
///
/// nor does an output of another type than the inputs:
///
/// ```compile_fail,E0308
/// use fa3::{AttentionOptions, Device, ForwardInto, Qkv, Tensor, TensorMut, bf16, f16};
/// let x = vec![bf16::ZERO; 8];
/// let (mut out, mut lse) = (vec![f16::ZERO; 8], vec![0.0f32; 1]);
/// let t = Tensor::host(&x, [1, 1, 1, 8]);
/// Device::cpu().forward_into(
///     Qkv { q: t, k: t, v: t },
///     ForwardInto { out: TensorMut::host(&mut out, [1, 1, 1, 8]), lse: TensorMut::host(&mut lse, [1, 1, 1]) },
///     &AttentionOptions::new(),
/// );
/// ```
///
/// and FP8 inputs go to [`Device::forward_fp8_into`](crate::Device::forward_fp8_into)
/// only (the bf16/f16 entry points take [`AttentionElement`](crate::AttentionElement)s):
///
/// ```compile_fail,E0277
/// use fa3::{AttentionOptions, Device, F8E4M3, Qkv, Tensor};
/// let x = vec![F8E4M3::from_f32(1.0); 8];
/// let t = Tensor::host(&x, [1, 1, 1, 8]);
/// let _ = Device::cpu().forward(Qkv { q: t, k: t, v: t }, &AttentionOptions::new());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Qkv<'a, T, const R: usize> {
    /// Queries.
    pub q: Tensor<'a, T, R>,
    /// Keys.
    pub k: Tensor<'a, T, R>,
    /// Values.
    pub v: Tensor<'a, T, R>,
}

/// Where a forward writes: the attention output and the log-sum-exp of
/// each query row's scores (natural log, `f32`; `-inf` for a fully masked
/// row, whose output is 0).
#[derive(Debug)]
pub struct ForwardInto<'a, T, const R: usize, const L: usize> {
    /// The output, shaped like `q` with `head_dim_v`.
    pub out: TensorMut<'a, T, R>,
    /// The log-sum-exp, `(batch, heads_q, seqlen_q)` or `(heads_q, total_q)`.
    pub lse: TensorMut<'a, f32, L>,
}

/// The inputs of a backward: the forward's inputs and results, and the
/// gradient of the loss with respect to `out`.
#[derive(Debug, Clone, Copy)]
pub struct BackwardInputs<'a, T, const R: usize, const L: usize> {
    /// Queries.
    pub q: Tensor<'a, T, R>,
    /// Keys.
    pub k: Tensor<'a, T, R>,
    /// Values.
    pub v: Tensor<'a, T, R>,
    /// The forward's output.
    pub out: Tensor<'a, T, R>,
    /// The forward's log-sum-exp.
    pub lse: Tensor<'a, f32, L>,
    /// The gradient with respect to `out`.
    pub dout: Tensor<'a, T, R>,
}

/// Where a backward writes the gradients, shaped like `q`, `k` and `v`.
#[derive(Debug)]
pub struct GradientsInto<'a, T, const R: usize> {
    /// Gradient with respect to `q`.
    pub dq: TensorMut<'a, T, R>,
    /// Gradient with respect to `k`.
    pub dk: TensorMut<'a, T, R>,
    /// Gradient with respect to `v`.
    pub dv: TensorMut<'a, T, R>,
}

/// The sequences of a variable-length batch, as FA3 takes them.
///
/// Sequence `b`'s queries are the packed tokens `cu_seqlens_q[b] ..
/// cu_seqlens_q[b + 1]`, its keys likewise. Both arrays have `batch + 1`
/// entries, start at 0, never decrease and end at the packed tensors'
/// token counts. These stay on the host for every backend.
#[derive(Debug, Clone, Copy)]
pub struct Varlen<'a> {
    /// Cumulative query counts.
    pub cu_seqlens_q: &'a [i32],
    /// Cumulative key counts.
    pub cu_seqlens_k: &'a [i32],
    /// At least the longest query sequence.
    pub max_seqlen_q: usize,
    /// At least the longest key sequence.
    pub max_seqlen_k: usize,
}

/// Dequantization factors of the FP8 forward, one per (batch, kv head) and
/// row-major over `(batch, heads_kv)`, on the host for every backend. Query
/// head `h` uses its kv head's factor, as in FA3: scores are
/// `softmax_scale · descale_q · descale_k · q·k` and the output is
/// `descale_v · P·v`.
#[derive(Debug, Clone, Copy)]
pub struct Fp8Descale<'a> {
    /// Factors of `q`.
    pub q: &'a [f32],
    /// Factors of `k`.
    pub k: &'a [f32],
    /// Factors of `v`.
    pub v: &'a [f32],
}

/// Block dequantization factors of the FP8 forward (the FA3 paper's block
/// quantization; what [`Device::quantize_fp8_into`](crate::Device::quantize_fp8_into)
/// writes with [`Fp8Scaling::PerBlock`](crate::Fp8Scaling::PerBlock)), row-major, on the
/// host: `q`'s one per (batch, query head, block of `q_rows` queries),
/// `k`'s and `v`'s one per (batch, kv head, block of `k_rows` keys); the
/// last block of a sequence may be shorter. Scores are `softmax_scale ·
/// s_q(i) · s_k(j) · q·k`, values `s_v(j) · v`.
#[derive(Debug, Clone, Copy)]
pub struct Fp8BlockDescale<'a> {
    /// Factors of `q`, `(batch, heads_q, ceil(seqlen_q / q_rows))`.
    pub q: &'a [f32],
    /// Factors of `k`, `(batch, heads_kv, ceil(seqlen_k / k_rows))`.
    pub k: &'a [f32],
    /// Factors of `v`, like `k`'s.
    pub v: &'a [f32],
    /// Queries per block of `q` (at least 1).
    pub q_rows: usize,
    /// Keys per block of `k` and `v` (at least 1).
    pub k_rows: usize,
}

/// The dequantization factors [`Device::forward_fp8_into`](crate::Device::forward_fp8_into)
/// takes: FA3's, per (batch, kv head), or per block. Made from a reference
/// to either (`&Fp8Descale { .. }` or `&Fp8BlockDescale { .. }`).
#[derive(Debug, Clone, Copy)]
pub enum Fp8Scales<'a> {
    /// FA3's convention ([`Fp8Descale`]).
    PerKvHead(&'a Fp8Descale<'a>),
    /// Block quantization ([`Fp8BlockDescale`]).
    PerBlock(&'a Fp8BlockDescale<'a>),
}

impl<'a> From<&'a Fp8Descale<'a>> for Fp8Scales<'a> {
    fn from(d: &'a Fp8Descale<'a>) -> Self {
        Self::PerKvHead(d)
    }
}

impl<'a> From<&'a Fp8BlockDescale<'a>> for Fp8Scales<'a> {
    fn from(d: &'a Fp8BlockDescale<'a>) -> Self {
        Self::PerBlock(d)
    }
}

/// Which values of a `(batch, seqlen, heads, head_dim)` tensor share a
/// scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fp8Scaling {
    /// One scale for the whole tensor (the paper's per-tensor baseline).
    PerTensor,
    /// One per (batch, head). For `k` and `v` these are FA3's
    /// `k_descale`/`v_descale`; FA3's `q_descale` is per (batch, kv head),
    /// which this is for `q` only without GQA.
    PerHead,
    /// One per (batch, head, block of `rows` consecutive positions of the
    /// sequence); the last block of a sequence may be shorter.
    PerBlock {
        /// Positions per block (at least 1).
        rows: usize,
    },
}

impl Fp8Scaling {
    /// The shape of the scales of a tensor of `shape` `(batch, seqlen,
    /// heads, head_dim)`: `[1, 1, 1]`, `[batch, heads, 1]`, or `[batch,
    /// heads, ceil(seqlen / rows)]` (`rows` 0 counts as 1 here; the entry
    /// point refuses it).
    ///
    /// ```
    /// use fa3::Fp8Scaling;
    /// assert_eq!(Fp8Scaling::PerBlock { rows: 128 }.scales_shape([2, 1000, 4, 64]), [2, 4, 8]);
    /// assert_eq!(Fp8Scaling::PerHead.scales_shape([2, 1000, 4, 64]), [2, 4, 1]);
    /// ```
    pub fn scales_shape(self, shape: [usize; 4]) -> [usize; 3] {
        let [batch, seqlen, heads, _] = shape;
        match self {
            Self::PerTensor => [1, 1, 1],
            Self::PerHead => [batch, heads, 1],
            Self::PerBlock { rows } => [batch, heads, seqlen.div_ceil(rows.max(1))],
        }
    }

    /// The index, in the row-major scales of a tensor with `heads` heads
    /// and `seqlen` positions, of the scale of position `s` of head `h` of
    /// batch `b` (what dequantizes it: `data · scales[group]`).
    ///
    /// ```
    /// use fa3::Fp8Scaling;
    /// // Batch 1, position 300, head 2 of (2, 1000, 4, ·): block 2 of head 6.
    /// assert_eq!(Fp8Scaling::PerBlock { rows: 128 }.group((1, 300, 2), 4, 1000), 6 * 8 + 2);
    /// assert_eq!(Fp8Scaling::PerTensor.group((1, 300, 2), 4, 1000), 0);
    /// ```
    pub fn group(self, (b, s, h): (usize, usize, usize), heads: usize, seqlen: usize) -> usize {
        let [_, _, blocks] = self.scales_shape([0, seqlen, 0, 0]);
        match self {
            Self::PerTensor => 0,
            Self::PerHead => b * heads + h,
            Self::PerBlock { rows } => (b * heads + h) * blocks + s / rows,
        }
    }
}

/// How [`Device::quantize_fp8_into`](crate::Device::quantize_fp8_into) quantizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fp8Quantize {
    /// Which values share a scale.
    pub scaling: Fp8Scaling,
    /// Incoherent processing with the signs of this seed
    /// ([`hadamard_sign`](crate::hadamard_sign)); `None`: off.
    pub hadamard_seed: Option<u64>,
}

impl Fp8Quantize {
    /// `scaling`, without incoherent processing.
    pub const fn new(scaling: Fp8Scaling) -> Self {
        Self {
            scaling,
            hadamard_seed: None,
        }
    }

    /// With incoherent processing, signs from `seed` (give `q` and `k` the
    /// same one).
    pub const fn hadamard(self, seed: u64) -> Self {
        Self {
            hadamard_seed: Some(seed),
            ..self
        }
    }
}

/// Where [`Device::quantize_fp8_into`](crate::Device::quantize_fp8_into) writes.
#[derive(Debug)]
pub struct Fp8QuantizedInto<'a> {
    /// `e4m3(x / scale)` (of the rotated `x` with incoherent processing),
    /// the shape of `x`.
    pub data: TensorMut<'a, F8E4M3, 4>,
    /// The scales, [`Fp8Scaling::scales_shape`] of `x`'s shape.
    pub scales: TensorMut<'a, f32, 3>,
}
