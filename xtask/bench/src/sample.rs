//! The part of a problem a check recomputes on the CPU: batch 0, the query
//! heads of key/value head 0, and the last query rows.
//!
//! The last rows with every key are a problem of their own: with the
//! bottom-right causal mask, row `i` of `r` sees keys `j <= i + s_k - r`,
//! exactly what it sees in the full problem, and a row's output, lse and
//! dq depend on no other row. dk and dv need every row.

use crate::grid::Config;

/// Sequences up to this length are checked whole (dk and dv included).
const WHOLE_UP_TO: usize = 1024;
/// Query rows checked of longer sequences.
const LAST_ROWS: usize = 128;

/// Which rows and heads are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    rows: usize,
    heads: usize,
}

impl Sample {
    pub fn of(c: &Config) -> Self {
        Self {
            rows: if c.seqlen_q <= WHOLE_UP_TO {
                c.seqlen_q
            } else {
                LAST_ROWS
            },
            heads: c.group(),
        }
    }

    /// Whether every query row is in the sample (then dk and dv are exact).
    pub fn all_rows(&self, c: &Config) -> bool {
        self.rows == c.seqlen_q
    }

    pub fn q_shape(&self, c: &Config) -> [usize; 4] {
        [1, self.rows, self.heads, c.head_dim]
    }

    pub fn kv_shape(&self, c: &Config) -> [usize; 4] {
        [1, c.seqlen_k, 1, c.head_dim]
    }

    /// The sample of a `(batch, seqlen_q, heads_q, head_dim)` tensor.
    pub fn queries<T: Copy>(&self, x: &[T], c: &Config) -> Vec<T> {
        rows_of(x, c.seqlen_q, c.heads_q, c.head_dim, self.rows, self.heads)
    }

    /// The sample of a `(batch, seqlen_k, heads_kv, head_dim)` tensor.
    pub fn keys<T: Copy>(&self, x: &[T], c: &Config) -> Vec<T> {
        rows_of(x, c.seqlen_k, c.heads_kv, c.head_dim, c.seqlen_k, 1)
    }

    /// The sample of a `(batch, heads_q, seqlen_q)` lse.
    pub fn lse(&self, x: &[f32], c: &Config) -> Vec<f32> {
        (0..self.heads)
            .flat_map(|h| {
                let end = (h + 1) * c.seqlen_q;
                &x[end - self.rows..end]
            })
            .copied()
            .collect()
    }

    pub fn describe(&self, c: &Config) -> String {
        format!(
            "batch 0, query heads 0..{} (kv head 0), query rows {}..{}",
            self.heads,
            c.seqlen_q - self.rows,
            c.seqlen_q
        )
    }
}

/// Batch 0, the last `rows` rows, the first `heads` heads of a row-major
/// `(batch, seqlen, all_heads, dim)` tensor, as `(1, rows, heads, dim)`.
fn rows_of<T: Copy>(
    x: &[T],
    seqlen: usize,
    all_heads: usize,
    dim: usize,
    rows: usize,
    heads: usize,
) -> Vec<T> {
    let mut sample = Vec::with_capacity(rows * heads * dim);
    for row in seqlen - rows..seqlen {
        let start = row * all_heads * dim;
        sample.extend_from_slice(&x[start..start + heads * dim]);
    }
    sample
}

/// One line for the JSON: what was checked and how close it was, or the
/// first check that failed.
pub fn verdict(
    s: &Sample,
    c: &Config,
    checks: Vec<Result<String, String>>,
) -> Result<String, String> {
    let where_ = s.describe(c);
    let passed = checks
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("wrong result ({where_}): {e}"))?;
    Ok(format!(
        "FA3 accuracy rule on {where_}: {}",
        passed.join("; ")
    ))
}

/// FP8: FA3 rounds the probabilities to e4m3 (3 mantissa bits, relative
/// error up to 2^-4) before `P·V`, so each output may be off by
/// `2^-4 · max|v|`, plus `2^-8 · max|v|` for rounding `out` to bf16.
pub fn fp8_verdict(
    s: &Sample,
    c: &Config,
    got: &[f64],
    exact: &[f64],
    v: &[f64],
) -> Result<String, String> {
    let max_v = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let bound = (2f64.powi(-4) + 2f64.powi(-8)) * max_v;
    let error = got
        .iter()
        .zip(exact)
        .map(|(g, e)| (g - e).abs())
        .fold(0.0f64, |m, d| {
            if d.is_nan() || m.is_nan() {
                f64::NAN
            } else {
                m.max(d)
            }
        });
    let line =
        format!("out: max|got − ref| = {error:.3e}, bound (2^-4 + 2^-8)·max|v| = {bound:.3e}");
    if got.len() == exact.len() && error <= bound {
        Ok(format!("FP8 bound on {}: {line}", s.describe(c)))
    } else {
        Err(format!("wrong result ({}): {line}", s.describe(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Dtype, Pass};

    fn config(seqlen: usize, heads_q: usize, heads_kv: usize) -> Config {
        Config {
            dtype: Dtype::Bf16,
            pass: Pass::Fwd,
            head_dim: 2,
            causal: true,
            seqlen_q: seqlen,
            seqlen_k: seqlen,
            batch: 2,
            heads_q,
            heads_kv,
        }
    }

    #[test]
    fn short_sequences_are_checked_whole() {
        let c = config(8, 4, 2);
        let s = Sample::of(&c);
        assert!(s.all_rows(&c));
        assert_eq!(s.q_shape(&c), [1, 8, 2, 2]);
        let long = config(4096, 4, 2);
        assert!(!Sample::of(&long).all_rows(&long));
        assert_eq!(Sample::of(&long).q_shape(&long), [1, 128, 2, 2]);
    }

    #[test]
    fn gathers_batch_0_last_rows_and_the_first_group() {
        let c = config(4, 4, 2);
        let s = Sample { rows: 2, heads: 2 };
        // Element value = its flat index in (batch 2, seqlen 4, heads 4, dim 2).
        let q: Vec<usize> = (0..2 * 4 * 4 * 2).collect();
        // Rows 2 and 3 of batch 0, heads 0 and 1: 8 elements per row.
        assert_eq!(s.queries(&q, &c), [16, 17, 18, 19, 24, 25, 26, 27]);
        // k (batch 2, seqlen 4, heads_kv 2, dim 2): kv head 0 of every row.
        let k: Vec<usize> = (0..2 * 4 * 2 * 2).collect();
        assert_eq!(s.keys(&k, &c), [0, 1, 4, 5, 8, 9, 12, 13]);
        // lse (batch 2, heads 4, seqlen 4): heads 0 and 1, rows 2 and 3.
        let lse: Vec<f32> = (0..2 * 4 * 4).map(|i| i as f32).collect();
        assert_eq!(s.lse(&lse, &c), [2.0, 3.0, 6.0, 7.0]);
        assert_eq!(
            s.describe(&c),
            "batch 0, query heads 0..2 (kv head 0), query rows 2..4"
        );
    }

    #[test]
    fn verdicts() {
        let c = config(4, 1, 1);
        let s = Sample::of(&c);
        let ok = verdict(&s, &c, vec![Ok("out: fine".into()), Ok("lse: fine".into())]);
        assert_eq!(
            ok.unwrap(),
            "FA3 accuracy rule on batch 0, query heads 0..1 (kv head 0), query rows 0..4: out: fine; lse: fine"
        );
        let bad = verdict(&s, &c, vec![Ok("out: fine".into()), Err("lse: off".into())]);
        assert!(bad.unwrap_err().starts_with("wrong result (batch 0"));
        let v = [2.0, -4.0];
        assert!(fp8_verdict(&s, &c, &[1.0, 1.2], &[1.0, 1.0], &v).is_ok());
        assert!(fp8_verdict(&s, &c, &[1.0, 1.3], &[1.0, 1.0], &v).is_err());
        assert!(fp8_verdict(&s, &c, &[f64::NAN, 1.0], &[1.0, 1.0], &v).is_err());
    }
}
