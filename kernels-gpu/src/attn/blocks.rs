//! Which key blocks a query block visits, and which of them need the
//! per-element mask (FA3 `hopper/block.h`: masks only where needed).

use super::mask::MaskSpec;

/// Key blocks `[min, max)` that hold any key visible to queries
/// `m_start .. m_start + rows` (empty when `min >= max`).
#[inline(always)]
pub fn key_blocks(spec: &MaskSpec, m_start: u32, rows: u32, block_n: u32) -> (u32, u32) {
    let n = block_n as i64;
    let mut max = (spec.seqlen_k as i64 + n - 1) / n;
    let last_row = m_start as i64 + rows as i64 - 1;
    if spec.right >= 0 {
        let last_key = last_row + spec.offset() + spec.right as i64;
        max = max.min(if last_key < 0 { 0 } else { last_key / n + 1 });
    }
    let mut min = 0;
    if spec.left >= 0 {
        let first_key = m_start as i64 + spec.offset() - spec.left as i64;
        min = if first_key <= 0 { 0 } else { first_key / n };
    }
    (min as u32, max.max(min) as u32)
}

/// True unless every (query, key) of the block pair is visible, which is
/// when the per-element mask can be skipped.
#[inline(always)]
pub fn needs_mask(spec: &MaskSpec, m_start: u32, rows: u32, n_block: u32, block_n: u32) -> bool {
    let first_key = n_block as i64 * block_n as i64;
    let last_key = first_key + block_n as i64 - 1;
    let (first_row, last_row) = (m_start as i64, m_start as i64 + rows as i64 - 1);
    last_key >= spec.seqlen_k as i64
        || (spec.right >= 0 && last_key > first_row + spec.offset() + spec.right as i64)
        || (spec.left >= 0 && first_key < last_row + spec.offset() - spec.left as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every visible pair lies in a visited block; blocks outside the range
    /// hold no visible pair; blocks declared mask-free are fully visible.
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
                                if (min..max).contains(&nb)
                                    && !needs_mask(&spec, m_start, 128, nb, block_n)
                                {
                                    let all = (m_start..m_start + 128).all(|i| {
                                        (nb * block_n..(nb + 1) * block_n)
                                            .all(|j| spec.visible(i, j))
                                    });
                                    assert!(all, "{spec:?} m {m_start} n {nb} skipped its mask");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
