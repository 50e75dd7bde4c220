//! FLOPs as FlashAttention counts them: the two matmuls of the forward,
//! 2·d each per attended (query, key) pair, so 4·b·h·s_q·s_k·d without a
//! mask; the backward is 2.5 times the forward (five matmuls to two).

use crate::cli::Pass;

/// How many (query, key) pairs attention computes. Causal masks are
/// bottom-right aligned, as in FA3: query `i` sees key `j` when `j <= i +
/// s_k - s_q`. For `s_q = s_k = s` that is `s(s + 1)/2`, the "halved"
/// count up to the diagonal.
pub fn attended_pairs(seqlen_q: usize, seqlen_k: usize, causal: bool) -> u128 {
    let (q, k) = (seqlen_q as u128, seqlen_k as u128);
    if !causal {
        return q * k;
    }
    // Row i sees min(s_k, i + 1 + s_k - s_q) keys when positive: the counts
    // run from s_k - s_q + 1 up to s_k, one per row, clipped at 0.
    triangle(k) - triangle(k.saturating_sub(q))
}

fn triangle(n: u128) -> u128 {
    n * (n + 1) / 2
}

/// The forward's FLOPs: 4 per head dimension per attended pair.
pub fn forward_flops(
    batch: usize,
    heads_q: usize,
    seqlen_q: usize,
    seqlen_k: usize,
    head_dim: usize,
    causal: bool,
) -> f64 {
    4.0 * (batch * heads_q * head_dim) as f64 * attended_pairs(seqlen_q, seqlen_k, causal) as f64
}

/// FLOPs of one timed call of `pass`, given the forward's.
pub fn pass_flops(forward: f64, pass: Pass) -> f64 {
    forward
        * match pass {
            Pass::Fwd => 1.0,
            Pass::Bwd => 2.5,
            Pass::Fwdbwd => 3.5,
        }
}

/// TFLOPs/s of `flops` done in `ms` milliseconds.
pub fn tflops_per_s(flops: f64, ms: f64) -> f64 {
    flops / (ms * 1e-3) / 1e12
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the pairs one by one with the mask's own rule.
    fn brute_force(seqlen_q: usize, seqlen_k: usize) -> u128 {
        let mut n = 0;
        for i in 0..seqlen_q as i64 {
            for j in 0..seqlen_k as i64 {
                if j <= i + seqlen_k as i64 - seqlen_q as i64 {
                    n += 1;
                }
            }
        }
        n
    }

    #[test]
    fn causal_counts_match_the_mask_pair_by_pair() {
        for (sq, sk) in [
            (1, 1),
            (5, 5),
            (3, 8),
            (8, 3),
            (7, 1),
            (1, 7),
            (64, 100),
            (100, 64),
            (0, 4),
            (4, 0),
        ] {
            assert_eq!(
                attended_pairs(sq, sk, true),
                brute_force(sq, sk),
                "s_q {sq} s_k {sk}"
            );
            assert_eq!(attended_pairs(sq, sk, false), (sq * sk) as u128);
        }
    }

    #[test]
    fn square_causal_is_half_plus_the_diagonal() {
        assert_eq!(attended_pairs(4096, 4096, true), 4096 * 4097 / 2);
    }

    #[test]
    fn fa_counts() {
        // The FA3 paper's setting: 16k tokens, hidden 2048, hdim 128, seqlen 8k.
        let (b, h, s, d) = (2, 16, 8192, 128);
        let fwd = forward_flops(b, h, s, s, d, false);
        assert_eq!(fwd, 4.0 * (b * h * s * s * d) as f64);
        let causal = forward_flops(b, h, s, s, d, true);
        assert_eq!(causal, 4.0 * (b * h * d) as f64 * (s * (s + 1) / 2) as f64);
        assert_eq!(pass_flops(fwd, Pass::Bwd), 2.5 * fwd);
        assert_eq!(pass_flops(fwd, Pass::Fwdbwd), 3.5 * fwd);
        assert_eq!(pass_flops(fwd, Pass::Fwd), fwd);
        // 1e12 FLOPs in 2 ms: 500 TFLOPs/s.
        assert!((tflops_per_s(1e12, 2.0) - 500.0).abs() < 1e-9);
    }
}
