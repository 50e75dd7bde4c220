//! Attention computed the way PyTorch computes it on `bf16`/`f16` tensors
//! (FA3's `attention_ref(..., upcast=False)`): every operation's result is
//! rounded to the element type `T`, matrix products and reductions
//! accumulate in `f32`. FA3's accuracy rule measures a kernel's error
//! against this implementation's error.
//!
//! Exactly what is rounded to `T` (`r(·)`), all arithmetic being `f32`:
//!
//! Forward, per (query, key) pair and row:
//! - `q' = r(q · scale)` (q is scaled first, as `attention_ref` does);
//! - `S = r(q'·k)`;
//! - with soft-capping `c`: `a = r(S / c)`, `t = r(tanh a)`, `S = r(t · c)`;
//! - masked scores are `-inf`; `P = r(softmax(S))`, the softmax evaluated in
//!   `f32` from the rounded `S` (`exp(S - max) / sum`);
//! - `lse = max + ln(sum)` of that `f32` softmax (not rounded);
//! - `O = r(P·V)`.
//!
//! Backward (PyTorch autograd through the same graph):
//! - `dP = r(dO·Vᵀ)`, `dV = r(Pᵀ·dO)` per query head;
//! - `dS = r(P ⊙ (dP - rowsum(P ⊙ dP)))` (softmax backward, in `f32`);
//! - with soft-capping: `dT = r(dS · c)`, `dA = r(dT · (1 - t²))`,
//!   `dU = r(dA / c)`; else `dU = dS`;
//! - `dQ' = r(dU·K)`, `dq = r(dQ' · scale)`, `dK = r(dUᵀ·Q')` per query head;
//! - GQA: `dk = r(Σ dK)` and `dv = r(Σ dV)` over the group's query heads,
//!   summed in `f32` (the backward of `repeat`); without GQA the sum is the
//!   single, already rounded term.
//!
//! Fully masked rows give `P = 0`, `O = 0`, `lse = -inf` and no gradient
//! (PyTorch would give NaN; `attention_ref` zeroes them the same way).

use super::accum::dot;
use super::problem::Problem;
use crate::attention::Real;
use float8::F8E4M3;
use rayon::prelude::*;
use std::marker::PhantomData;

/// Naive forward results, packed: `out` `[total_q, heads_q, dv]` in `T`,
/// `lse` `[total_q, heads_q]` in `f32`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NaiveForwardRows<T> {
    pub out: Vec<T>,
    pub lse: Vec<f32>,
}

/// Naive gradients, packed like q, k, v.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NaiveGradientRows<T> {
    pub dq: Vec<T>,
    pub dk: Vec<T>,
    pub dv: Vec<T>,
}

/// `x` rounded to `T`, back in `f32`.
fn r<T: Real>(x: f32) -> f32 {
    T::from_f32(x).to_f32()
}

/// The inputs (values of `T`, held as `f32`) and the per-pair operations.
struct Naive<'a, T> {
    p: &'a Problem,
    /// `q' = r(q · scale)`.
    q: Vec<f32>,
    k: &'a [f32],
    v: &'a [f32],
    scale: f32,
    softcap: f32,
    arithmetic: Arithmetic<'a>,
    element: PhantomData<T>,
}

/// The arithmetic the baseline models beside rounding every value to `T`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arithmetic<'a> {
    /// `T` tensors in PyTorch: `q' = r(q · scale)`, `S = r(q'·k)`.
    Element,
    /// FP8 tensor cores, the FP8 forward's baseline: `q`, `k` and `v` are
    /// the raw e4m3 values and `S = r(fp8_mma_dot(q, k) · (scale · q_factor
    /// · k_factor))` (an e4m3 GEMM with its scales, bf16 out, as
    /// `torch._scaled_mm` gives it); P is `exp(S - max)` times
    /// [`FP8_P_SCALE`] rounded to e4m3 (as FA3's FP8 kernel rounds it), P·V
    /// is `fp8_mma_dot(P, v) · v_factor` over each run of keys sharing one
    /// V factor, the runs summed in `f32`, and O is that over
    /// `FP8_P_SCALE ·` the unrounded sum.
    Fp8 {
        /// Per packed query row.
        q_factor: &'a [f32],
        /// Per packed key row.
        k_factor: &'a [f32],
        /// Per packed key row.
        v_factor: &'a [f32],
    },
}

/// What P is multiplied by before it is rounded to e4m3: FA3's FP8 kernel
/// keeps `exp(s - max) · 2^8` (its `max_offset`, our kernel's
/// `FwdInput::P_LOG2_MAX`) and divides by `2^8 ·` the unrounded sum after
/// P·V. Rounding the normalized P instead puts a near-uniform row's P
/// (about 1/seqlen_k) into e4m3's subnormals, where, at 512 keys, every P
/// falls into the one step 2^-9 and comes out the same: a baseline with
/// none of the per-key rounding noise the kernel's P has (the kernel's
/// `out` was 1.2-1.8x that bound at (2, 256, 512) on the H200, and a CPU
/// emulation of the kernel's arithmetic up to 3.0x).
const FP8_P_SCALE: f32 = 256.0;

/// The dot product of e4m3 values (held as `f32`) as Hopper's FP8 tensor
/// cores compute it. Each k32 step (one `wgmma .f32.e4m3.e4m3`
/// instruction) adds its 32 products, each exact, to the accumulator the
/// way a fixed-width adder does:
/// - every addend (the accumulator and the 32 products) is aligned to the
///   largest one's exponent `e` and truncated toward zero to a multiple of
///   `2^(e - 13)`;
/// - the sum is kept to 13 fraction bits, truncated toward zero.
///
/// That is the e8m13 accumulation DeepSeek-V3's report measured ("around
/// 14 bits" kept, §3.3.2), with the alignment every tensor-core study
/// found (Fasi et al. 2021). Two consequences no `f32` noise term covers:
/// truncation is biased, so a long row's lse moves by the average of its
/// scores' errors; and a step whose products cancel keeps the error of
/// its largest product, not of its small sum. On an H200 this model gives
/// about two thirds of the hardware's sums bit for bit, the most of the
/// candidates `tests/gpu_wgmma` tries; the rest differ in the last bits.
pub fn fp8_mma_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = 0.0f64;
    let mut products = [0.0f64; K_STEP];
    for (a, b) in a.chunks(K_STEP).zip(b.chunks(K_STEP)) {
        let step = &mut products[..a.len()];
        // Exact: e4m3 products have 8 significant bits between 2^-18 and
        // 2^18.
        for ((p, &x), &y) in step.iter_mut().zip(a).zip(b) {
            *p = f64::from(x) * f64::from(y);
        }
        acc = fp8_mma_step(acc, step);
    }
    // Exact: 14 significant bits.
    acc as f32
}

/// The K of one FP8 wgmma.
const K_STEP: usize = 32;

/// One k32 step of [`fp8_mma_dot`]: `acc` plus the step's exact products.
fn fp8_mma_step(acc: f64, products: &[f64]) -> f64 {
    /// Fraction bits the adder keeps below its largest addend.
    const FRACTION_BITS: i32 = 13;
    // The largest addend's exponent is the largest magnitude's (every
    // non-zero addend is normal).
    let largest = products.iter().fold(acc.abs(), |m, x| m.max(x.abs()));
    if largest == 0.0 {
        return acc;
    }
    let top = exponent(largest);
    // Powers of two: scaling by them is exact. Each addend is below 2^14
    // units, so the integer conversion truncates it toward zero exactly
    // (one instruction, where `f64::trunc` is a libm call on x86-64's
    // baseline), and the sum of the 33 is exact.
    let (unit, per_unit) = (
        2f64.powi(top - FRACTION_BITS),
        2f64.powi(FRACTION_BITS - top),
    );
    let units = products.iter().fold((acc * per_unit) as i64, |sum, x| {
        sum + (x * per_unit) as i64
    });
    truncate(units as f64 * unit, FRACTION_BITS)
}

/// The exponent of a normal, non-zero `f64`: `floor(log2 |x|)`.
fn exponent(x: f64) -> i32 {
    ((x.to_bits() >> 52) & 0x7ff) as i32 - 1023
}

/// `x` truncated toward zero to `bits` fraction bits.
fn truncate(x: f64, bits: i32) -> f64 {
    let dropped = 52 - bits as u32;
    f64::from_bits(x.to_bits() & !((1u64 << dropped) - 1))
}

/// One query row's softmax with its rowsum(P ⊙ dP) (`None`: fully
/// masked), and its dq row.
type RowGradients<T> = (Option<(RowSoftmax, f32)>, Vec<T>);

/// The softmax of one query row: `P_j = r(exp(S_j - max) / sum)`.
#[derive(Debug, Clone, Copy)]
struct RowSoftmax {
    max: f32,
    sum: f32,
}

impl<'a, T: Real> Naive<'a, T> {
    fn new(
        p: &'a Problem,
        (q, k, v): (&[f32], &'a [f32], &'a [f32]),
        arithmetic: Arithmetic<'a>,
    ) -> Self {
        // The scale is an f32 value (widened), so this is exact.
        let scale = p.params.scale as f32;
        let q = match arithmetic {
            Arithmetic::Element => q.iter().map(|&x| r::<T>(x * scale)).collect(),
            Arithmetic::Fp8 { .. } => q.to_vec(),
        };
        Self {
            p,
            q,
            k,
            v,
            scale,
            softcap: p.params.softcap as f32,
            arithmetic,
            element: PhantomData,
        }
    }

    /// The key rows query row `row` sees.
    fn kv_rows(&self, row: usize) -> impl Iterator<Item = usize> {
        let p = self.p;
        let (token, h) = (row / p.heads_q, row % p.heads_q);
        let (b, i) = p.seqlens.locate_q(token);
        let keys = p.seqlens.k_tokens(b);
        let g = p.kv_head(h);
        p.params
            .mask
            .keys(i, p.seqlens.q_tokens(b).len(), keys.len())
            .map(move |j| (keys.start + j) * p.heads_kv + g)
    }

    /// The query rows that see key row `kv_row`, one iterator per query
    /// head of its group.
    fn q_rows_per_head(&self, kv_row: usize) -> impl Iterator<Item = impl Iterator<Item = usize>> {
        let p = self.p;
        let (token, g) = (kv_row / p.heads_kv, kv_row % p.heads_kv);
        let (b, j) = p.seqlens.locate_k(token);
        let queries = p.seqlens.q_tokens(b);
        let visible = p
            .params
            .mask
            .queries(j, queries.len(), p.seqlens.k_tokens(b).len());
        (g * p.group()..(g + 1) * p.group()).map(move |h| {
            visible
                .clone()
                .map(move |i| (queries.start + i) * p.heads_q + h)
        })
    }

    /// `(S, t)`: the rounded score and, with soft-capping, the rounded tanh.
    fn score(&self, row: usize, kv_row: usize) -> (f32, f32) {
        let d = self.p.head_dim;
        let (q, k) = (&self.q[row * d..][..d], &self.k[kv_row * d..][..d]);
        let s = match self.arithmetic {
            Arithmetic::Element => r::<T>(dot(q, k)),
            Arithmetic::Fp8 {
                q_factor, k_factor, ..
            } => r::<T>(fp8_mma_dot(q, k) * (self.scale * q_factor[row] * k_factor[kv_row])),
        };
        if self.softcap == 0.0 {
            return (s, 0.0);
        }
        let t = r::<T>(r::<T>(s / self.softcap).tanh());
        (r::<T>(t * self.softcap), t)
    }

    /// The softmax of a row's rounded scores (`None` when it has none).
    fn softmax(scores: &[f32]) -> Option<RowSoftmax> {
        let max = scores.iter().copied().reduce(f32::max)?;
        let sum = scores.iter().map(|s| (s - max).exp()).sum();
        Some(RowSoftmax { max, sum })
    }

    fn prob(&self, softmax: RowSoftmax, s: f32) -> f32 {
        r::<T>((s - softmax.max).exp() / softmax.sum)
    }

    fn forward(&self) -> NaiveForwardRows<T> {
        let dv = self.p.head_dim_v;
        let rows: Vec<(Vec<T>, f32)> = (0..self.p.q_rows())
            .into_par_iter()
            .map(|row| {
                let mut acc = vec![0.0f32; dv];
                // Each score once, kept for the row only.
                let scores: Vec<f32> = self.kv_rows(row).map(|kv| self.score(row, kv).0).collect();
                let Some(softmax) = Self::softmax(&scores) else {
                    return (vec![T::from_f32(0.0); dv], f32::NEG_INFINITY);
                };
                match self.arithmetic {
                    Arithmetic::Element => {
                        for (kv, &s) in self.kv_rows(row).zip(&scores) {
                            let prob = self.prob(softmax, s);
                            for (a, &x) in acc.iter_mut().zip(&self.v[kv * dv..][..dv]) {
                                *a += prob * x;
                            }
                        }
                    }
                    Arithmetic::Fp8 { v_factor, .. } => {
                        let probs = scores
                            .iter()
                            .map(|&s| r::<F8E4M3>(FP8_P_SCALE * r::<T>((s - softmax.max).exp())));
                        let keys: Vec<(usize, f32)> = self.kv_rows(row).zip(probs).collect();
                        self.fp8_pv(&keys, v_factor, &mut acc);
                        let norm = FP8_P_SCALE * softmax.sum;
                        acc.iter_mut().for_each(|a| *a /= norm);
                    }
                }
                let out = acc.into_iter().map(T::from_f32).collect();
                (out, softmax.max + softmax.sum.ln())
            })
            .collect();
        let lse = rows.iter().map(|(_, lse)| *lse).collect();
        let out = rows.into_iter().flat_map(|(out, _)| out).collect();
        NaiveForwardRows { out, lse }
    }

    /// `acc += P·V` on the FP8 tensor cores for one row's `(key row, P)`:
    /// one e4m3 GEMM per run of keys with the same V factor, times it. Per
    /// k32 step the products are formed column by column, then each
    /// column's step is added as [`fp8_mma_dot`] adds it.
    fn fp8_pv(&self, keys: &[(usize, f32)], v_factor: &[f32], acc: &mut [f32]) {
        let dv = self.p.head_dim_v;
        // Column-major: each column's step of products contiguous.
        let mut products = vec![0.0f64; dv * K_STEP];
        for run in keys.chunk_by(|a, b| v_factor[a.0] == v_factor[b.0]) {
            let mut sums = vec![0.0f64; dv];
            for step in run.chunks(K_STEP) {
                for (j, &(kv, p)) in step.iter().enumerate() {
                    let v = &self.v[kv * dv..][..dv];
                    for (c, &v) in v.iter().enumerate() {
                        products[c * K_STEP + j] = f64::from(p) * f64::from(v);
                    }
                }
                for (column, sum) in products.chunks_exact(K_STEP).zip(&mut sums) {
                    *sum = fp8_mma_step(*sum, &column[..step.len()]);
                }
            }
            let factor = v_factor[run[0].0];
            for (a, sum) in acc.iter_mut().zip(sums) {
                // Exact to f32: 14 significant bits.
                *a += sum as f32 * factor;
            }
        }
    }

    fn backward(&self, dout: &[f32]) -> NaiveGradientRows<T> {
        let (d, dv) = (self.p.head_dim, self.p.head_dim_v);
        // Per query row, in one pass over its keys (each score and dP
        // computed once, kept for the row only): its softmax, rowsum(P ⊙
        // dP) and its dq row.
        let per_row: Vec<RowGradients<T>> = (0..self.p.q_rows())
            .into_par_iter()
            .map(|row| {
                let pairs: Vec<((f32, f32), f32)> = self
                    .kv_rows(row)
                    .map(|kv| (self.score(row, kv), self.dprob(dout, row, kv)))
                    .collect();
                let scores: Vec<f32> = pairs.iter().map(|&((s, _), _)| s).collect();
                let Some(softmax) = Self::softmax(&scores) else {
                    return (None, (0..d).map(|_| T::from_f32(0.0)).collect());
                };
                let delta = pairs
                    .iter()
                    .map(|&((s, _), dp)| self.prob(softmax, s) * dp)
                    .sum();
                let mut acc = vec![0.0f32; d];
                for (kv, &((s, t), dp)) in self.kv_rows(row).zip(&pairs) {
                    let (_, du) = self.gradient(softmax, delta, s, t, dp);
                    for (a, &x) in acc.iter_mut().zip(&self.k[kv * d..][..d]) {
                        *a += du * x;
                    }
                }
                let dq = acc
                    .into_iter()
                    .map(|x| T::from_f32(r::<T>(x) * self.scale))
                    .collect();
                (Some((softmax, delta)), dq)
            })
            .collect();
        // (P, dU) of one pair.
        let pair = |row: usize, kv: usize| -> Option<(f32, f32)> {
            let (softmax, delta) = per_row[row].0?;
            let (s, t) = self.score(row, kv);
            Some(self.gradient(softmax, delta, s, t, self.dprob(dout, row, kv)))
        };
        let dq = per_row
            .iter()
            .flat_map(|(_, dq)| dq.iter().copied())
            .collect();

        let per_key: Vec<(Vec<T>, Vec<T>)> = (0..self.p.k_rows())
            .into_par_iter()
            .map(|kv| {
                let (mut dk, mut dvs) = (vec![0.0f32; d], vec![0.0f32; dv]);
                // Each head's sum is rounded before the group sum.
                for rows in self.q_rows_per_head(kv) {
                    let (mut dk_h, mut dv_h) = (vec![0.0f32; d], vec![0.0f32; dv]);
                    for row in rows {
                        if let Some((prob, du)) = pair(row, kv) {
                            for (a, &x) in dk_h.iter_mut().zip(&self.q[row * d..][..d]) {
                                *a += du * x;
                            }
                            for (a, &x) in dv_h.iter_mut().zip(&dout[row * dv..][..dv]) {
                                *a += prob * x;
                            }
                        }
                    }
                    for (a, x) in dk.iter_mut().zip(dk_h) {
                        *a += r::<T>(x);
                    }
                    for (a, x) in dvs.iter_mut().zip(dv_h) {
                        *a += r::<T>(x);
                    }
                }
                (
                    dk.into_iter().map(T::from_f32).collect(),
                    dvs.into_iter().map(T::from_f32).collect(),
                )
            })
            .collect();
        let dk = per_key
            .iter()
            .flat_map(|(dk, _)| dk.iter().copied())
            .collect();
        let dv = per_key.into_iter().flat_map(|(_, dv)| dv).collect();
        NaiveGradientRows { dq, dk, dv }
    }

    /// `(P, dU)` of one pair from its rounded score `s` (and tanh `t`),
    /// `dP` and its row's softmax and rowsum(P ⊙ dP).
    fn gradient(&self, softmax: RowSoftmax, delta: f32, s: f32, t: f32, dp: f32) -> (f32, f32) {
        let prob = self.prob(softmax, s);
        let ds = r::<T>(prob * (dp - delta));
        let du = if self.softcap == 0.0 {
            ds
        } else {
            let dt = r::<T>(ds * self.softcap);
            r::<T>(r::<T>(dt * (1.0 - t * t)) / self.softcap)
        };
        (prob, du)
    }

    /// `dP = r(dO·v)` of one pair.
    fn dprob(&self, dout: &[f32], row: usize, kv: usize) -> f32 {
        let dv = self.p.head_dim_v;
        r::<T>(dot(&dout[row * dv..][..dv], &self.v[kv * dv..][..dv]))
    }
}

/// The naive forward over packed `f32` copies of `T` inputs (q and k raw
/// e4m3 values with [`Arithmetic::Fp8`]).
pub(crate) fn forward<'a, T: Real>(
    p: &'a Problem,
    qkv: (&[f32], &'a [f32], &'a [f32]),
    arithmetic: Arithmetic<'a>,
) -> NaiveForwardRows<T> {
    Naive::<T>::new(p, qkv, arithmetic).forward()
}

/// The naive backward over packed `f32` copies of `T` inputs and `dout`.
pub(crate) fn backward<T: Real>(
    p: &Problem,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dout: &[f32],
) -> NaiveGradientRows<T> {
    Naive::<T>::new(p, (q, k, v), Arithmetic::Element).backward(dout)
}

#[cfg(test)]
mod tests {
    use super::fp8_mma_dot;

    #[test]
    fn fp8_mma_dot_keeps_13_fraction_bits_truncated_toward_zero() {
        let p = |e: i32| 2f32.powi(e);
        // 32 + 32: exact.
        assert_eq!(fp8_mma_dot(&[1.0; 64], &[1.0; 64]), 64.0);
        // 1 + 2^-13 + 2^-14: the 2^-14 is dropped (round-to-nearest-even
        // would give 1 + 2^-12), for either sign.
        let (a, b) = ([1.0, p(-7), p(-7)], [1.0, p(-6), p(-7)]);
        assert_eq!(fp8_mma_dot(&a, &b), 1.0 + p(-13));
        assert_eq!(fp8_mma_dot(&a.map(|x| -x), &b), -(1.0 + p(-13)));
        // A second k32 step truncates again: 256 then + 2^-6 (below 256's
        // 2^-5 step) is still 256.
        let mut a = [0.0; 64];
        let mut b = [0.0; 64];
        (a[0], b[0], a[32], b[32]) = (16.0, 16.0, p(-3), p(-3));
        assert_eq!(fp8_mma_dot(&a, &b), 256.0);
    }

    #[test]
    fn fp8_mma_dot_aligns_a_cancelling_step_to_its_largest_product() {
        let p = |e: i32| 2f32.powi(e);
        // 1 - 1 + 2^-14: the sum is 2^-14, but aligned to 1 the 2^-14 is
        // below the adder's last bit.
        let (a, b) = ([1.0, -1.0, p(-7)], [1.0, 1.0, p(-7)]);
        assert_eq!(fp8_mma_dot(&a, &b), 0.0);
        // Each addend is truncated on its own, toward zero: 1 - 1.5·2^-13
        // is 1 - 2^-13 (its exact value would fit 13 fraction bits).
        let (a, b) = ([1.0, -1.5 * p(-7)], [1.0, p(-6)]);
        assert_eq!(fp8_mma_dot(&a, &b), 1.0 - p(-13));
    }
}
