//! Where each sequence of a batch lives in the packed token dimension (FA3's
//! `hopper/seqlen.h`): fixed-length batches are the special case of equal
//! lengths, so one code path serves both.

use std::ops::Range;

/// Token offsets of each sequence's queries and keys in the packed tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seqlens {
    /// `batch` sequences of `q` queries and `k` keys (nothing allocated, so
    /// a huge batch of empty sequences costs nothing).
    Fixed { batch: usize, q: usize, k: usize },
    /// `batch + 1` non-decreasing offsets from 0 each; sequence `b`'s
    /// queries are the packed tokens `q[b]..q[b + 1]`, its keys likewise.
    Packed { q: Vec<usize>, k: Vec<usize> },
}

impl Seqlens {
    /// `batch` sequences of `seqlen_q` queries and `seqlen_k` keys. The
    /// caller has checked that `batch · seqlen` fits (the tensors exist).
    pub fn fixed(batch: usize, seqlen_q: usize, seqlen_k: usize) -> Self {
        Self::Fixed {
            batch,
            q: seqlen_q,
            k: seqlen_k,
        }
    }

    /// From validated cumulative offsets (same length, non-decreasing, from 0).
    pub fn packed(cu_q: Vec<usize>, cu_k: Vec<usize>) -> Self {
        Self::Packed { q: cu_q, k: cu_k }
    }

    pub fn batch(&self) -> usize {
        match self {
            Self::Fixed { batch, .. } => *batch,
            Self::Packed { q, .. } => q.len().saturating_sub(1),
        }
    }

    pub fn total_q(&self) -> usize {
        match self {
            Self::Fixed { batch, q, .. } => batch * q,
            Self::Packed { q, .. } => q.last().copied().unwrap_or(0),
        }
    }

    pub fn total_k(&self) -> usize {
        match self {
            Self::Fixed { batch, k, .. } => batch * k,
            Self::Packed { k, .. } => k.last().copied().unwrap_or(0),
        }
    }

    /// Packed query tokens of sequence `b`.
    pub fn q_tokens(&self, b: usize) -> Range<usize> {
        match self {
            Self::Fixed { q, .. } => b * q..(b + 1) * q,
            Self::Packed { q, .. } => q[b]..q[b + 1],
        }
    }

    /// Packed key tokens of sequence `b`.
    pub fn k_tokens(&self, b: usize) -> Range<usize> {
        match self {
            Self::Fixed { k, .. } => b * k..(b + 1) * k,
            Self::Packed { k, .. } => k[b]..k[b + 1],
        }
    }

    /// The sequence of packed query token `t` (`t < total_q`) and its
    /// position in it.
    pub fn locate_q(&self, t: usize) -> (usize, usize) {
        match self {
            Self::Fixed { q, .. } => (t / q, t % q),
            Self::Packed { q, .. } => locate(q, t),
        }
    }

    /// The sequence of packed key token `t` (`t < total_k`) and its
    /// position in it.
    pub fn locate_k(&self, t: usize) -> (usize, usize) {
        match self {
            Self::Fixed { k, .. } => (t / k, t % k),
            Self::Packed { k, .. } => locate(k, t),
        }
    }
}

/// The last sequence starting at or before `t` holds it (empty sequences
/// share their start with the next one, so "last" skips them).
fn locate(starts: &[usize], t: usize) -> (usize, usize) {
    let b = starts.partition_point(|&s| s <= t) - 1;
    (b, t - starts[b])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_located_past_empty_sequences() {
        let s = Seqlens::packed(vec![0, 0, 3, 3, 5], vec![0, 2, 2, 4, 4]);
        assert_eq!(s.batch(), 4);
        assert_eq!((s.total_q(), s.total_k()), (5, 4));
        assert_eq!(s.locate_q(0), (1, 0));
        assert_eq!(s.locate_q(2), (1, 2));
        assert_eq!(s.locate_q(3), (3, 0));
        assert_eq!(s.locate_k(1), (0, 1));
        assert_eq!(s.locate_k(2), (2, 0));
        assert_eq!(s.q_tokens(2), 3..3);
    }

    #[test]
    fn fixed_lengths_are_evenly_spaced() {
        let s = Seqlens::fixed(3, 4, 2);
        assert_eq!((s.batch(), s.total_q(), s.total_k()), (3, 12, 6));
        assert_eq!(s.q_tokens(2), 8..12);
        assert_eq!(s.k_tokens(2), 4..6);
        assert_eq!(s.locate_q(9), (2, 1));
    }
}

#[cfg(test)]
mod empty {
    use super::*;

    #[test]
    fn a_huge_batch_of_empty_sequences_allocates_nothing() {
        let s = Seqlens::fixed(1 << 62, 0, 0);
        assert_eq!((s.total_q(), s.total_k()), (0, 0));
    }
}
