//! The exact backward: dq, dk, dv from the forward's out and lse.
//!
//! With `P = exp(S - lse)`, `D = rowsum(dO ⊙ O)`:
//! `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP - D)`, chained through the
//! soft-cap (`dU = dS ⊙ (1 - tanh²)`) and the scale:
//! `dQ = scale · dU·K`, `dK = scale · dUᵀ·Q`. GQA sums dK/dV over the query
//! heads of a group.
//!
//! dq rows loop over the keys a query sees and dk/dv rows over the queries
//! that see a key (each score is recomputed on both sides): every output row
//! is owned by one thread and summed in a fixed order, so the result is
//! deterministic without atomics.

use super::accum::{Acc, axpy, dot};
use super::problem::Problem;
use super::scores::Scorer;
use rayon::prelude::*;

/// Packed forward results and upstream gradient the backward reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BackwardInputs<'a, A> {
    /// `[total_q, heads_q, d]`.
    pub q: &'a [A],
    /// `[total_k, heads_kv, d]`.
    pub k: &'a [A],
    /// `[total_k, heads_kv, dv]`.
    pub v: &'a [A],
    /// `[total_q, heads_q, dv]`.
    pub out: &'a [A],
    /// `[total_q, heads_q]`.
    pub lse: &'a [A],
    /// `[total_q, heads_q, dv]`.
    pub dout: &'a [A],
}

/// Packed gradients, shaped like q, k and v.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GradientRows<A> {
    pub dq: Vec<A>,
    pub dk: Vec<A>,
    pub dv: Vec<A>,
}

/// The backward over packed rows (layouts as in [`BackwardInputs`]).
pub(crate) fn backward<A: Acc>(p: &Problem, x: &BackwardInputs<'_, A>) -> GradientRows<A> {
    let (d, dv) = (p.head_dim, p.head_dim_v);
    let scorer = Scorer::<A>::new(&p.params);
    let delta: Vec<A> = (0..p.q_rows())
        .into_par_iter()
        .map(|r| dot(&x.dout[r * dv..][..dv], &x.out[r * dv..][..dv]))
        .collect();
    // Everything about one (query row, key row) pair: (P, dU).
    let pair = |q_row: usize, kv_row: usize| -> (A, A) {
        let (s, slope) =
            scorer.score_and_slope(dot(&x.q[q_row * d..][..d], &x.k[kv_row * d..][..d]));
        let prob = (s - x.lse[q_row]).exp();
        let dp: A = dot(&x.dout[q_row * dv..][..dv], &x.v[kv_row * dv..][..dv]);
        (prob, prob * (dp - delta[q_row]) * slope)
    };
    // A row with lse = -inf is fully masked: it contributes nothing (and
    // exp(s + inf) must not turn into NaN if a caller's lse says so).
    let live = |q_row: usize| x.lse[q_row] != A::NEG_INFINITY;

    let mut dq = vec![A::ZERO; p.q_rows() * d];
    dq.par_chunks_mut(d).enumerate().for_each(|(row, dq)| {
        if !live(row) {
            return;
        }
        let (token, h) = (row / p.heads_q, row % p.heads_q);
        let (b, i) = p.seqlens.locate_q(token);
        let keys = p.seqlens.k_tokens(b);
        for j in p
            .params
            .mask
            .keys(i, p.seqlens.q_tokens(b).len(), keys.len())
        {
            let kv_row = (keys.start + j) * p.heads_kv + p.kv_head(h);
            let (_, du) = pair(row, kv_row);
            axpy(dq, du * scorer.scale(), &x.k[kv_row * d..][..d]);
        }
    });

    let mut dk = vec![A::ZERO; p.k_rows() * d];
    let mut dvs = vec![A::ZERO; p.k_rows() * dv];
    dk.par_chunks_mut(d)
        .zip(dvs.par_chunks_mut(dv))
        .enumerate()
        .for_each(|(kv_row, (dk, dv_row))| {
            let (token, g) = (kv_row / p.heads_kv, kv_row % p.heads_kv);
            let (b, j) = p.seqlens.locate_k(token);
            let queries = p.seqlens.q_tokens(b);
            let visible_from = p
                .params
                .mask
                .queries(j, queries.len(), p.seqlens.k_tokens(b).len());
            for h in g * p.group()..(g + 1) * p.group() {
                for i in visible_from.clone() {
                    let row = (queries.start + i) * p.heads_q + h;
                    if !live(row) {
                        continue;
                    }
                    let (prob, du) = pair(row, kv_row);
                    axpy(dv_row, prob, &x.dout[row * dv..][..dv]);
                    axpy(dk, du * scorer.scale(), &x.q[row * d..][..d]);
                }
            }
        });
    GradientRows { dq, dk, dv: dvs }
}
