//! V transposed for the FP8 P·V GEMM (e4m3 wgmma reads B K-major only, so
//! V's keys must be contiguous): a `keys x head_dim` e4m3 tile as TMA
//! writes it (128-byte rows, 128-byte swizzle) becomes a `head_dim x keys`
//! tile in the same format, each 32-key block in the order P's packing
//! needs (`fragment::fp8_key_of_k`).
//!
//! The work is cut into 4 x 4-byte blocks: block `(g, a)` moves head dims
//! `4g..4g + 4` of the four keys that land at positions `4a..4a + 4` of the
//! transposed rows (four 4-byte loads, a byte transpose, four 4-byte
//! stores).

use super::fragment::fp8_key_of_k;
use super::swizzle;

/// Keys (and head dims) of one tile: one 128-byte row of e4m3.
pub const TILE: u32 = 128;
/// 4 x 4-byte blocks per tile.
pub const BLOCKS: u32 = (TILE / 4) * (TILE / 4);

/// The keys block `block` reads, in the order their bytes land in each
/// transposed word, and its head-dim group `g` (head dims `4g..4g + 4`)
/// and position word `a` (positions `4a..4a + 4`).
#[inline(always)]
pub const fn block(block: u32) -> ([u32; 4], u32, u32) {
    let (g, a) = (block / (TILE / 4), block % (TILE / 4));
    let (first, k) = (32 * (a / 8), 4 * (a % 8));
    (
        [
            first + fp8_key_of_k(k),
            first + fp8_key_of_k(k + 1),
            first + fp8_key_of_k(k + 2),
            first + fp8_key_of_k(k + 3),
        ],
        g,
        a,
    )
}

/// Byte offset, in a swizzled tile of 128-byte rows, of the 4-byte word
/// `word` (0..32) of row `row`.
#[inline(always)]
pub const fn word_offset(row: u32, word: u32) -> u32 {
    swizzle::offset(row, 4 * word)
}

/// The 4 x 4 byte transpose: byte `j` of word `i` becomes byte `i` of word
/// `j` (row `i` of keys, column `j` of head dims).
#[inline(always)]
pub fn transpose_bytes(w: [u32; 4]) -> [u32; 4] {
    let byte = |i: usize, j: u32| (w[i] >> (8 * j)) & 0xff;
    let column = |j: u32| byte(0, j) | byte(1, j) << 8 | byte(2, j) << 16 | byte(3, j) << 24;
    [column(0), column(1), column(2), column(3)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Running the blocks over a swizzled tile gives Vᵀ with each 32-key
    /// block in `fp8_key_of_k` order, every byte written once.
    #[test]
    fn blocks_transpose_the_tile_in_the_packing_key_order() {
        let v = |key: u32, dim: u32| ((key * 7 + dim * 13) % 251) as u8;
        let mut src = vec![0u8; (TILE * TILE) as usize];
        for key in 0..TILE {
            for dim in 0..TILE {
                src[swizzle::offset(key, dim) as usize] = v(key, dim);
            }
        }
        let word = |mem: &[u8], at: u32| {
            u32::from_le_bytes(mem[at as usize..at as usize + 4].try_into().unwrap())
        };
        let mut dst = vec![0u8; src.len()];
        let mut written = vec![false; src.len()];
        for b in 0..BLOCKS {
            let (keys, g, a) = block(b);
            let loaded = keys.map(|key| word(&src, word_offset(key, g)));
            for (j, w) in transpose_bytes(loaded).into_iter().enumerate() {
                let at = word_offset(4 * g + j as u32, a) as usize;
                for (k, byte) in w.to_le_bytes().into_iter().enumerate() {
                    assert!(!written[at + k], "byte {} twice", at + k);
                    written[at + k] = true;
                    dst[at + k] = byte;
                }
            }
        }
        assert!(written.iter().all(|&w| w));
        for dim in 0..TILE {
            for pos in 0..TILE {
                let key = 32 * (pos / 32) + fp8_key_of_k(pos % 32);
                assert_eq!(
                    dst[swizzle::offset(dim, pos) as usize],
                    v(key, dim),
                    "dim {dim} pos {pos}"
                );
            }
        }
        let keys: Vec<u32> = (0..BLOCKS).flat_map(|b| block(b).0).collect();
        assert_eq!(keys.len(), 4 * BLOCKS as usize);
    }

    #[test]
    fn transpose_bytes_is_the_4x4_transpose() {
        let w = [0x0302_0100, 0x1312_1110, 0x2322_2120, 0x3332_3130];
        assert_eq!(
            transpose_bytes(w),
            [0x3020_1000, 0x3121_1101, 0x3222_1202, 0x3323_1303]
        );
    }
}
