//! Which matrix element each register of a warpgroup holds (wgmma m64).
//!
//! Thread `t` of the warpgroup (0..128) is lane `t % 32` of warp `t / 32`;
//! warp `w` owns rows `16w..16w+16`. Within a warp, lanes form 8 groups of 4
//! (a "quad", `lane / 4`); the 4 lanes of a quad hold one row together, which
//! is why row reductions need only shuffles with xor 1 and 2.

/// `(row, col)` of f32 accumulator register `reg` of thread `thread`
/// (m64nN: `N / 2` registers; register `4j + r` covers columns `8j..8j + 8`).
pub const fn accumulator(thread: u32, reg: u32) -> (u32, u32) {
    let (warp, lane) = (thread / 32, thread % 32);
    let (j, r) = (reg / 4, reg % 4);
    (
        16 * warp + lane / 4 + 8 * (r / 2),
        8 * j + 2 * (lane % 4) + r % 2,
    )
}

/// `(row, first col)` of A-operand register `reg` (0..4) for k16 (bf16/f16,
/// two elements per register, columns `col` and `col + 1`).
pub const fn a_operand_k16(thread: u32, reg: u32) -> (u32, u32) {
    let (warp, lane) = (thread / 32, thread % 32);
    (
        16 * warp + lane / 4 + 8 * (reg % 2),
        8 * (reg / 2) + 2 * (lane % 4),
    )
}

/// `(row, first col)` of A-operand register `reg` (0..4) for k32 (e4m3,
/// four elements per register, columns `col..col + 4`, lowest byte first).
pub const fn a_operand_k32(thread: u32, reg: u32) -> (u32, u32) {
    let (warp, lane) = (thread / 32, thread % 32);
    (
        16 * warp + lane / 4 + 8 * (reg % 2),
        16 * (reg / 2) + 4 * (lane % 4),
    )
}

/// `(row, first col)` of the 8-element row whose shared address lane
/// `thread % 32` gives to `stmatrix`/`ldmatrix .x4` moving A-operand
/// k-step `kb` (k16): lanes `8i..8i + 8` name the rows of matrix `i`,
/// which is A-operand register `i` of every lane ([`a_operand_k16`]).
pub const fn matrix_row_k16(thread: u32, kb: u32) -> (u32, u32) {
    let (warp, lane) = (thread / 32, thread % 32);
    let i = lane / 8;
    (16 * warp + 8 * (i % 2) + lane % 8, 16 * kb + 8 * (i / 2))
}

/// Accumulator registers that become A-operand register `reg` of k16 block
/// `kb` when an m64 accumulator is reused as the A operand of the next GEMM
/// (P = softmax(S) feeding O += P·V): `(low half, high half)`.
pub const fn accumulator_to_a_k16(kb: u32, reg: u32) -> (u32, u32) {
    let first = 8 * kb + 2 * reg;
    (first, first + 1)
}

/// Accumulator registers that become the four bytes (lowest first) of
/// A-operand register `reg` of k32 block `kb` (e4m3 P feeding O += P·V):
/// the thread's own registers, no shuffle. The columns do not stay in
/// place: byte `b` of register `reg` sits at k column `a_col + b`
/// ([`a_operand_k32`]) but holds accumulator column [`fp8_key_of_k`] of
/// it, so V's keys must reach shared memory in that order (V's transpose
/// writes key `fp8_key_of_k(k)` of each 32-key block at k position `k`).
pub const fn accumulator_to_a_k32(kb: u32, reg: u32) -> [u32; 4] {
    // Row half `reg % 2` (registers 4j + 2h, 4j + 2h + 1), column half
    // `reg / 2` (8-column groups j = 4 kb + 2 (reg / 2), and j + 1).
    let (h, j) = (reg % 2, 4 * kb + 2 * (reg / 2));
    [
        4 * j + 2 * h,
        4 * j + 2 * h + 1,
        4 * (j + 1) + 2 * h,
        4 * (j + 1) + 2 * h + 1,
    ]
}

/// The key (column of P within its 32-key block) that k position `k`
/// (0..32) of the e4m3 A operand holds when P is packed by
/// [`accumulator_to_a_k32`]: one permutation for every thread and row.
pub const fn fp8_key_of_k(k: u32) -> u32 {
    let (half, quad, byte) = (k / 16, (k % 16) / 4, k % 4);
    16 * half + 2 * quad + byte % 2 + 8 * (byte / 2)
}

/// Bytes of one fragment-order block: a 64 x 64 f32 accumulator block (32
/// registers per thread of a warpgroup) stored as each thread holds it, so
/// a warpgroup writes and reads it with conflict-free, coalesced 16-byte
/// accesses (the backward's dQ partials, its GQA dK/dV partials). Columns
/// `64p..64p + 64` of a wider accumulator are registers `32p..32p + 32`:
/// block `p` of it.
pub const FRAG_BLOCK_BYTES: u32 = 64 * 64 * 4;

/// Byte offset, in a fragment-order block, of registers `4 chunk .. 4
/// chunk + 4` (chunk 0..8) of thread `thread`.
pub const fn frag_block_offset(thread: u32, chunk: u32) -> u32 {
    16 * (chunk * 128 + thread)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    /// Every (row, col) of a 64 x n accumulator is held exactly once.
    #[test]
    fn accumulator_covers_each_element_once() {
        for n in [8u32, 64, 176, 256] {
            let mut seen = vec![0u8; 64 * n as usize];
            for t in 0..128 {
                for reg in 0..n / 2 {
                    let (r, c) = accumulator(t, reg);
                    seen[(r * n + c) as usize] += 1;
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "n = {n}");
        }
    }

    /// The A operand of k16 and of k32 each cover a 64 x k block once.
    #[test]
    fn a_operands_cover_their_block_once() {
        for (k, per_reg, f) in [
            (16u32, 2u32, a_operand_k16 as fn(u32, u32) -> (u32, u32)),
            (32, 4, a_operand_k32),
        ] {
            let mut seen = vec![0u8; (64 * k) as usize];
            for t in 0..128 {
                for reg in 0..4 {
                    let (r, c) = f(t, reg);
                    for e in 0..per_reg {
                        seen[(r * k + c + e) as usize] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "k = {k}");
        }
    }

    /// A fragment-order block holds each register of a 64 x 64 block once,
    /// and a warp's 16-byte accesses are consecutive.
    #[test]
    fn fragment_order_blocks_are_dense() {
        let mut seen = vec![0u8; FRAG_BLOCK_BYTES as usize / 16];
        for t in 0..128 {
            for chunk in 0..8 {
                seen[(frag_block_offset(t, chunk) / 16) as usize] += 1;
            }
        }
        assert!(seen.iter().all(|&s| s == 1));
        assert_eq!(frag_block_offset(1, 0) - frag_block_offset(0, 0), 16);
    }

    /// `stmatrix`/`ldmatrix .x4` with the rows of `matrix_row_k16` move
    /// each A-operand register to its own element: lane `l`'s register
    /// `i` is element (l / 4, 2 (l % 4)) of matrix `i`, whose row `l / 4`
    /// lane `8i + l / 4` names.
    #[test]
    fn matrix_rows_match_the_a_operand() {
        for t in 0..128 {
            let (warp, lane) = (t / 32, t % 32);
            for kb in 0..4 {
                for i in 0..4 {
                    let (row, col) = matrix_row_k16(32 * warp + 8 * i + lane / 4, kb);
                    let (ar, ac) = a_operand_k16(t, i);
                    assert_eq!((row, col + 2 * (lane % 4)), (ar, 16 * kb + ac));
                }
            }
        }
    }

    /// Reusing accumulator registers as the k16 A operand keeps every
    /// element in place: same thread, same row, same column.
    #[test]
    fn accumulator_reuse_as_a_operand_is_in_place() {
        for t in 0..128 {
            for kb in 0..4 {
                for reg in 0..4 {
                    let (lo, hi) = accumulator_to_a_k16(kb, reg);
                    let (ar, ac) = a_operand_k16(t, reg);
                    assert_eq!(accumulator(t, lo), (ar, 16 * kb + ac));
                    assert_eq!(accumulator(t, hi), (ar, 16 * kb + ac + 1));
                }
            }
        }
    }

    /// Packing an accumulator as the e4m3 A operand needs no shuffle: each
    /// byte is the thread's own register, same row, and the key it holds
    /// depends only on its k position (`fp8_key_of_k`, a bijection of each
    /// 32-key block).
    #[test]
    fn fp8_packing_is_in_thread_with_one_key_order() {
        let mut seen = [false; 32];
        for k in 0..32 {
            let key = fp8_key_of_k(k);
            assert!(key < 32 && !seen[key as usize], "k {k} -> key {key}");
            seen[key as usize] = true;
        }
        for t in 0..128 {
            for kb in 0..4 {
                for reg in 0..4 {
                    let (row, col) = a_operand_k32(t, reg);
                    for (b, acc) in accumulator_to_a_k32(kb, reg).into_iter().enumerate() {
                        let key = 32 * kb + fp8_key_of_k(col + b as u32);
                        assert_eq!(
                            accumulator(t, acc),
                            (row, key),
                            "t {t} kb {kb} reg {reg} byte {b}"
                        );
                    }
                }
            }
        }
    }
}
