//! The 128-byte swizzle shared by TMA (`CU_TENSOR_MAP_SWIZZLE_128B`) and
//! wgmma (descriptor swizzle mode 1).
//!
//! Rows of 128 bytes are stored as eight 16-byte chunks; chunk `c` of row `r`
//! lands at chunk position `c ^ (r % 8)`. The pattern repeats every 8 rows
//! (1024 bytes), so swizzled tiles must start 1024-byte aligned.

/// Bytes in one swizzled row.
pub const ROW_BYTES: u32 = 128;
/// Bytes after which the pattern repeats (8 rows).
pub const ATOM_BYTES: u32 = 8 * ROW_BYTES;

/// Byte offset, inside a swizzled region, of logical byte `byte` (0..128) of
/// row `row`.
pub const fn offset(row: u32, byte: u32) -> u32 {
    let chunk = (byte / 16) ^ (row % 8);
    row * ROW_BYTES + chunk * 16 + byte % 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_permutation_of_each_atom() {
        let mut seen = [false; ATOM_BYTES as usize];
        for row in 0..8 {
            for byte in 0..ROW_BYTES {
                let o = offset(row, byte) as usize;
                assert!(!seen[o]);
                seen[o] = true;
            }
        }
    }

    #[test]
    fn matches_the_measured_tma_placement() {
        // hopper-notes.md: chunk c of row r lands at chunk c XOR (r mod 8).
        assert_eq!(offset(0, 16), 16);
        assert_eq!(offset(1, 0), 128 + 16);
        // chunk 2 of row 3 lands at chunk 2 XOR 3 = 1.
        assert_eq!(offset(3, 2 * 16 + 5), 3 * 128 + 16 + 5);
        assert_eq!(offset(9, 0), 9 * 128 + 16);
    }
}
