//! Which key blocks a query block visits, and which of them can skip the
//! per-element mask (FA3 `hopper/block.h`: masks only where needed).

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every visible pair lies in a visited block; blocks outside the range
    /// hold no visible pair; a block is mask-free exactly when it is fully
    /// visible.
    #[test]
    fn agrees_with_brute_force() {
        let bounds = [-1i32, 0, 1, 7, 100];
        for (sq, sk) in [
            (1, 1),
            (5, 300),
            (300, 5),
            (129, 260),
            (256, 256),
            (300, 299),
        ] {
            for &left in &bounds {
                for &right in &bounds {
                    let spec = MaskSpec {
                        seqlen_q: sq,
                        seqlen_k: sk,
                        left,
                        right,
                    };
                    for block_n in [80, 128] {
                        for m_start in (0..sq).step_by(128) {
                            let rows = 128.min(sq - m_start).max(1);
                            let (min, max) = key_blocks(&spec, m_start, 128, block_n);
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
                                let (lo, hi) = unmasked_blocks(&spec, m_start, 128, block_n);
                                assert_eq!(
                                    (lo..hi).contains(&nb),
                                    all,
                                    "{spec:?} m {m_start} n {nb}: mask-free iff fully visible"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
