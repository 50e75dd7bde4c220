//! Which keys a query sees: causal and sliding-window masks, bottom-right
//! aligned as in FA3 (`hopper/mask.h`, `hopper/block.h`).
//!
//! Query `i` of a sequence with `seqlen_q` queries and `seqlen_k` keys sits
//! on the diagonal key `i + seqlen_k - seqlen_q`; it sees key `j` iff
//! `diag - left <= j <= diag + right`, a `None` bound being unbounded. Causal
//! is `right = 0`. Arithmetic is in `i128` so no bound can overflow.

use std::ops::Range;

/// A (possibly unbounded) band around the bottom-right aligned diagonal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Mask {
    pub left: Option<usize>,
    pub right: Option<usize>,
}

impl Mask {
    /// The keys query `i` sees (empty when the row is fully masked).
    pub fn keys(&self, i: usize, seqlen_q: usize, seqlen_k: usize) -> Range<usize> {
        let diag = i as i128 + seqlen_k as i128 - seqlen_q as i128;
        let lo = self.left.map_or(0, |left| diag - left as i128);
        let hi = self
            .right
            .map_or(seqlen_k as i128, |right| diag + right as i128 + 1);
        clamp(lo, hi, seqlen_k)
    }

    /// The queries that see key `j` (the inverse of [`Self::keys`]), for the
    /// key-side loops of the backward.
    pub fn queries(&self, j: usize, seqlen_q: usize, seqlen_k: usize) -> Range<usize> {
        // j <= i + off + right  <=>  i >= j - off - right
        // j >= i + off - left   <=>  i <= j - off + left
        let off = seqlen_k as i128 - seqlen_q as i128;
        let j = j as i128;
        let lo = self.right.map_or(0, |right| j - off - right as i128);
        let hi = self
            .left
            .map_or(seqlen_q as i128, |left| j - off + left as i128 + 1);
        clamp(lo, hi, seqlen_q)
    }
}

/// `[lo, hi)` intersected with `[0, len)`.
fn clamp(lo: i128, hi: i128, len: usize) -> Range<usize> {
    let lo = lo.max(0);
    let hi = hi.min(len as i128);
    if lo >= hi {
        0..0
    } else {
        // Both within [0, len] after clamping, so the casts are exact.
        lo as usize..hi as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sees(mask: &Mask, i: usize, j: usize, sq: usize, sk: usize) -> bool {
        let diag = i as i64 + sk as i64 - sq as i64;
        let j = j as i64;
        mask.left.is_none_or(|l| j >= diag - l as i64)
            && mask.right.is_none_or(|r| j <= diag + r as i64)
    }

    #[test]
    fn keys_and_queries_are_the_same_relation() {
        let bounds = [None, Some(0), Some(1), Some(3), Some(100)];
        for left in bounds {
            for right in bounds {
                let mask = Mask { left, right };
                for (sq, sk) in [(1, 1), (5, 5), (3, 7), (7, 3), (4, 0), (0, 4), (6, 1)] {
                    for i in 0..sq {
                        let keys = mask.keys(i, sq, sk);
                        for j in 0..sk {
                            assert_eq!(keys.contains(&j), sees(&mask, i, j, sq, sk));
                            assert_eq!(
                                mask.queries(j, sq, sk).contains(&i),
                                sees(&mask, i, j, sq, sk)
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn causal_is_bottom_right_aligned() {
        let causal = Mask {
            left: None,
            right: Some(0),
        };
        // seqlen_q < seqlen_k: the last query sees every key.
        assert_eq!(causal.keys(1, 2, 5), 0..5);
        assert_eq!(causal.keys(0, 2, 5), 0..4);
        // seqlen_q > seqlen_k: the first queries see nothing.
        assert_eq!(causal.keys(0, 5, 2), 0..0);
        assert_eq!(causal.keys(3, 5, 2), 0..1);
    }

    #[test]
    fn huge_bounds_do_not_overflow() {
        let mask = Mask {
            left: Some(usize::MAX),
            right: Some(usize::MAX),
        };
        assert_eq!(mask.keys(usize::MAX - 1, usize::MAX, 3), 0..3);
        assert_eq!(mask.queries(2, 3, usize::MAX), 0..3);
    }
}
