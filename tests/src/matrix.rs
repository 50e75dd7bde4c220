//! The GPU test matrix the forward and backward issues name: sequence
//! lengths with tails, seqlen_q != seqlen_k and fully masked rows, head
//! layouts with and without GQA, windows with a custom scale.

use fa3::AttentionOptions;

/// (seqlen_q, seqlen_k) pairs: tails, seqlen_q != seqlen_k, fully masked
/// rows (799 queries, 3 keys, causal).
pub const SEQLENS: [(usize, usize); 9] = [
    (1, 1),
    (1, 239),
    (113, 203),
    (128, 217),
    (256, 512),
    (799, 3),
    (1000, 1000),
    (1024, 1023),
    (4224, 4224),
];

/// The reduced matrix's pairs (under the sanitizers).
pub const REDUCED_SEQLENS: [(usize, usize); 3] = [(1, 239), (113, 203), (799, 3)];

/// (heads_q, heads_kv): MHA, GQA, MQA.
pub const HEADS: [(usize, usize); 3] = [(6, 6), (6, 2), (6, 1)];

/// Sliding windows (left, right) with a custom softmax scale.
pub const WINDOWS: [(Option<usize>, Option<usize>, f32); 3] = [
    (Some(17), Some(3), 0.3),
    (Some(0), Some(0), 0.125),
    (None, Some(40), 1.0),
];

/// One problem of the matrix.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub batch: usize,
    pub seqlen_q: usize,
    pub seqlen_k: usize,
    pub heads_q: usize,
    pub heads_kv: usize,
    pub head_dim: usize,
    pub options: AttentionOptions,
}

impl Case {
    pub fn q_shape(&self) -> [usize; 4] {
        [self.batch, self.seqlen_q, self.heads_q, self.head_dim]
    }

    pub fn k_shape(&self) -> [usize; 4] {
        [self.batch, self.seqlen_k, self.heads_kv, self.head_dim]
    }

    pub fn lse_shape(&self) -> [usize; 3] {
        [self.batch, self.heads_q, self.seqlen_q]
    }

    /// What a failure message names.
    pub fn label(&self) -> String {
        format!(
            "b{} sq{} sk{} h{}/{} d{} {:?}",
            self.batch,
            self.seqlen_q,
            self.seqlen_k,
            self.heads_q,
            self.heads_kv,
            self.head_dim,
            self.options
        )
    }
}

/// Every case of the matrix for `head_dim` (the reduced one when
/// `reduced`): both masks over the lengths and head layouts (batch 1 for
/// the long pairs), then the windows.
pub fn cases(head_dim: usize, reduced: bool) -> Vec<Case> {
    let seqlens: &[(usize, usize)] = if reduced { &REDUCED_SEQLENS } else { &SEQLENS };
    let mut cases = Vec::new();
    for causal in [false, true] {
        for &(seqlen_q, seqlen_k) in seqlens {
            for (heads_q, heads_kv) in HEADS {
                cases.push(Case {
                    batch: if seqlen_q * seqlen_k > 1 << 20 { 1 } else { 2 },
                    seqlen_q,
                    seqlen_k,
                    heads_q,
                    heads_kv,
                    head_dim,
                    options: AttentionOptions::new().causal(causal),
                });
            }
        }
    }
    for (left, right, scale) in WINDOWS {
        cases.push(Case {
            batch: 2,
            seqlen_q: 300,
            seqlen_k: 333,
            heads_q: 6,
            heads_kv: 2,
            head_dim,
            options: AttentionOptions::new()
                .window(left, right)
                .softmax_scale(scale),
        });
    }
    cases
}
