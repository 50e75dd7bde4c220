//! An independent attention in `f64`, the textbook way: the full score
//! matrix of each (batch, head), an explicit mask, a softmax over each row.
//! The reference is checked against it.

/// Shapes (row-major, contiguous) and options of one fixed-length problem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Problem {
    pub batch: usize,
    pub seqlen_q: usize,
    pub seqlen_k: usize,
    pub heads_q: usize,
    pub heads_kv: usize,
    pub head_dim: usize,
    pub head_dim_v: usize,
    pub scale: f64,
    /// 0 = off.
    pub softcap: f64,
    /// Window bounds around the bottom-right diagonal; causal is `right = Some(0)`.
    pub left: Option<usize>,
    pub right: Option<usize>,
}

impl Problem {
    /// FA3's mask: query `i` sees key `j` iff
    /// `i + sk − sq − left ≤ j ≤ i + sk − sq + right`.
    pub fn visible(&self, i: usize, j: usize) -> bool {
        let diag = i as i64 + self.seqlen_k as i64 - self.seqlen_q as i64;
        let j = j as i64;
        self.left.is_none_or(|l| j >= diag - l as i64)
            && self.right.is_none_or(|r| j <= diag + r as i64)
    }
}

/// `out` `(batch, seqlen_q, heads_q, head_dim_v)` and `lse` `(batch,
/// heads_q, seqlen_q)` of row-major `q`, `k`, `v`.
pub fn forward(p: &Problem, q: &[f64], k: &[f64], v: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (sq, sk, hq, hkv, d, dv) = (
        p.seqlen_q,
        p.seqlen_k,
        p.heads_q,
        p.heads_kv,
        p.head_dim,
        p.head_dim_v,
    );
    let q_at = |b: usize, i: usize, h: usize| &q[((b * sq + i) * hq + h) * d..][..d];
    let k_at = |b: usize, j: usize, g: usize| &k[((b * sk + j) * hkv + g) * d..][..d];
    let v_at = |b: usize, j: usize, g: usize| &v[((b * sk + j) * hkv + g) * dv..][..dv];
    let mut out = vec![0.0; p.batch * sq * hq * dv];
    let mut lse = vec![0.0; p.batch * hq * sq];
    for b in 0..p.batch {
        for h in 0..hq {
            let g = h / (hq / hkv);
            // The score matrix, masked entries -inf.
            let scores: Vec<Vec<f64>> = (0..sq)
                .map(|i| {
                    (0..sk)
                        .map(|j| {
                            if !p.visible(i, j) {
                                return f64::NEG_INFINITY;
                            }
                            let qk: f64 = q_at(b, i, h)
                                .iter()
                                .zip(k_at(b, j, g))
                                .map(|(a, b)| a * b)
                                .sum();
                            let s = p.scale * qk;
                            if p.softcap > 0.0 {
                                p.softcap * (s / p.softcap).tanh()
                            } else {
                                s
                            }
                        })
                        .collect()
                })
                .collect();
            for (i, row) in scores.iter().enumerate() {
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse_at = &mut lse[(b * hq + h) * sq + i];
                if max == f64::NEG_INFINITY {
                    *lse_at = f64::NEG_INFINITY;
                    continue;
                }
                let sum: f64 = row.iter().map(|s| (s - max).exp()).sum();
                *lse_at = max + sum.ln();
                let o = &mut out[((b * sq + i) * hq + h) * dv..][..dv];
                for (j, s) in row.iter().enumerate() {
                    let prob = (s - max).exp() / sum;
                    for (o, x) in o.iter_mut().zip(v_at(b, j, g)) {
                        *o += prob * x;
                    }
                }
            }
        }
    }
    (out, lse)
}
