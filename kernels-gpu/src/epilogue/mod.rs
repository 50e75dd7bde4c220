//! Accumulators out to global memory, for every kernel: an f32 wgmma
//! accumulator of 64 rows, rounded to a 16-bit type, as rows of a strided
//! tensor (O of the forward; dK, dV and dQ of the backward).
//!
//! The rows go out in 16-byte stores: a quad holds 8 columns of a row as
//! four 2-column registers per 8-column group; a 4 x 4 transpose across the
//! quad (`arch::fragment::quad_transpose`) gives each lane 8 contiguous
//! columns of one of four groups, so a warp writes 64-byte row segments
//! instead of 16-byte ones. Rows past the tensor's end are skipped (a TMA
//! store would need a staging tile in shared memory, which the forward's
//! K/V stages fill at hdim 128).

use crate::arch::elem::{Bf16, Element, F16};
use crate::arch::fragment::{pack_bf16x2, pack_f16x2, quad_transpose};
use crate::arch::global::store_16_bytes;
use crate::arch::thread::lane;
use crate::arch::wgmma::{Accumulator, Mma};
use crate::layout::fragment::{FRAG_BLOCK_BYTES, accumulator, frag_block_offset};

/// A 16-bit type results are rounded to.
pub(crate) trait Store16: Element {
    /// Two f32 rounded to this type, `lo` in the low half.
    fn pack2(lo: f32, hi: f32) -> u32;
}

impl Store16 for Bf16 {
    #[inline(always)]
    fn pack2(lo: f32, hi: f32) -> u32 {
        pack_bf16x2(lo, hi)
    }
}

impl Store16 for F16 {
    #[inline(always)]
    fn pack2(lo: f32, hi: f32) -> u32 {
        pack_f16x2(lo, hi)
    }
}

/// Where a warpgroup's 64 accumulator rows go: row `r` of the accumulator is
/// row `first_row + r` of a tensor whose rows start `row_stride` elements
/// apart from element `base` of the memory at byte address `out`; only
/// rows below `rows` exist.
#[derive(Clone, Copy)]
pub(crate) struct Rows {
    pub out: u64,
    pub base: u64,
    pub row_stride: u64,
    pub first_row: u32,
    pub rows: u32,
}

/// Accumulator registers per group of four 8-column blocks.
const GROUP_REGS: u32 = 16;

/// Rounds `acc` to `O` and writes it to `dest` (calling thread `thread` of
/// the warpgroup).
///
/// # Safety
/// Every existing row of `dest`, all `2 R` columns of it, lies inside memory
/// the kernel may write (validated on the host); `out + 2·base` and the row
/// stride are 16-byte aligned and the columns contiguous, so 8 elements from
/// a multiple-of-8 column are one aligned 16-byte chunk.
#[inline(always)]
pub(crate) unsafe fn store_rows<O: Store16, const R: usize>(
    acc: &Accumulator<R>,
    dest: &Rows,
    thread: u32,
) where
    Accumulator<R>: Mma,
{
    let q = lane() % 4;
    let mut low = 0.0f32;
    // [row half][block of the group]: the packed pairs of the current group.
    let mut group = [[0u32; 4]; 2];
    acc.for_each(|reg, x| {
        if reg % 2 == 0 {
            low = x;
            return;
        }
        // Register 4j + 2h + 1 closes the pair (row half h, block j).
        let (block, half) = (reg / 4, (reg % 4) / 2);
        group[half as usize][(block % 4) as usize] = O::pack2(low, x);
        if reg % GROUP_REGS != GROUP_REGS - 1 {
            return;
        }
        for (half, words) in group.iter().enumerate() {
            // After the transpose this lane holds block 4g + q of its row.
            let (r, _) = accumulator(thread, 2 * half as u32);
            let col = 8 * (block - block % 4 + q);
            let words = quad_transpose(*words, q);
            let row = dest.first_row + r;
            if row < dest.rows {
                let at = dest.base + row as u64 * dest.row_stride + col as u64;
                // SAFETY: an existing row's aligned 16-byte chunk (contract).
                unsafe { store_16_bytes(dest.out + O::BYTES as u64 * at, words) };
            }
        }
    });
}

/// Calls `f(address, words)` for every 16-byte chunk of `acc` in
/// fragment order (`layout::fragment::FRAG_BLOCK_BYTES`): block `p` of the
/// accumulator (registers `32p..32p + 32`) at `base + p · FRAG_BLOCK_BYTES`,
/// for the calling thread `thread` of the warpgroup. `f` stores the chunk
/// (to shared or global memory).
#[inline(always)]
pub(crate) fn for_each_fragment_chunk<const R: usize>(
    acc: &Accumulator<R>,
    base: u64,
    thread: u32,
    mut f: impl FnMut(u64, [u32; 4]),
) where
    Accumulator<R>: Mma,
{
    let mut words = [0u32; 4];
    acc.for_each(|reg, x| {
        words[(reg % 4) as usize] = x.to_bits();
        if reg % 4 == 3 {
            let (block, chunk) = (reg / 32, (reg % 32) / 4);
            let at = block * FRAG_BLOCK_BYTES + frag_block_offset(thread, chunk);
            f(base + at as u64, words);
        }
    });
}

/// Adds the fragment-order block at global byte address `block` (written
/// by [`for_each_fragment_chunk`]) to `acc`, for thread `thread`.
///
/// # Safety
/// `block` is a 16-byte aligned global address of `FRAG_BLOCK_BYTES`
/// readable bytes, not written while this runs.
#[inline(always)]
pub(crate) unsafe fn add_fragment_block(acc: &mut Accumulator<32>, block: u64, thread: u32) {
    let mut words = [0u32; 4];
    acc.update(|reg, x| {
        if reg % 4 == 0 {
            // SAFETY: a chunk inside the block (contract).
            words = unsafe {
                crate::arch::global::load_16_bytes(
                    block + frag_block_offset(thread, reg / 4) as u64,
                )
            };
        }
        x + f32::from_bits(words[(reg % 4) as usize])
    });
}
