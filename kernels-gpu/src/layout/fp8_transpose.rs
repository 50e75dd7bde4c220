//! V transposed for the FP8 P·V GEMM (e4m3 wgmma reads B K-major only, so
//! V's keys must be contiguous): a `keys x head_dim` e4m3 tile as TMA
//! writes it (128-byte rows, 128-byte swizzle) becomes a `head_dim x keys`
//! tile in the same format, each 32-key block in the order P's packing
//! needs (`fragment::fp8_key_of_k`).
//!
//! The work is cut into 4 x 4-byte blocks: block `(g, a)` moves head dims
//! `4g..4g + 4` of the four keys that land at positions `4a..4a + 4` of the
//! transposed rows (four 4-byte loads, a byte transpose, four 4-byte
//! stores). A warp takes 32 blocks at a time ([`warp_block`]), chosen so
//! that its loads and its stores each hit 32 different banks.

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

/// Warp instructions per tile: 32 blocks each.
pub const WARP_STEPS: u32 = BLOCKS / 32;

/// The block lane `lane` of a warp moves at the warp's step `step` (0..32):
/// every block once over the 32 steps, and no bank conflict in a step's
/// loads or stores.
///
/// Why: row `r` of a 128-byte-swizzled tile keeps word `w` in bank `4 ·
/// (w / 4 ^ r % 8) + w % 4`. Block `(g, a)` loads word `g` of key rows
/// whose `r % 8` is `2 · (a % 4) + i % 2` (`fp8_key_of_k`), and stores word
/// `a` of rows `4g + i`. So the loads' banks are distinct when `(g % 4,
/// g / 4 ^ 2 · (a % 4))` is, and the stores' when `(a % 4, a / 4 ^ 4 · (g
/// % 2))` is. Lane bits `x0..x4` give `g = x0 + 2 x1 + 4 x4` and `a = x2 +
/// 2 x3 + 4 x4 + 8 x1` ([`lane_block`]), which makes both pairs take all 32
/// values; being linear over GF(2) with `step` adding (XOR) a complement of
/// it ([`step_delta`]), the 32 steps are the 32 cosets: each block once.
/// (Lanes taking consecutive blocks had 4-way conflicts on every load:
/// 1152 wavefronts per tile instead of 256.)
#[inline(always)]
pub const fn warp_block(step: u32, lane: u32) -> u32 {
    let ((g, a), (dg, da)) = (lane_block(lane), step_delta(step));
    (g ^ dg) * (TILE / 4) + (a ^ da)
}

const fn bit(value: u32, i: u32) -> u32 {
    (value >> i) & 1
}

/// `(g, a)` of lane `lane`'s block at step 0.
#[inline(always)]
pub const fn lane_block(lane: u32) -> (u32, u32) {
    let x = lane;
    (
        bit(x, 0) + 2 * bit(x, 1) + 4 * bit(x, 4),
        bit(x, 2) + 2 * bit(x, 3) + 4 * bit(x, 4) + 8 * bit(x, 1),
    )
}

/// What step `step` XORs into every lane's `(g, a)`: g's bits 1-4 and a's
/// bit 4, the directions [`lane_block`] leaves out.
#[inline(always)]
pub const fn step_delta(step: u32) -> (u32, u32) {
    let y = step;
    (
        2 * bit(y, 3) + 4 * bit(y, 4) + 8 * bit(y, 1) + 16 * bit(y, 2),
        16 * bit(y, 0),
    )
}

/// The byte offsets of lane `lane`'s first load and first store at step 0
/// (in the source and the destination tile); load or store `i` is at that
/// offset XOR [`LOAD_XOR`]`[i]` or [`STORE_XOR`]`[i]`.
#[inline(always)]
pub const fn lane_offsets(lane: u32) -> (u32, u32) {
    let (g, a) = lane_block(lane);
    let (keys, _, _) = block(g * (TILE / 4) + a);
    (word_offset(keys[0], g), word_offset(4 * g, a))
}

/// Load `i` reads key row `keys[0] + i % 2 + 8 (i / 2)` (`fp8_key_of_k`;
/// `keys[0]` has bits 0 and 3 clear): row bit 0 flips 128 bytes and the
/// swizzle's chunk bit 0 (16 bytes), row bit 3 flips 1024 bytes.
pub const LOAD_XOR: [u32; 4] = [0, 144, 1024, 1168];
/// Store `j` writes row `4g + j`: row bits 0-1 (128 bytes each) and the
/// swizzle's chunk bits 0-1 (16 bytes each) flip with `j`.
pub const STORE_XOR: [u32; 4] = [0, 144, 288, 432];

/// What step `step` XORs into every load and every store offset of a lane
/// ([`lane_offsets`]). Each field of an offset sits in its own bits, so XOR
/// on `g` and `a` is XOR on the offset: loads, `row · 128 + (g / 4 ^ row %
/// 8) · 16 + (g % 4) · 4` with `row = 32 (a / 8) + (< 32)`; stores, `(4g +
/// i) · 128 + (a / 4 ^ (4g + i) % 8) · 16 + (a % 4) · 4`, where the deltas
/// leave `row % 8`, `g % 2` and `a % 4` alone.
#[inline(always)]
pub const fn step_masks(step: u32) -> (u32, u32) {
    let (dg, da) = step_delta(step);
    let load = (da / 16) << 13 | (dg % 4) << 2 | (dg / 4) << 4;
    let store = dg << 9 | (da / 16) << 6;
    (load, store)
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

    /// Each block once over the steps; in each step, for each of the four
    /// loads and stores, the 32 lanes' words in 32 different banks.
    #[test]
    fn warp_blocks_cover_the_tile_without_bank_conflicts() {
        let mut seen = vec![false; BLOCKS as usize];
        let banks_distinct = |words: &[u32]| {
            let mut banks: Vec<u32> = words.iter().map(|w| (w / 4) % 32).collect();
            banks.sort_unstable();
            banks.dedup();
            banks.len() == words.len()
        };
        for step in 0..WARP_STEPS {
            let blocks: Vec<_> = (0..32).map(|lane| warp_block(step, lane)).collect();
            for &b in &blocks {
                assert!(!seen[b as usize], "block {b} twice");
                seen[b as usize] = true;
            }
            for i in 0..4 {
                let loads: Vec<u32> = blocks
                    .iter()
                    .map(|&b| {
                        let (keys, g, _) = block(b);
                        word_offset(keys[i], g)
                    })
                    .collect();
                let stores: Vec<u32> = blocks
                    .iter()
                    .map(|&b| {
                        let (_, g, a) = block(b);
                        word_offset(4 * g + i as u32, a)
                    })
                    .collect();
                assert!(banks_distinct(&loads), "step {step}, load {i}");
                assert!(banks_distinct(&stores), "step {step}, store {i}");
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    /// Lane offsets XOR step masks are the offsets of the step's block.
    #[test]
    fn step_masks_move_the_lane_offsets_to_each_steps_block() {
        for lane in 0..32 {
            let (load, store) = lane_offsets(lane);
            for step in 0..WARP_STEPS {
                let (load_mask, store_mask) = step_masks(step);
                let (keys, g, a) = block(warp_block(step, lane));
                for i in 0..4 {
                    let got = load ^ LOAD_XOR[i] ^ load_mask;
                    assert_eq!(got, word_offset(keys[i], g));
                    let got = store ^ STORE_XOR[i] ^ store_mask;
                    assert_eq!(got, word_offset(4 * g + i as u32, a));
                }
            }
        }
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
