//! The 128-byte swizzle shared by TMA (`CU_TENSOR_MAP_SWIZZLE_128B`) and
//! wgmma (descriptor swizzle mode 1), and the 64-byte one (`_64B`, mode 2)
//! of tiles whose rows are 64 bytes (e4m3 at head_dim 64).
//!
//! Rows of 128 bytes are stored as eight 16-byte chunks; chunk `c` of row `r`
//! lands at chunk position `c ^ (r % 8)`. The pattern repeats every 8 rows
//! (1024 bytes), so swizzled tiles must start 1024-byte aligned. Both
//! swizzles XOR an address's 16-byte chunk bits (4-6, or 4-5 for 64 bytes)
//! with its bits 7-9 (7-8): with 64-byte rows, chunk `c` of row `r` lands
//! at `c ^ ((r / 2) % 4)`, repeating every 8 rows (512 bytes).

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

/// Bytes in one row of the 64-byte swizzle.
pub const ROW_BYTES_64: u32 = 64;

/// Byte offset, inside a region with the 64-byte swizzle, of logical byte
/// `byte` (0..64) of row `row`.
#[inline(always)]
pub const fn offset_64(row: u32, byte: u32) -> u32 {
    let chunk = (byte / 16) ^ ((row / 2) % 4);
    row * ROW_BYTES_64 + chunk * 16 + byte % 16
}

/// Bytes of the swizzled row segments a tensor row of `row_bytes` bytes is
/// stored in (TMA's inner box, a tile's column block): its 64 bytes with
/// the 64-byte swizzle, else 128 with the 128-byte one. Kernels and host
/// (the tensor maps) both take it from here.
#[inline(always)]
pub const fn segment_bytes(row_bytes: u32) -> u32 {
    if row_bytes == ROW_BYTES_64 {
        ROW_BYTES_64
    } else {
        ROW_BYTES
    }
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

    /// The 64-byte swizzle is the 128-byte one's address rule on 64-byte
    /// rows: chunk bits 4-5 XOR address bits 7-8.
    #[test]
    fn the_64_byte_swizzle_xors_chunk_bits_with_address_bits_7_and_8() {
        let mut seen = [false; 512];
        for row in 0..8 {
            for byte in 0..ROW_BYTES_64 {
                let linear = row * ROW_BYTES_64 + byte;
                let want = linear ^ (((linear >> 7) & 3) << 4);
                let o = offset_64(row, byte);
                assert_eq!(o, want);
                assert!(!seen[o as usize]);
                seen[o as usize] = true;
            }
        }
        // The 128-byte rule stated the same way.
        for row in 0..8 {
            for byte in 0..ROW_BYTES {
                let linear = row * ROW_BYTES + byte;
                assert_eq!(offset(row, byte), linear ^ (((linear >> 7) & 7) << 4));
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
