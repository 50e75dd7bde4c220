//! The validated shape of one attention problem, as the reference loops see
//! it: packed `[token, head, dim]` rows, sequences located by [`Seqlens`].

use super::seqlen::Seqlens;
use crate::attention::ScoreParams;

/// Shapes and score parameters, all validated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    pub seqlens: Seqlens,
    pub heads_q: usize,
    pub heads_kv: usize,
    pub head_dim: usize,
    pub head_dim_v: usize,
    pub params: ScoreParams,
}

impl Problem {
    /// Query heads per key/value head (GQA group size).
    pub fn group(&self) -> usize {
        self.heads_q / self.heads_kv
    }

    /// The key/value head query head `h` reads.
    pub fn kv_head(&self, h: usize) -> usize {
        h / self.group()
    }

    /// Rows of `out` / `lse` / `dq`: one per (query token, query head).
    pub fn q_rows(&self) -> usize {
        self.seqlens.total_q() * self.heads_q
    }

    /// Rows of `dk` / `dv`: one per (key token, key/value head).
    pub fn k_rows(&self) -> usize {
        self.seqlens.total_k() * self.heads_kv
    }

    /// An upper bound of the host memory a CPU computation of this problem
    /// holds at once, with `acc`-byte values: packed `q`, `k`, `v` (and
    /// `out`, `dout`, `dq`, `dk`, `dv` for a backward) and per-row values.
    /// Validation keeps every tensor's element count within i64, so the
    /// row counts fit; the sum is taken in u128.
    pub fn host_bytes(&self, acc: usize, backward: bool) -> u128 {
        let (q, k) = (self.q_rows() as u128, self.k_rows() as u128);
        let (d, dv) = (self.head_dim as u128, self.head_dim_v as u128);
        let inputs = q * d + k * d + k * dv;
        let values = if backward {
            // + out, dout, dq, dk, dv; per row: lse twice and delta.
            inputs + 2 * q * dv + q * d + k * d + k * dv + 3 * q
        } else {
            // + out; per row: lse twice.
            inputs + q * dv + 2 * q
        };
        // Plus one index per row for the lse layout.
        values * acc as u128 + q * size_of::<usize>() as u128
    }
}
