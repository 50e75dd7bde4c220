//! Parameters of the attention forward kernels.

use super::kernel::KernelParams;
use super::ptr::GlobalPtr;
use super::tensor_map::TensorMap;
use crate::attn::tile_order::TileOrder;

/// One forward launch: a persistent grid `(g, 1, 1)`, `g <= order.tiles()`
/// (CTA `b` starts with tile `b` of `order` and claims further ones from
/// `tile_counter`), 384 threads, `attn::tiles::smem_layout(..).3` bytes of
/// shared memory.
#[repr(C)]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct FwdParams {
    /// Q as a 4-D map: (head_dim, seqlen_q, heads_q, batch), box (64, 128, 1, 1).
    pub q_map: GlobalPtr<TensorMap>,
    /// K: (head_dim, seqlen_k, heads_kv, batch), box (64, block_n, 1, 1).
    pub k_map: GlobalPtr<TensorMap>,
    /// V: like K.
    pub v_map: GlobalPtr<TensorMap>,
    /// Output elements (bf16 or f16 bits).
    pub out: GlobalPtr<u16>,
    pub lse: GlobalPtr<f32>,
    /// The tile claim counter: a claim that reads `c` takes tile
    /// `grid + c - tile_base` (wrapping). Each launch makes exactly
    /// `order.tiles()` claims, so the next launch's base is this one's plus
    /// that; the counter is never reset.
    pub tile_counter: GlobalPtr<u32>,
    /// Element strides of `out`: batch, sequence, head (head_dim is 1).
    pub out_strides: [u64; 3],
    /// Element strides of `lse`: batch, head, sequence.
    pub lse_strides: [u64; 3],
    pub seqlen_q: u32,
    pub seqlen_k: u32,
    /// Which tile each CTA computes: the launch order of the tiles.
    pub order: TileOrder,
    /// The counter's value when this launch began (see `tile_counter`).
    pub tile_base: u32,
    /// heads_q / heads_kv (GQA group size).
    pub heads_per_kv: u32,
    /// Keys visible left / right of the diagonal; negative = unbounded.
    pub window_left: i32,
    pub window_right: i32,
    /// softmax_scale, for the log-sum-exp.
    pub scale: f32,
    /// softmax_scale · log2(e): scores go through exp2.
    pub scale_log2: f32,
}

// SAFETY: repr(C), Copy, align 8, device addresses as GlobalPtr.
unsafe impl KernelParams for FwdParams {}
