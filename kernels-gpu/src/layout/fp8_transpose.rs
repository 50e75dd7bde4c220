//! V transposed for the FP8 P·V GEMM (e4m3 wgmma reads B K-major only, so
//! V's keys must be contiguous): a `keys x head_dims` e4m3 tile as TMA
//! writes it becomes a `head_dims x keys` tile of 128-byte rows (128
//! keys, 128-byte swizzle), each 32-key block in the order P's packing
//! needs (`fragment::fp8_key_of_k`). The source rows are `ROW` bytes: a
//! 128-byte column block of head dims (128-byte swizzle), or the 64 head
//! dims of head_dim 64 (64-byte swizzle).
//!
//! The work is cut into 4 x 4-byte blocks: block `(g, a)` moves head dims
//! `4g..4g + 4` of the four keys that land at positions `4a..4a + 4` of the
//! transposed rows (four 4-byte loads, a byte transpose, four 4-byte
//! stores). A warp takes 32 blocks at a time ([`warp_block`]), chosen so
//! that its stores hit 32 different banks and its loads 32 (128-byte rows)
//! or 16 (64-byte rows: a load's keys have one parity, and a bank's 4 bytes
//! of two rows of one parity are 128 bytes apart, so 16 is the most).

use super::fragment::fp8_key_of_k;
use super::swizzle;

/// Keys of one tile: the 128 bytes of a transposed row.
pub const TILE: u32 = 128;
/// Position words (4 keys each) of a transposed row.
const A_WORDS: u32 = TILE / 4;

/// Head-dim groups (4 head dims each) of a tile whose source rows are
/// `ROW` bytes, and warp steps per tile (32 blocks each: the same number).
pub const fn warp_steps<const ROW: u32>() -> u32 {
    const { assert!(ROW == 64 || ROW == 128, "64- or 128-byte source rows") };
    ROW / 4
}

/// The keys block `block` reads, in the order their bytes land in each
/// transposed word, and its head-dim group `g` (head dims `4g..4g + 4`)
/// and position word `a` (positions `4a..4a + 4`).
#[inline(always)]
pub const fn block(block: u32) -> ([u32; 4], u32, u32) {
    let (g, a) = (block / A_WORDS, block % A_WORDS);
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

/// The block lane `lane` of a warp moves at the warp's step `step`: every
/// block once over the [`warp_steps`], without bank conflicts beyond the
/// module's.
///
/// Why: block `(g, a)` loads word `g` of key rows `r` with `r % 2 = i % 2`
/// and `r / 2 % 4 = a % 4`, `r % 8 = 2 · (a % 4) + i % 2` (`fp8_key_of_k`),
/// and stores word `a` of rows `4g + i`. With 128-byte rows word `w` of row
/// `r` is in bank `4 · (w / 4 ^ r % 8) + w % 4`, so the loads' banks are
/// distinct when `(g % 4, g / 4 ^ 2 · (a % 4))` is; with 64-byte rows in
/// bank `16 · (r % 2) + 4 · (w / 4 ^ r / 2 % 4) + w % 4`, so `(g % 4, g / 4
/// ^ a % 4)` takes at most 16 values. The stores' are distinct when `(a %
/// 4, a / 4 ^ 4 · (g % 2))` is. Lane bits `x0..x4` ([`lane_block`]) make
/// those pairs take all their values; being linear over GF(2) with each
/// step adding (XOR) a complement of it ([`step_delta`]), the steps are the
/// cosets: each block once. (Lanes taking consecutive blocks had 4-way
/// conflicts on every load: 1152 wavefronts per 128-byte tile instead of
/// 256.)
#[inline(always)]
pub const fn warp_block<const ROW: u32>(step: u32, lane: u32) -> u32 {
    let ((g, a), (dg, da)) = (lane_block::<ROW>(lane), step_delta::<ROW>(step));
    (g ^ dg) * A_WORDS + (a ^ da)
}

const fn bit(value: u32, i: u32) -> u32 {
    (value >> i) & 1
}

/// `(g, a)` of lane `lane`'s block at step 0.
#[inline(always)]
pub const fn lane_block<const ROW: u32>(lane: u32) -> (u32, u32) {
    let x = lane;
    // 128-byte rows: g's bit 2 and a's bit 2 from x4; 64-byte rows (16
    // groups) leave g's bits 2-3 to the steps.
    let g = bit(x, 0) + 2 * bit(x, 1) + if ROW == 128 { 4 * bit(x, 4) } else { 0 };
    (g, bit(x, 2) + 2 * bit(x, 3) + 4 * bit(x, 4) + 8 * bit(x, 1))
}

/// What step `step` XORs into every lane's `(g, a)`: the directions
/// [`lane_block`] leaves out.
#[inline(always)]
pub const fn step_delta<const ROW: u32>(step: u32) -> (u32, u32) {
    let y = step;
    let dg = if ROW == 128 {
        2 * bit(y, 3) + 4 * bit(y, 4) + 8 * bit(y, 1) + 16 * bit(y, 2)
    } else {
        2 * bit(y, 3) + 4 * bit(y, 1) + 8 * bit(y, 2)
    };
    (dg, 16 * bit(y, 0))
}

/// Byte offset, in the source tile, of word `word` of key row `row`.
#[inline(always)]
pub const fn source_word_offset<const ROW: u32>(row: u32, word: u32) -> u32 {
    if ROW == 128 {
        swizzle::offset(row, 4 * word)
    } else {
        swizzle::offset_64(row, 4 * word)
    }
}

/// Byte offset, in the transposed tile (128-byte rows), of word `word`
/// (0..32) of row `row`.
#[inline(always)]
pub const fn word_offset(row: u32, word: u32) -> u32 {
    swizzle::offset(row, 4 * word)
}

/// The byte offsets of lane `lane`'s first load and first store at step 0
/// (in the source and the transposed tile); load or store `i` is at that
/// offset XOR [`load_xor`]`(i)` or [`STORE_XOR`]`[i]`.
#[inline(always)]
pub const fn lane_offsets<const ROW: u32>(lane: u32) -> (u32, u32) {
    let (g, a) = lane_block::<ROW>(lane);
    let (keys, _, _) = block(g * A_WORDS + a);
    (source_word_offset::<ROW>(keys[0], g), word_offset(4 * g, a))
}

/// Load `i` reads key row `keys[0] + i % 2 + 8 (i / 2)` (`fp8_key_of_k`;
/// `keys[0]` has bits 0 and 3 clear). 128-byte rows: row bit 0 flips 128
/// bytes and the swizzle's chunk bit 0 (16 bytes), row bit 3 flips 1024
/// bytes. 64-byte rows: 64 and 512 bytes, the chunk (`row / 2 % 4`) stays.
pub const fn load_xor<const ROW: u32>() -> [u32; 4] {
    if ROW == 128 {
        [0, 144, 1024, 1168]
    } else {
        [0, 64, 512, 576]
    }
}

/// Store `j` writes row `4g + j`: row bits 0-1 (128 bytes each) and the
/// swizzle's chunk bits 0-1 (16 bytes each) flip with `j`.
pub const STORE_XOR: [u32; 4] = [0, 144, 288, 432];

/// What step `step` XORs into every load and every store offset of a lane
/// ([`lane_offsets`]). Each field of an offset sits in its own bits, so XOR
/// on `g` and `a` is XOR on the offset: loads, `row · ROW + (g / 4 ^ s(row))
/// · 16 + (g % 4) · 4` with `row = 32 (a / 8) + (< 32)`; stores, `(4g + i)
/// · 128 + (a / 4 ^ (4g + i) % 8) · 16 + (a % 4) · 4`, where the deltas
/// leave the swizzle's `s(row)`, `g % 2` and `a % 4` alone.
#[inline(always)]
pub const fn step_masks<const ROW: u32>(step: u32) -> (u32, u32) {
    let (dg, da) = step_delta::<ROW>(step);
    // a's bit 4 moves the keys by 64 rows.
    let rows = (da / 16) * 64 * ROW;
    let load = rows | (dg % 4) << 2 | (dg / 4) << 4;
    let store = dg << 9 | (da / 16) << 6;
    (load, store)
}

/// The 4 x 4 byte transpose: byte `j` of word `i` becomes byte `i` of word
/// `j` (row `i` of keys, column `j` of head dims), in two rounds of byte
/// permutes `perm(a, b, selector)` (PTX `prmt.b32`, [`byte_perm`]): the
/// first interleaves the bytes of word pairs (0, 1) and (2, 3), the second
/// takes a 16-bit half of each. Eight permutes, two deep; the shifts and
/// masks rustc made of the byte moves were a chain of ~25 dependent
/// instructions, and the transposing warps, one per SM sub-partition, are
/// latency-bound (ncu: 21% of the FP8 forward's samples, `stall_wait`
/// first; without the transpose the kernel ran 1.43x faster at hdim 128).
#[inline(always)]
pub fn transpose_bytes(w: [u32; 4], perm: impl Fn(u32, u32, u32) -> u32) -> [u32; 4] {
    // Bytes 0-1 or 2-3 of a and b, interleaved: a0 b0 a1 b1 / a2 b2 a3 b3.
    const LOW_BYTES: u32 = 0x5140;
    const HIGH_BYTES: u32 = 0x7362;
    // The low or high 16-bit halves of a and b: a.lo b.lo / a.hi b.hi.
    const LOW_HALVES: u32 = 0x5410;
    const HIGH_HALVES: u32 = 0x7632;
    let (lo01, hi01) = (perm(w[0], w[1], LOW_BYTES), perm(w[0], w[1], HIGH_BYTES));
    let (lo23, hi23) = (perm(w[2], w[3], LOW_BYTES), perm(w[2], w[3], HIGH_BYTES));
    [
        perm(lo01, lo23, LOW_HALVES),
        perm(lo01, lo23, HIGH_HALVES),
        perm(hi01, hi23, LOW_HALVES),
        perm(hi01, hi23, HIGH_HALVES),
    ]
}

/// PTX `prmt.b32` in its default mode, as a function: byte `i` of the
/// result is byte `selector >> 4i & 7` of the eight bytes `b:a` (`a` the
/// low four), sign-replicated when bit 3 of that nibble is set. The GPU
/// uses the instruction (`arch::fragment::byte_perm`).
pub const fn byte_perm(a: u32, b: u32, selector: u32) -> u32 {
    let bytes = (b as u64) << 32 | a as u64;
    let mut out = 0;
    let mut i = 0;
    while i < 4 {
        let nibble = (selector >> (4 * i)) & 0xf;
        let byte = ((bytes >> (8 * (nibble & 7))) & 0xff) as u32;
        let byte = if nibble & 8 != 0 {
            if byte & 0x80 != 0 { 0xff } else { 0 }
        } else {
            byte
        };
        out |= byte << (8 * i);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn blocks<const ROW: u32>() -> u32 {
        32 * warp_steps::<ROW>()
    }

    /// Running the blocks over a swizzled tile of `ROW`-byte rows gives Vᵀ
    /// with each 32-key block in `fp8_key_of_k` order, every byte written
    /// once.
    fn transposes_in_the_packing_key_order<const ROW: u32>() {
        let v = |key: u32, dim: u32| ((key * 7 + dim * 13) % 251) as u8;
        let mut src = vec![0u8; (TILE * ROW) as usize];
        for key in 0..TILE {
            for dim in 0..ROW {
                let at = source_word_offset::<ROW>(key, dim / 4) + dim % 4;
                src[at as usize] = v(key, dim);
            }
        }
        let word = |mem: &[u8], at: u32| {
            u32::from_le_bytes(mem[at as usize..at as usize + 4].try_into().unwrap())
        };
        let mut dst = vec![0u8; src.len()];
        let mut written = vec![false; src.len()];
        for b in 0..blocks::<ROW>() {
            let (keys, g, a) = block(b);
            let loaded = keys.map(|key| word(&src, source_word_offset::<ROW>(key, g)));
            for (j, w) in transpose_bytes(loaded, byte_perm).into_iter().enumerate() {
                let at = word_offset(4 * g + j as u32, a) as usize;
                for (k, byte) in w.to_le_bytes().into_iter().enumerate() {
                    assert!(!written[at + k], "byte {} twice", at + k);
                    written[at + k] = true;
                    dst[at + k] = byte;
                }
            }
        }
        assert!(written.iter().all(|&w| w));
        for dim in 0..ROW {
            for pos in 0..TILE {
                let key = 32 * (pos / 32) + fp8_key_of_k(pos % 32);
                assert_eq!(
                    dst[swizzle::offset(dim, pos) as usize],
                    v(key, dim),
                    "dim {dim} pos {pos}"
                );
            }
        }
    }

    #[test]
    fn blocks_transpose_the_tile_in_the_packing_key_order() {
        transposes_in_the_packing_key_order::<128>();
        transposes_in_the_packing_key_order::<64>();
    }

    /// Each block once over the steps; in each step, for each of the four
    /// loads and stores, the 32 lanes' words in `load_banks` and 32
    /// different banks.
    fn covers_without_conflicts<const ROW: u32>(load_banks: usize) {
        let mut seen = vec![false; blocks::<ROW>() as usize];
        let banks = |words: &[u32]| {
            let mut banks: Vec<u32> = words.iter().map(|w| (w / 4) % 32).collect();
            banks.sort_unstable();
            banks.dedup();
            banks.len()
        };
        for step in 0..warp_steps::<ROW>() {
            let blocks: Vec<_> = (0..32).map(|lane| warp_block::<ROW>(step, lane)).collect();
            for &b in &blocks {
                assert!(!seen[b as usize], "block {b} twice");
                seen[b as usize] = true;
            }
            for i in 0..4 {
                let loads: Vec<u32> = blocks
                    .iter()
                    .map(|&b| {
                        let (keys, g, _) = block(b);
                        source_word_offset::<ROW>(keys[i], g)
                    })
                    .collect();
                let stores: Vec<u32> = blocks
                    .iter()
                    .map(|&b| {
                        let (_, g, a) = block(b);
                        word_offset(4 * g + i as u32, a)
                    })
                    .collect();
                assert_eq!(banks(&loads), load_banks, "{ROW}: step {step}, load {i}");
                assert_eq!(banks(&stores), 32, "{ROW}: step {step}, store {i}");
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn warp_blocks_cover_the_tile_without_bank_conflicts() {
        covers_without_conflicts::<128>(32);
        covers_without_conflicts::<64>(16);
    }

    /// Lane offsets XOR step masks are the offsets of the step's block.
    fn masks_move_the_offsets<const ROW: u32>() {
        for lane in 0..32 {
            let (load, store) = lane_offsets::<ROW>(lane);
            for step in 0..warp_steps::<ROW>() {
                let (load_mask, store_mask) = step_masks::<ROW>(step);
                let (keys, g, a) = block(warp_block::<ROW>(step, lane));
                for i in 0..4 {
                    let got = load ^ load_xor::<ROW>()[i] ^ load_mask;
                    assert_eq!(got, source_word_offset::<ROW>(keys[i], g), "{ROW}");
                    let got = store ^ STORE_XOR[i] ^ store_mask;
                    assert_eq!(got, word_offset(4 * g + i as u32, a), "{ROW}");
                }
            }
        }
    }

    #[test]
    fn step_masks_move_the_lane_offsets_to_each_steps_block() {
        masks_move_the_offsets::<128>();
        masks_move_the_offsets::<64>();
    }

    #[test]
    fn transpose_bytes_is_the_4x4_transpose() {
        let w = [0x0302_0100, 0x1312_1110, 0x2322_2120, 0x3332_3130];
        assert_eq!(
            transpose_bytes(w, byte_perm),
            [0x3020_1000, 0x3121_1101, 0x3222_1202, 0x3323_1303]
        );
        // With e4m3 bytes of both signs (the sign bit is no selector bit).
        let w = [0x83f2_a1ff, 0x0080_7f01, 0xfe12_3456, 0x8899_aabb];
        let byte = |i: usize, j: u32| (w[i] >> (8 * j)) & 0xff;
        let column = |j: u32| byte(0, j) | byte(1, j) << 8 | byte(2, j) << 16 | byte(3, j) << 24;
        assert_eq!(transpose_bytes(w, byte_perm), [0, 1, 2, 3].map(column));
    }

    #[test]
    fn byte_perm_is_ptx_prmt() {
        let (a, b) = (0x8302_0100, 0x7312_1110);
        assert_eq!(byte_perm(a, b, 0x3210), a);
        assert_eq!(byte_perm(a, b, 0x7654), b);
        assert_eq!(byte_perm(a, b, 0x5140), 0x1101_1000);
        assert_eq!(byte_perm(a, b, 0x7632), 0x7312_8302);
        // Sign replication: byte 3 of a (0x83) is negative, byte 3 of b
        // (0x73) is not.
        assert_eq!(byte_perm(a, b, 0x0b0f), 0x00ff_0000);
    }
}
