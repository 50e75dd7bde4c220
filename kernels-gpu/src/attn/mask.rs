//! Which scores are visible: bottom-right aligned causal / sliding window,
//! as FA3 (`hopper/mask.h`). Query `i` sits on key `i + seqlen_k - seqlen_q`
//! and sees key `j` iff `diag - left <= j <= diag + right` (a negative bound
//! means unbounded) and `j < seqlen_k`.

/// The masking problem of one (batch, head) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskSpec {
    pub seqlen_q: u32,
    pub seqlen_k: u32,
    /// Keys visible left of the diagonal; negative = unbounded.
    pub left: i32,
    /// Keys visible right of the diagonal; negative = unbounded (causal: 0).
    pub right: i32,
}

impl MaskSpec {
    /// `seqlen_k - seqlen_q`: the diagonal key of query 0.
    #[inline(always)]
    pub fn offset(&self) -> i64 {
        self.seqlen_k as i64 - self.seqlen_q as i64
    }

    /// True if query `i` sees key `j`.
    #[inline(always)]
    pub fn visible(&self, i: u32, j: u32) -> bool {
        let diag = i as i64 + self.offset();
        let j64 = j as i64;
        j < self.seqlen_k
            && (self.left < 0 || j64 >= diag - self.left as i64)
            && (self.right < 0 || j64 <= diag + self.right as i64)
    }
}

/// The mask of [`MaskSpec`] as a band of key-minus-query differences, so
/// the kernel tests each score with 32-bit arithmetic: query `i` sees key
/// `j` iff `j < seqlen_k` and `lo <= j - i <= hi`. Both indices are below
/// 2^31 (the host refuses longer sequences), so `j - i` fits an i32, and
/// clamping the bounds to i32 changes no comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    pub seqlen_k: u32,
    pub lo: i32,
    pub hi: i32,
}

impl MaskSpec {
    /// The band of this mask.
    #[inline(always)]
    pub fn band(&self) -> Band {
        let clamp = |x: i64| x.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        Band {
            seqlen_k: self.seqlen_k,
            lo: if self.left < 0 {
                i32::MIN
            } else {
                clamp(self.offset() - self.left as i64)
            },
            hi: if self.right < 0 {
                i32::MAX
            } else {
                clamp(self.offset() + self.right as i64)
            },
        }
    }
}

impl Band {
    /// True if query `i` sees key `j` (both below 2^31).
    #[inline(always)]
    pub fn visible(&self, i: u32, j: u32) -> bool {
        // Wrapping: a key past seqlen_k is refused whatever the difference.
        let d = (j as i32).wrapping_sub(i as i32);
        j < self.seqlen_k && d >= self.lo && d <= self.hi
    }

    /// The queries that see key `j`: `first ..= last`, empty (first >
    /// last) past seqlen_k. `visible(i, j)` is `first <= i <= last`, which
    /// a kernel holding few keys per thread (the backward's transposed
    /// scores) tests per element with two compares instead of a
    /// subtraction and three. Saturating: a bound beyond i32 admits every
    /// query or none, as the exact bound would (queries are below 2^31).
    #[inline(always)]
    pub fn queries_seeing(&self, j: u32) -> (i32, i32) {
        if j >= self.seqlen_k {
            return (1, 0);
        }
        let j = j as i32;
        (j.saturating_sub(self.hi), j.saturating_sub(self.lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_is_bottom_right_aligned() {
        let m = MaskSpec {
            seqlen_q: 2,
            seqlen_k: 5,
            left: -1,
            right: 0,
        };
        // Query 0 sits on key 3, query 1 on key 4.
        assert!(m.visible(0, 3) && !m.visible(0, 4));
        assert!(m.visible(1, 4) && m.visible(1, 0));
        let more_q = MaskSpec {
            seqlen_q: 5,
            seqlen_k: 2,
            left: -1,
            right: 0,
        };
        // Query 2 sits on key -1: it sees nothing.
        assert!((0..2).all(|j| !more_q.visible(2, j)));
        assert!(more_q.visible(3, 0) && !more_q.visible(3, 1));
    }

    #[test]
    fn window_bounds_both_sides_and_tail() {
        let m = MaskSpec {
            seqlen_q: 10,
            seqlen_k: 10,
            left: 2,
            right: 1,
        };
        let seen: std::vec::Vec<u32> = (0..12).filter(|&j| m.visible(5, j)).collect();
        assert_eq!(seen, [3, 4, 5, 6]);
        assert!(!m.visible(9, 10), "keys past seqlen_k are never visible");
    }

    /// The masks of small shapes the tests sweep: lengths either way
    /// round, windows from none (-1) to wider than the sequences.
    fn small_masks() -> impl Iterator<Item = MaskSpec> {
        let bounds = [-1i32, 0, 1, 3, 100];
        [(1, 1), (7, 20), (20, 7), (13, 13)]
            .into_iter()
            .flat_map(move |(seqlen_q, seqlen_k)| {
                bounds.into_iter().flat_map(move |left| {
                    bounds.into_iter().map(move |right| MaskSpec {
                        seqlen_q,
                        seqlen_k,
                        left,
                        right,
                    })
                })
            })
    }

    #[test]
    fn band_agrees_with_the_spec() {
        for m in small_masks() {
            let band = m.band();
            for i in 0..m.seqlen_q {
                for j in 0..m.seqlen_k + 5 {
                    assert_eq!(band.visible(i, j), m.visible(i, j), "{m:?} ({i}, {j})");
                }
            }
        }
        // Extreme lengths: the bounds clamp, the difference still fits.
        let long = MaskSpec {
            seqlen_q: 1,
            seqlen_k: i32::MAX as u32,
            left: 0,
            right: 0,
        };
        let band = long.band();
        let last = i32::MAX as u32 - 1;
        assert!(band.visible(0, last) && !band.visible(0, last - 1));
        assert!(!band.visible(0, i32::MAX as u32));
    }

    #[test]
    fn queries_seeing_a_key_are_the_visible_ones() {
        let seen = |band: &Band, i: u32, j: u32| {
            let (first, last) = band.queries_seeing(j);
            first <= i as i32 && i as i32 <= last
        };
        for m in small_masks() {
            let band = m.band();
            for i in 0..m.seqlen_q + 5 {
                for j in 0..m.seqlen_k + 5 {
                    assert_eq!(seen(&band, i, j), band.visible(i, j), "{m:?} ({i}, {j})");
                }
            }
        }
        // Bounds at the i32 limits saturate to "every query" or "none".
        for (sq, sk) in [(i32::MAX as u32, 1), (1, i32::MAX as u32)] {
            for (left, right) in [(-1, -1), (0, 0), (-1, 0), (0, -1)] {
                let m = MaskSpec {
                    seqlen_q: sq,
                    seqlen_k: sk,
                    left,
                    right,
                };
                let band = m.band();
                for i in [0, 1, sq / 2, sq - 1] {
                    for j in [0, 1, sk / 2, sk - 1, sk] {
                        assert_eq!(seen(&band, i, j), band.visible(i, j), "{m:?} ({i}, {j})");
                    }
                }
            }
        }
    }
}
