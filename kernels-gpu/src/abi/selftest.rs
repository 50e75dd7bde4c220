//! Parameter blocks and shared-memory sizes of the self-test kernels that
//! prove each Hopper primitive on the GPU (`fa3::diagnostics` launches them).

use super::kernel::KernelParams;
use super::ptr::GlobalPtr;
use super::tensor_map::TensorMap;

const fn align_up(x: u32, to: u32) -> u32 {
    x.div_ceil(to) * to
}

/// TMA round trip: each block loads the box at its origin from `src` into
/// shared memory, dumps the raw (swizzled) shared bytes, copies the box with
/// ordinary shared stores into a staging tile (the epilogue pattern: those
/// writes need `fence.proxy.async` before TMA reads them), and stores the
/// staged box to `dst` at the same origin.
#[repr(C)]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct TmaRoundTripParams {
    pub src: GlobalPtr<TensorMap>,
    pub dst: GlobalPtr<TensorMap>,
    /// One box origin per block, innermost coordinate first (unused
    /// trailing coordinates are ignored).
    pub origins: GlobalPtr<[i32; 4]>,
    /// `box_bytes` per block: the shared memory after the load.
    pub smem_dump: GlobalPtr<u32>,
    /// Bytes of one box (a multiple of 1024 with 128-byte swizzle).
    pub box_bytes: u32,
}

// SAFETY: repr(C), Copy, align 8, device addresses as GlobalPtr.
unsafe impl KernelParams for TmaRoundTripParams {}

/// Dynamic shared memory of the TMA round trip: the loaded box, the staged
/// box (both 1024-byte aligned), then the mbarrier.
pub const fn tma_round_trip_smem_bytes(box_bytes: u32) -> u32 {
    2 * align_up(box_bytes, 1024) + 8
}

/// Bulk adds: block `b` copies `src[b · words ..][..words]` into shared
/// memory by one bulk copy, then adds it into `bulk_sum` by one bulk
/// reduce-add and into `red_sum` by 16-byte `red.global.add.v4.f32` from
/// every thread (`selftest::bulk_add`). 128 threads per block; `words` a
/// multiple of 512; all pointers 16-byte aligned, `src` holding `grid ·
/// words` f32 and each sum `words`.
#[repr(C)]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct BulkAddParams {
    pub src: GlobalPtr<f32>,
    pub bulk_sum: GlobalPtr<f32>,
    pub red_sum: GlobalPtr<f32>,
    pub words: u32,
}

// SAFETY: repr(C), Copy, align 8, device addresses as GlobalPtr.
unsafe impl KernelParams for BulkAddParams {}

/// Dynamic shared memory of the bulk adds: the block's words, then the
/// mbarrier.
pub const fn bulk_add_smem_bytes(words: u32) -> u32 {
    align_up(4 * words, 16) + 8
}

/// Largest K of the GEMM self-test, in elements (the tiles are sized for it).
pub const GEMM_MAX_K: u32 = 256;

/// 64 x N x K GEMM through wgmma: D(64 x N, f32, row-major) = A·Bᵀ with A
/// (64 x K) and B (N x K, or K x N for MN-major B).
#[repr(C)]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct GemmParams {
    /// A for the SS forms: 64 x K, K innermost, box (128 bytes, 64 rows).
    pub a_map: GlobalPtr<TensorMap>,
    /// B: K-major N x K with box (128 bytes, N rows), or MN-major K x N
    /// with box (64 columns, K rows).
    pub b_map: GlobalPtr<TensorMap>,
    /// A for the RS forms: the same 64 x K matrix, row-major, read as 32-bit
    /// words straight into the register fragments.
    pub a: GlobalPtr<u32>,
    pub d: GlobalPtr<f32>,
    /// K in elements: a multiple of 128 bytes, at most [`GEMM_MAX_K`].
    pub k: u32,
}

// SAFETY: repr(C), Copy, align 8, device addresses as GlobalPtr.
unsafe impl KernelParams for GemmParams {}

/// Shared-memory layout of the GEMM self-test: (B offset, barrier offset,
/// total bytes) for elements of `elem_bytes` and `n` columns.
pub const fn gemm_smem_layout(elem_bytes: u32, n: u32) -> (u32, u32, u32) {
    let a_bytes = 64 * GEMM_MAX_K * elem_bytes;
    let b_bytes = n * GEMM_MAX_K * elem_bytes;
    let b_offset = align_up(a_bytes, 1024);
    let bar_offset = b_offset + b_bytes;
    (b_offset, bar_offset, bar_offset + 8)
}

/// The attention GEMM chain on one 64-row block: S = Q·Kᵀ (64 x 128, k = 64),
/// row max and row sum of S (quad reductions), P = bf16(S) in registers,
/// O = P·V (64 x 64, V MN-major).
#[repr(C)]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct ChainParams {
    /// Q: 64 x 64 bf16, box (64, 64).
    pub q_map: GlobalPtr<TensorMap>,
    /// K: 128 x 64 bf16, box (64, 128).
    pub k_map: GlobalPtr<TensorMap>,
    /// V: 128 x 64 bf16 (keys x head dim), box (64, 128).
    pub v_map: GlobalPtr<TensorMap>,
    /// O: 64 x 64 f32, row-major.
    pub o: GlobalPtr<f32>,
    /// Row maxima of S (64).
    pub row_max: GlobalPtr<f32>,
    /// Row sums of S (64).
    pub row_sum: GlobalPtr<f32>,
}

// SAFETY: repr(C), Copy, align 8, device addresses as GlobalPtr.
unsafe impl KernelParams for ChainParams {}

/// Shared memory of the chain: Q (8 KiB), K (16 KiB), V (16 KiB), barrier.
pub const CHAIN_SMEM_BYTES: u32 = (8 + 16 + 16) * 1024 + 8;

/// The FP8 chain (head_dim 128, e4m3): S = Q·Kᵀ, P = e4m3(S) in registers,
/// O = P·V with V transposed in shared memory, its keys permuted.
#[repr(C)]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct ChainE4m3Params {
    /// Q: 64 x 128 e4m3, box (128, 64).
    pub q_map: GlobalPtr<TensorMap>,
    /// K: 128 x 128 e4m3, box (128, 128).
    pub k_map: GlobalPtr<TensorMap>,
    /// V: 128 keys x 128 head dims e4m3, box (128, 128).
    pub v_map: GlobalPtr<TensorMap>,
    /// O: 64 x 128 f32, row-major.
    pub o: GlobalPtr<f32>,
}

// SAFETY: repr(C), Copy, align 8, device addresses as GlobalPtr.
unsafe impl KernelParams for ChainE4m3Params {}

/// Shared memory of the FP8 chain: Q (8 KiB), K (16 KiB), V (16 KiB), Vᵀ
/// (16 KiB), barrier.
pub const CHAIN_E4M3_SMEM_BYTES: u32 = (8 + 16 + 16 + 16) * 1024 + 8;

/// Rows of one pingpong tile (the N of each consumer GEMM).
pub const PINGPONG_TILE_ROWS: u32 = 192;

/// Producer/consumer ring: one producer warpgroup streams `tiles` tiles of
/// B (192 x 64 bf16 each, rows `192 t ..`) through an S-stage ring to two
/// consumer warpgroups that take turns (named barriers) to compute
/// D[c][t % 2] += A_c · B_tᵀ with A_c in registers.
#[repr(C)]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct PingpongParams {
    /// B: (64 columns, 192·tiles rows) bf16, box (64, 192).
    pub b_map: GlobalPtr<TensorMap>,
    /// A_0 then A_1: 64 x 64 bf16 each, row-major, as 32-bit words.
    pub a: GlobalPtr<u32>,
    /// `D[c][p]`: 4 blocks of 64 x 192 f32, row-major, block `2c + p`.
    pub d: GlobalPtr<f32>,
    /// Issue order: `(consumer << 16) | tile`, one entry per consumer GEMM.
    pub order: GlobalPtr<u32>,
    /// Counter for `order` (starts at 0).
    pub order_len: GlobalPtr<u32>,
    pub tiles: u32,
}

// SAFETY: repr(C), Copy, align 8, device addresses as GlobalPtr.
unsafe impl KernelParams for PingpongParams {}

/// Shared memory of an S-stage pingpong ring: S tiles, then 2S barriers.
pub const fn pingpong_smem_bytes(stages: u32) -> u32 {
    stages * PINGPONG_TILE_ROWS * 128 + 16 * stages
}
