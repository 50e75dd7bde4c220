//! wgmma shared-memory matrix descriptors for swizzled tiles (128-byte
//! rows; K-major tiles of 64-byte rows too, e4m3 at head_dim 64).
//!
//! 64-bit layout (PTX ISA, "matrix descriptor"): bits 0-13 start address >> 4,
//! 16-29 leading byte offset >> 4, 32-45 stride byte offset >> 4, 49-51 base
//! offset (0: tiles are aligned to their swizzle's 8-row atom), 62-63
//! swizzle (1 = 128 B, 2 = 64 B).
//!
//! Tiles are stored as column blocks: each block holds 128 bytes of every row
//! (64 bf16 or 128 e4m3), blocks one after another. This is what a TMA load
//! with a 128-byte inner box produces, one load per block.
//!
//! - K-major operand (rows = M or N, columns = K): 8-row groups are 1024 bytes
//!   apart (stride byte offset); the leading byte offset is unused with
//!   swizzling. A k-step of 32 bytes (k16 bf16, k32 e4m3) moves the start
//!   address within the 128-byte row; the next column block starts
//!   `rows * 128` bytes later. With 64-byte rows (one column block,
//!   [`k_major_64`]) the 8-row groups are 512 bytes apart.
//! - MN-major operand (rows = K, columns = M or N): 64-element column blocks
//!   are `rows * 128` bytes apart (leading byte offset), 8-row K groups 1024
//!   bytes apart (stride byte offset); a k16 step is 16 rows, 2048 bytes.

use super::swizzle::{ATOM_BYTES, ROW_BYTES, ROW_BYTES_64};

const SWIZZLE_128B: u64 = 1 << 62;
const SWIZZLE_64B: u64 = 2 << 62;

/// Packs a descriptor for a 128-byte-swizzled operand.
pub const fn pack(start: u32, leading_bytes: u32, stride_bytes: u32) -> u64 {
    pack_swizzled(start, leading_bytes, stride_bytes, SWIZZLE_128B)
}

/// Packs a descriptor with the swizzle mode bits `swizzle`.
#[inline(always)]
const fn pack_swizzled(start: u32, leading_bytes: u32, stride_bytes: u32, swizzle: u64) -> u64 {
    ((start as u64 >> 4) & 0x3fff)
        | (((leading_bytes as u64 >> 4) & 0x3fff) << 16)
        | (((stride_bytes as u64 >> 4) & 0x3fff) << 32)
        | swizzle
}

/// Descriptor of k-step `k` (32 bytes of K each) of a K-major tile with
/// `rows` rows at shared address `tile`.
pub const fn k_major(tile: u32, rows: u32, k: u32) -> u64 {
    let byte = k * 32;
    let start = tile + (byte / ROW_BYTES) * rows * ROW_BYTES + byte % ROW_BYTES;
    pack(start, 16, ATOM_BYTES)
}

/// [`k_major`] for a tile of 64-byte rows with the 64-byte swizzle (its
/// k-steps 0 and 1 in the row; 2 would start a second column block).
#[inline(always)]
pub const fn k_major_64(tile: u32, rows: u32, k: u32) -> u64 {
    let byte = k * 32;
    let start = tile + (byte / ROW_BYTES_64) * rows * ROW_BYTES_64 + byte % ROW_BYTES_64;
    pack_swizzled(start, 16, 8 * ROW_BYTES_64, SWIZZLE_64B)
}

/// Descriptor of k16 step `k` of an MN-major tile with `rows` (= K) rows.
pub const fn mn_major(tile: u32, rows: u32, k: u32) -> u64 {
    pack(tile + k * 16 * ROW_BYTES, rows * ROW_BYTES, ATOM_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_major_steps_match_the_measured_descriptor() {
        // hopper-notes.md: (addr >> 4) | (1 << 16) | (64 << 32) | (1 << 62),
        // and each k16 step adds 2.
        let base = 0x4000;
        assert_eq!(
            k_major(base, 64, 0),
            (0x4000 >> 4) | (1 << 16) | (64 << 32) | (1 << 62)
        );
        assert_eq!(k_major(base, 64, 1), k_major(base, 64, 0) + 2);
        assert_eq!(k_major(base, 64, 3), k_major(base, 64, 0) + 6);
        // k-step 4 starts the second column block, 64 rows * 128 bytes on.
        assert_eq!(k_major(base, 64, 4), k_major(base + 64 * 128, 64, 0));
    }

    #[test]
    fn k_major_64_byte_rows_use_mode_2_and_512_byte_groups() {
        let base = 0x4000;
        let d = k_major_64(base, 128, 0);
        assert_eq!(d, (0x4000 >> 4) | (1 << 16) | (32 << 32) | (2 << 62));
        // k-step 1: 32 bytes on in the same row; k-step 2 would be the next
        // column block.
        assert_eq!(k_major_64(base, 128, 1), d + 2);
        assert_eq!(
            k_major_64(base, 128, 2),
            k_major_64(base + 128 * 64, 128, 0)
        );
    }

    #[test]
    fn mn_major_uses_block_stride_as_leading_offset() {
        let d = mn_major(0x8000, 128, 1);
        assert_eq!(d & 0x3fff, (0x8000 + 2048) >> 4);
        assert_eq!((d >> 16) & 0x3fff, (128 * 128) >> 4);
        assert_eq!((d >> 32) & 0x3fff, 1024 >> 4);
        assert_eq!(d >> 62, 1);
    }
}
