//! The exact forward: out and lse of every (query token, query head) row,
//! two-pass softmax in the accumulation precision.

use super::accum::{Acc, axpy, dot};
use super::problem::Problem;
use super::scores::Scorer;
use rayon::prelude::*;

/// Packed results of a forward, in the accumulation precision.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ForwardRows<A> {
    /// `[total_q, heads_q, head_dim_v]`.
    pub out: Vec<A>,
    /// `[total_q, heads_q]`, natural log; `-inf` for fully masked rows.
    pub lse: Vec<A>,
}

/// Forward over packed `q: [total_q, heads_q, d]`, `k: [total_k, heads_kv,
/// d]`, `v: [total_k, heads_kv, dv]`.
///
/// Rows are independent and each is computed by one thread in a fixed
/// order, so the result does not depend on the thread count.
pub(crate) fn forward<A: Acc>(p: &Problem, q: &[A], k: &[A], v: &[A]) -> ForwardRows<A> {
    let dv = p.head_dim_v;
    let scorer = Scorer::<A>::new(&p.params);
    let mut out = vec![A::ZERO; p.q_rows() * dv];
    let mut lse = vec![A::NEG_INFINITY; p.q_rows()];
    out.par_chunks_mut(dv)
        .zip(lse.par_iter_mut())
        .enumerate()
        .for_each_init(Vec::new, |scores, (row, (out, lse))| {
            let inputs = RowInputs { p, row, q, k, v };
            *lse = inputs.attend(&scorer, scores, out);
            // Scores beyond f32's range (huge inputs or softmax_scale) make
            // inf − inf = NaN in an f32 softmax that has a finite answer:
            // such a row is computed again in f64 and rounded once.
            if !lse.is_finite() && *lse != A::NEG_INFINITY {
                let wide = Scorer::<f64>::new(&p.params);
                let mut out64 = vec![0.0f64; dv];
                *lse = inputs.attend(&wide, &mut Vec::new(), &mut out64).cast();
                for (o, &x) in out.iter_mut().zip(&out64) {
                    *o = x.cast();
                }
            }
        });
    ForwardRows { out, lse }
}

/// What one query row reads.
struct RowInputs<'a, A> {
    p: &'a Problem,
    row: usize,
    q: &'a [A],
    k: &'a [A],
    v: &'a [A],
}

impl<A: Acc> RowInputs<'_, A> {
    /// Writes the row's output (which starts at 0) in precision `W` and
    /// returns its lse; a fully masked row keeps out = 0 and lse = -inf.
    fn attend<W: Acc>(&self, scorer: &Scorer<W>, scores: &mut Vec<W>, out: &mut [W]) -> W {
        let p = self.p;
        let (d, dv) = (p.head_dim, p.head_dim_v);
        let (token, h) = (self.row / p.heads_q, self.row % p.heads_q);
        let (b, i) = p.seqlens.locate_q(token);
        let keys = p.seqlens.k_tokens(b);
        let visible = p
            .params
            .mask
            .keys(i, p.seqlens.q_tokens(b).len(), keys.len());
        let kv_row = |j: usize| (keys.start + j) * p.heads_kv + p.kv_head(h);
        let q = &self.q[self.row * d..][..d];
        scores.clear();
        scores.extend(
            visible
                .clone()
                .map(|j| scorer.score(dot(q, &self.k[kv_row(j) * d..][..d]))),
        );
        let Some(max) = scores.iter().copied().reduce(W::max) else {
            return W::NEG_INFINITY;
        };
        let mut sum = W::ZERO;
        for (j, &s) in visible.zip(scores.iter()) {
            let w = (s - max).exp();
            sum += w;
            axpy(out, w, &self.v[kv_row(j) * dv..][..dv]);
        }
        for o in out.iter_mut() {
            *o = *o / sum;
        }
        max + sum.ln()
    }
}
