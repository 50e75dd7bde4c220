//! Which key blocks a query block visits, which query blocks a key block
//! is visited by (the backward's direction), and which of them can skip the
//! per-element mask (FA3 `hopper/block.h`, `BlockMN`: masks only where
//! needed).

use super::mask::MaskSpec;

/// Key blocks `[min, max)` that hold any key visible to queries
/// `m_start .. m_start + rows` (empty when `min >= max`).
///
/// Key indices are clamped to `0..=seqlen_k` before dividing, so every
/// division is a 32-bit one: ptxas turns a 64-bit division into a
/// subroutine call (`CALL.REL.NOINC`).
#[inline(always)]
pub fn key_blocks(spec: &MaskSpec, m_start: u32, rows: u32, block_n: u32) -> (u32, u32) {
    let seqlen_k = spec.seqlen_k as i64;
    // A key index in 0..=seqlen_k as u32 (seqlen_k < 2^31, so no overflow).
    let clamp = |key: i64| key.clamp(0, seqlen_k) as u32;
    let all = spec.seqlen_k.div_ceil(block_n);
    let mut max = all;
    let last_row = m_start as i64 + rows as i64 - 1;
    if spec.right >= 0 {
        let last_key = last_row + spec.offset() + spec.right as i64;
        // Past the last key the bound is `all` anyway.
        max = max.min(if last_key < 0 {
            0
        } else {
            clamp(last_key) / block_n + 1
        });
    }
    let mut min = 0;
    if spec.left >= 0 {
        let first_key = m_start as i64 + spec.offset() - spec.left as i64;
        min = if first_key >= seqlen_k {
            all
        } else {
            clamp(first_key) / block_n
        };
    }
    (min, max.max(min))
}

/// Key blocks `[lo, hi)` in which every (query, key) of queries
/// `m_start .. m_start + rows` is visible: only blocks outside this range
/// need the per-element mask. Computed once per tile, so the mainloop's test
/// is two 32-bit compares (64-bit per-tile values hoisted out of the
/// mainloop would sit in uniform registers through it; they ran out).
#[inline(always)]
pub fn unmasked_blocks(spec: &MaskSpec, m_start: u32, rows: u32, block_n: u32) -> (u32, u32) {
    let seqlen_k = spec.seqlen_k as i64;
    let clamp = |key: i64| key.clamp(0, seqlen_k) as u32;
    // Whole blocks before seqlen_k: last key (n + 1) N - 1 < seqlen_k.
    let mut hi = spec.seqlen_k / block_n;
    if spec.right >= 0 {
        // (n + 1) N - 1 <= first row's last visible key.
        let first_row_end = m_start as i64 + spec.offset() + spec.right as i64 + 1;
        hi = hi.min(clamp(first_row_end) / block_n);
    }
    let mut lo = 0;
    if spec.left >= 0 {
        // n N >= last row's first visible key.
        let last_row_start = m_start as i64 + rows as i64 - 1 + spec.offset() - spec.left as i64;
        lo = clamp(last_row_start).div_ceil(block_n);
    }
    (lo, hi.max(lo))
}

/// Query blocks `[min, max)` that hold any query seeing a key of
/// `n_start .. n_start + cols` (the key blocks of [`key_blocks`], read the
/// other way: what a backward CTA owning a key block iterates over).
/// 32-bit divisions only, as in [`key_blocks`].
#[inline(always)]
pub fn query_blocks(spec: &MaskSpec, n_start: u32, cols: u32, block_m: u32) -> (u32, u32) {
    let seqlen_q = spec.seqlen_q as i64;
    let clamp = |query: i64| query.clamp(0, seqlen_q) as u32;
    let all = spec.seqlen_q.div_ceil(block_m);
    // Keys past seqlen_k are seen by no query.
    let last_key = (n_start as i64 + cols as i64).min(spec.seqlen_k as i64) - 1;
    if last_key < n_start as i64 {
        return (0, 0);
    }
    let mut min = 0;
    if spec.right >= 0 {
        // j <= i + offset + right: the first query that sees key n_start.
        let first_query = n_start as i64 - spec.offset() - spec.right as i64;
        min = if first_query >= seqlen_q {
            all
        } else {
            clamp(first_query) / block_m
        };
    }
    let mut max = all;
    if spec.left >= 0 {
        // j >= i + offset - left: the last query that sees the last key.
        let last_query = last_key + spec.left as i64 - spec.offset();
        max = max.min(if last_query < 0 {
            0
        } else {
            clamp(last_query) / block_m + 1
        });
    }
    (min, max.max(min))
}

/// Query blocks `[lo, hi)` in which every query sees every key of
/// `n_start .. n_start + cols` (and every query and key exists): only query
/// blocks outside this range need the per-element mask in the backward.
#[inline(always)]
pub fn unmasked_query_blocks(spec: &MaskSpec, n_start: u32, cols: u32, block_m: u32) -> (u32, u32) {
    let seqlen_q = spec.seqlen_q as i64;
    let clamp = |query: i64| query.clamp(0, seqlen_q) as u32;
    if n_start as i64 + cols as i64 > spec.seqlen_k as i64 {
        return (0, 0); // the key block runs past seqlen_k
    }
    // Whole query blocks: (m + 1) M - 1 < seqlen_q.
    let mut hi = spec.seqlen_q / block_m;
    let mut lo = 0;
    if spec.right >= 0 {
        // m M >= the first query that sees the block's last key.
        let last_key = n_start as i64 + cols as i64 - 1;
        lo = clamp(last_key - spec.offset() - spec.right as i64).div_ceil(block_m);
    }
    if spec.left >= 0 {
        // (m + 1) M - 1 <= the last query that sees the block's first key.
        let last_query = n_start as i64 + spec.left as i64 - spec.offset();
        hi = hi.min(clamp(last_query + 1) / block_m);
    }
    (lo, hi.max(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Masks over lengths on both sides of the block sizes, with every kind
    /// of window bound (none, 0, 1, 7, 100 on each side).
    fn for_each_spec(mut check: impl FnMut(&MaskSpec)) {
        let bounds = [-1i32, 0, 1, 7, 100];
        for (seqlen_q, seqlen_k) in [
            (1, 1),
            (5, 300),
            (300, 5),
            (129, 260),
            (256, 256),
            (300, 299),
        ] {
            for &left in &bounds {
                for &right in &bounds {
                    check(&MaskSpec {
                        seqlen_q,
                        seqlen_k,
                        left,
                        right,
                    });
                }
            }
        }
    }

    /// The backward's direction: every visible pair lies in a visited
    /// query block, and a query block is mask-free exactly when every
    /// (query, key) in it and the key block is visible.
    #[test]
    fn query_blocks_agree_with_brute_force() {
        for_each_spec(|spec| {
            let (sq, sk) = (spec.seqlen_q, spec.seqlen_k);
            for (block_m, block_n) in [(64, 128), (80, 128), (128, 80)] {
                for n_start in (0..sk).step_by(block_n as usize) {
                    let keys = n_start..(n_start + block_n).min(sk);
                    let (min, max) = query_blocks(spec, n_start, block_n, block_m);
                    let (lo, hi) = unmasked_query_blocks(spec, n_start, block_n, block_m);
                    for mb in 0..sq.div_ceil(block_m) {
                        let queries = mb * block_m..((mb + 1) * block_m).min(sq);
                        let any = queries
                            .clone()
                            .any(|i| keys.clone().any(|j| spec.visible(i, j)));
                        if any {
                            assert!(min <= mb && mb < max, "{spec:?} n {n_start} m {mb}");
                        }
                        let all = (mb * block_m..(mb + 1) * block_m).all(|i| {
                            i < sq && (n_start..n_start + block_n).all(|j| spec.visible(i, j))
                        });
                        assert_eq!(
                            (lo..hi).contains(&mb),
                            all,
                            "{spec:?} n {n_start} m {mb}: mask-free iff fully visible"
                        );
                    }
                    // No visited block is entirely invisible at its ends.
                    assert!(max <= sq.div_ceil(block_m));
                }
            }
        });
    }

    /// Both directions name the same (query block, key block) pairs: the
    /// deterministic backward counts a query block's dQ contributions with
    /// `key_blocks` while each key block visits `query_blocks`; a pair
    /// counted on one side only would make a reduction wait forever.
    #[test]
    fn both_directions_name_the_same_block_pairs() {
        for_each_spec(|spec| {
            for (block_m, block_n) in [(64, 128), (128, 128), (64, 80)] {
                for m in 0..spec.seqlen_q.div_ceil(block_m) {
                    let (n_min, n_max) = key_blocks(spec, m * block_m, block_m, block_n);
                    for n in 0..spec.seqlen_k.div_ceil(block_n) {
                        let (m_min, m_max) = query_blocks(spec, n * block_n, block_n, block_m);
                        assert_eq!(
                            (n_min..n_max).contains(&n),
                            (m_min..m_max).contains(&m),
                            "{spec:?} m {m} n {n} ({block_m} x {block_n})"
                        );
                    }
                }
            }
        });
    }

    /// Every visible pair lies in a visited block; blocks outside the range
    /// hold no visible pair; a block is mask-free exactly when it is fully
    /// visible.
    #[test]
    fn agrees_with_brute_force() {
        for_each_spec(|spec| {
            let (sq, sk) = (spec.seqlen_q, spec.seqlen_k);
            for block_n in [80, 128] {
                for m_start in (0..sq).step_by(128) {
                    let rows = 128.min(sq - m_start).max(1);
                    let (min, max) = key_blocks(spec, m_start, 128, block_n);
                    for nb in 0..sk.div_ceil(block_n) {
                        let keys = nb * block_n..((nb + 1) * block_n).min(sk);
                        let any = (m_start..m_start + rows)
                            .any(|i| keys.clone().any(|j| spec.visible(i, j)));
                        if any {
                            assert!(min <= nb && nb < max, "{spec:?} m {m_start} n {nb}");
                        }
                        let all = (m_start..m_start + 128).all(|i| {
                            (nb * block_n..(nb + 1) * block_n).all(|j| spec.visible(i, j))
                        });
                        let (lo, hi) = unmasked_blocks(spec, m_start, 128, block_n);
                        assert_eq!(
                            (lo..hi).contains(&nb),
                            all,
                            "{spec:?} m {m_start} n {nb}: mask-free iff fully visible"
                        );
                    }
                }
            }
        });
    }
}
