//! Parameters of the attention backward: preprocess, main kernel and the
//! conversion of f32 partials to 16-bit gradients.
//!
//! Workspaces (allocated by the host per call):
//! - `neg_lse_log2`, `dpsum`: f32 (batch, heads, m_blocks · block_m):
//!   −LSE·log2(e), the addend of the exponent's fused multiply-add (stored
//!   negated so no instruction negates it per use), and D; fully masked
//!   and padding rows −inf and 0 (their probabilities are then 0);
//! - `dq_accum`: f32 fragment-order blocks (`layout::fragment`),
//!   `dq_blocks()` per query block: block `((b · heads + h) · m_blocks + m)
//!   · dq_blocks + i` (`attn::tiles::BwdTiling::dq_accum_block`) is 64-row
//!   block `r` and column block `p` of the head at `((b · heads + h) ·
//!   row_blocks + r) · dq_parts + p` (`BwdTiling::dq_block`);
//! - `dq_semaphores`: u32 (batch, heads, m_blocks), for the deterministic
//!   order of the dQ reductions;
//! - with GQA, `dk_accum` / `dv_accum`: f32 fragment-order blocks
//!   `((b · heads_q + h) · key_blocks_64 + kb) · (head_dim / 64) + p`, one
//!   per query head, summed over each group by the conversion kernel.

use super::kernel::{KernelParams, KernelSpec};
use super::ptr::GlobalPtr;
use super::sched::SchedParams;
use super::tensor_map::TensorMap;
use crate::abi::fwd::FwdElem;
use crate::attn::tiles::BwdTiling;

/// One backward main kernel of the table (`abi::BWD_KERNELS`).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct BwdKernel {
    pub elem: FwdElem,
    pub tiling: BwdTiling,
    pub spec: KernelSpec,
}

/// The preprocess: grid `(m_blocks, heads, batch)`, 256 threads. For each
/// query row `D = rowsum(dO ∘ O)` and `−LSE · log2(e)` (−inf for rows past
/// `seqlen_q` and for fully masked rows), and the dQ accumulator and
/// semaphores of its query block cleared. `head_dim` a power of two from 8
/// to 256; `out` and `dout` rows 16-byte aligned with a contiguous head dim.
#[repr(C)]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct BwdPreParams {
    pub out: GlobalPtr<u16>,
    pub dout: GlobalPtr<u16>,
    /// Element strides of `out` and `dout`: batch, sequence, head.
    pub out_strides: [u64; 3],
    pub dout_strides: [u64; 3],
    pub lse: GlobalPtr<f32>,
    /// Element strides of `lse`: batch, head, sequence.
    pub lse_strides: [u64; 3],
    pub neg_lse_log2: GlobalPtr<f32>,
    pub dpsum: GlobalPtr<f32>,
    pub dq_accum: GlobalPtr<f32>,
    pub dq_semaphores: GlobalPtr<u32>,
    pub seqlen_q: u32,
    pub heads: u32,
    pub m_blocks: u32,
    pub block_m: u32,
    pub head_dim: u32,
}

/// The main kernel: a persistent grid `(g, 1, 1)`, `g <= sched.order.tiles()`,
/// 384 threads, `attn::tiles::bwd_smem_layout(..).bytes` of shared memory.
/// Tile `t` of `sched.order` with block index `b` is key block
/// `n_blocks - 1 - b` (`sched.order.m_blocks` = n_blocks): the order's
/// longest-first form then starts with the first key blocks, which causal
/// queries see most, and its plain form visits each head's key blocks last
/// first, the order the deterministic dQ reductions follow.
#[repr(C)]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct BwdParams {
    /// Q and dO: (head_dim, seqlen_q, heads, batch), box (64, block_m, 1, 1).
    pub q_map: GlobalPtr<TensorMap>,
    pub dout_map: GlobalPtr<TensorMap>,
    /// K and V: (head_dim, seqlen_k, heads_kv, batch), box (64, block_n, 1, 1).
    pub k_map: GlobalPtr<TensorMap>,
    pub v_map: GlobalPtr<TensorMap>,
    pub neg_lse_log2: GlobalPtr<f32>,
    pub dpsum: GlobalPtr<f32>,
    pub dq_accum: GlobalPtr<f32>,
    pub dq_semaphores: GlobalPtr<u32>,
    /// dK and dV (16-bit) when `heads_per_kv == 1`.
    pub dk: GlobalPtr<u16>,
    pub dv: GlobalPtr<u16>,
    /// Element strides of `dk` and `dv`: batch, sequence, head.
    pub dk_strides: [u64; 3],
    pub dv_strides: [u64; 3],
    /// Per-query-head f32 dK and dV when `heads_per_kv > 1`.
    pub dk_accum: GlobalPtr<f32>,
    pub dv_accum: GlobalPtr<f32>,
    pub sched: SchedParams,
    pub seqlen_q: u32,
    pub seqlen_k: u32,
    pub heads: u32,
    pub heads_per_kv: u32,
    /// Query blocks per head (of the workspaces).
    pub m_blocks: u32,
    /// ceil(seqlen_k / 64): the GQA workspaces' key blocks per head.
    pub key_blocks_64: u32,
    /// Keys visible left / right of the diagonal; negative = unbounded.
    pub window_left: i32,
    pub window_right: i32,
    /// softmax_scale (dK is scaled by it on the way out).
    pub scale: f32,
    /// softmax_scale · log2(e).
    pub scale_log2: f32,
    /// 1: the dQ reductions of one query block happen in a fixed order.
    pub deterministic: u32,
}

/// The conversion of f32 fragment-order blocks to 16-bit rows: grid
/// `(row_blocks · parts, heads_out, batch)`, 128 threads. Output head `h`
/// is the sum of source heads `h · group .. (h + 1) · group` (in that
/// order), times `scale`: dQ (group 1, scale = softmax_scale), GQA's dK
/// (scale = softmax_scale) and dV (1).
#[repr(C)]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct BwdConvertParams {
    pub src: GlobalPtr<f32>,
    pub out: GlobalPtr<u16>,
    /// Element strides of `out`: batch, sequence, head.
    pub out_strides: [u64; 3],
    /// Rows of `out` per (batch, head) (rows past it are not written).
    pub rows: u32,
    pub row_blocks: u32,
    /// 64-column blocks per row block.
    pub parts: u32,
    pub src_heads: u32,
    pub group: u32,
    pub scale: f32,
}

// SAFETY: repr(C), Copy, align 8, device addresses as GlobalPtr.
unsafe impl KernelParams for BwdPreParams {}
// SAFETY: as above.
unsafe impl KernelParams for BwdParams {}
// SAFETY: as above.
unsafe impl KernelParams for BwdConvertParams {}
