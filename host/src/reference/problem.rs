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
}
