//! Dynamic shared memory and the typed, 128-byte-swizzled tiles in it.

use super::elem::{Element, KMajor, Major, MnMajor};
use crate::layout::{desc, swizzle};
use core::arch::{asm, global_asm};
use core::marker::PhantomData;

// One dynamic shared-memory window for every kernel of the module. Its base
// is 1024-byte aligned (swizzled tiles need it) because no kernel declares
// static shared memory before it.
global_asm!(".extern .shared .align 1024 .b8 fa3_dynamic_smem[];");

/// Shared-memory address of the dynamic window's first byte.
#[inline(always)]
pub fn base() -> u32 {
    let addr: u32;
    // SAFETY: takes the address of the extern shared symbol.
    unsafe { asm!("mov.u32 {a}, fa3_dynamic_smem;", a = out(reg32) addr) }
    addr
}

/// Loads 4 bytes at shared address `addr`.
///
/// # Safety
/// `addr` is 4-byte aligned, inside the block's dynamic shared memory, and
/// not being written concurrently.
#[inline(always)]
pub unsafe fn load_u32(addr: u32) -> u32 {
    let v: u32;
    // SAFETY: per the contract.
    unsafe { asm!("ld.shared.b32 {v}, [{a}];", v = out(reg32) v, a = in(reg32) addr) }
    v
}

/// Stores 4 bytes at shared address `addr`.
///
/// # Safety
/// As [`load_u32`], and no other thread reads or writes it concurrently.
#[inline(always)]
pub unsafe fn store_u32(addr: u32, value: u32) {
    // SAFETY: per the contract.
    unsafe { asm!("st.shared.b32 [{a}], {v};", a = in(reg32) addr, v = in(reg32) value) }
}

/// `stmatrix.sync.aligned.m8n8.x4.b16`: the warp stores four 8 x 8
/// matrices of 16-bit elements; `words[i]` is this lane's pair (row lane
/// / 4, columns 2 (lane % 4) ..) of matrix `i`, and `row` the address of
/// row lane % 8 of matrix lane / 8 (16 contiguous bytes;
/// `layout::fragment::matrix_row_k16` for A operands).
///
/// # Safety
/// The whole warp calls it converged; each lane's `row` is 16 writable,
/// 16-byte aligned bytes of shared memory nobody else accesses meanwhile.
#[inline(always)]
pub unsafe fn store_matrix_x4(row: u32, words: [u32; 4]) {
    // SAFETY: per the contract.
    unsafe {
        asm!(
            "stmatrix.sync.aligned.m8n8.x4.shared.b16 [{a}], {{{w0}, {w1}, {w2}, {w3}}};",
            a = in(reg32) row,
            w0 = in(reg32) words[0],
            w1 = in(reg32) words[1],
            w2 = in(reg32) words[2],
            w3 = in(reg32) words[3],
        )
    }
}

/// `ldmatrix.sync.aligned.m8n8.x4.b16`: the inverse of
/// [`store_matrix_x4`] with the same row addresses.
///
/// # Safety
/// The whole warp calls it converged; each lane's `row` is 16 readable,
/// 16-byte aligned bytes of shared memory nobody writes meanwhile.
#[inline(always)]
pub unsafe fn load_matrix_x4(row: u32) -> [u32; 4] {
    let mut w = [0u32; 4];
    // SAFETY: per the contract.
    unsafe {
        asm!(
            "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {{{w0}, {w1}, {w2}, {w3}}}, [{a}];",
            a = in(reg32) row,
            w0 = out(reg32) w[0],
            w1 = out(reg32) w[1],
            w2 = out(reg32) w[2],
            w3 = out(reg32) w[3],
        )
    }
    w
}

/// Loads the f32 at shared address `addr`. Pure: loads of one address
/// between two barriers may be merged (the barrier asm orders them).
///
/// # Safety
/// As [`load_u32`].
#[inline(always)]
pub unsafe fn load_f32(addr: u32) -> f32 {
    let v: f32;
    // SAFETY: per the contract.
    unsafe {
        asm!(
            "ld.shared.f32 {v}, [{a}];",
            v = out(reg32) v,
            a = in(reg32) addr,
            options(pure, readonly, nostack),
        )
    }
    v
}

/// Stores 16 bytes at shared address `addr` (`words[0]` lowest).
///
/// # Safety
/// `addr` is 16-byte aligned, inside the dynamic shared memory, and no
/// other thread accesses those bytes concurrently.
#[inline(always)]
pub unsafe fn store_16_bytes(addr: u32, words: [u32; 4]) {
    // SAFETY: per the contract.
    unsafe {
        asm!(
            "st.shared.v4.b32 [{a}], {{{w0}, {w1}, {w2}, {w3}}};",
            a = in(reg32) addr,
            w0 = in(reg32) words[0],
            w1 = in(reg32) words[1],
            w2 = in(reg32) words[2],
            w3 = in(reg32) words[3],
        )
    }
}

/// A `ROWS x COLS` tile of `T` in shared memory, stored as 128-byte column
/// blocks with the 128-byte swizzle (what TMA writes with a 128-byte inner
/// box), or, when a row has only 64 bytes, as one block with the 64-byte
/// swizzle (K-major only). `M` says how wgmma reads it.
pub struct Tile<T, const ROWS: u32, const COLS: u32, M> {
    addr: u32,
    marker: PhantomData<(T, M)>,
}

impl<T: Element, const ROWS: u32, const COLS: u32, M: Major> Tile<T, ROWS, COLS, M> {
    /// Bytes of one swizzled row segment: 128, or 64 for 64-byte rows.
    pub const ROW_BYTES: u32 = {
        let bytes = COLS * T::BYTES;
        assert!(
            bytes == swizzle::ROW_BYTES_64 || bytes.is_multiple_of(swizzle::ROW_BYTES),
            "columns must fill 128-byte rows, or be one 64-byte row"
        );
        swizzle::segment_bytes(bytes)
    };
    /// Elements in one row segment.
    pub const BLOCK_COLS: u32 = Self::ROW_BYTES / T::BYTES;
    /// Column blocks (TMA loads) per tile.
    pub const BLOCKS: u32 = {
        assert!(ROWS.is_multiple_of(8), "rows must fill 8-row swizzle atoms");
        COLS / Self::BLOCK_COLS
    };
    /// Bytes of one column block.
    pub const BLOCK_BYTES: u32 = ROWS * Self::ROW_BYTES;
    /// Bytes of the tile.
    pub const BYTES: u32 = Self::BLOCKS * Self::BLOCK_BYTES;

    /// The tile at shared address `addr`.
    ///
    /// # Safety
    /// `addr` is 1024-byte aligned and `addr..addr + BYTES` belongs to this
    /// tile alone for as long as it is used.
    #[inline(always)]
    pub unsafe fn at(addr: u32) -> Self {
        Self {
            addr,
            marker: PhantomData,
        }
    }

    /// Shared address of the tile.
    #[inline(always)]
    pub fn addr(&self) -> u32 {
        self.addr
    }

    /// Shared address of column block `b` (where TMA load `b` goes).
    #[inline(always)]
    pub fn block(&self, b: u32) -> u32 {
        self.addr + b * Self::BLOCK_BYTES
    }
}

/// A wgmma shared-memory descriptor for an operand of major `M`.
#[derive(Clone, Copy)]
pub struct SmemDesc<M> {
    bits: u64,
    major: PhantomData<M>,
}

impl<M> SmemDesc<M> {
    /// The 64-bit descriptor.
    #[inline(always)]
    pub fn bits(self) -> u64 {
        self.bits
    }
}

impl<T: Element, const ROWS: u32, const COLS: u32> Tile<T, ROWS, COLS, KMajor> {
    /// The descriptor of k-step `k` from `start` by the tile's row width.
    #[inline(always)]
    fn k_major(start: u32, k: u32) -> u64 {
        if Self::ROW_BYTES == swizzle::ROW_BYTES {
            desc::k_major(start, ROWS, k)
        } else {
            desc::k_major_64(start, ROWS, k)
        }
    }

    /// Descriptor of k-step `k` (32 bytes of K: k16 for 16-bit, k32 for e4m3).
    #[inline(always)]
    pub fn desc(&self, k: u32) -> SmemDesc<KMajor> {
        SmemDesc {
            bits: Self::k_major(self.addr, k),
            major: PhantomData,
        }
    }
}

impl<T: Element, const ROWS: u32, const COLS: u32> Tile<T, ROWS, COLS, KMajor> {
    /// Descriptor of k-step `k` of the rows `first_row..` of the tile (an
    /// M = 64 slice for one warpgroup); `first_row` is a multiple of 8, so
    /// the slice starts on a swizzle atom.
    #[inline(always)]
    pub fn desc_from_row(&self, first_row: u32, k: u32) -> SmemDesc<KMajor> {
        SmemDesc {
            bits: Self::k_major(self.addr + first_row * Self::ROW_BYTES, k),
            major: PhantomData,
        }
    }
}

impl<T: Element, const ROWS: u32, const COLS: u32> Tile<T, ROWS, COLS, MnMajor> {
    /// Descriptor of k16 step `k` (16 rows).
    #[inline(always)]
    pub fn desc(&self, k: u32) -> SmemDesc<MnMajor> {
        const {
            assert!(
                Self::ROW_BYTES == swizzle::ROW_BYTES,
                "MN-major tiles have 128-byte rows"
            )
        };
        SmemDesc {
            bits: desc::mn_major(self.addr, ROWS, k),
            major: PhantomData,
        }
    }
}
