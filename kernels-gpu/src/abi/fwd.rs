//! Parameters of the attention forward kernels.

use super::kernel::{KernelParams, KernelSpec};
use super::ptr::GlobalPtr;
use super::tensor_map::TensorMap;
use crate::attn::tile_order::TileOrder;
use crate::attn::tiles::Tiling;

/// Which scheduling techniques a forward kernel build has (FA3 section 3):
/// both, for every entry point; the others exist to measure what each
/// technique is worth (the bench's `--ablation`).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub enum Schedule {
    /// Pingpong between the consumer warpgroups and the intra-warpgroup
    /// overlap of softmax with the GEMMs.
    Full,
    /// Without pingpong.
    NoPingpong,
    /// Without the intra-warpgroup overlap.
    NoOverlap,
    /// Without either.
    Plain,
}

impl Schedule {
    /// Whether the consumers take turns to issue their GEMMs.
    pub const fn pingpong(self) -> bool {
        matches!(self, Self::Full | Self::NoOverlap)
    }

    /// Whether a consumer's softmax runs under its own P·V.
    pub const fn overlap(self) -> bool {
        matches!(self, Self::Full | Self::NoPingpong)
    }
}

/// The 16-bit element types of the forward kernels.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub enum FwdElem {
    Bf16,
    F16,
}

/// One forward kernel of the table: what it computes, and its entry (whose
/// parameter block is [`FwdParams`]). `abi::FWD_KERNELS` lists them all,
/// generated with the kernel table from the same rows.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct FwdKernel {
    pub elem: FwdElem,
    pub tiling: Tiling,
    pub schedule: Schedule,
    pub spec: KernelSpec,
}

/// One forward launch: a persistent grid `(g, 1, 1)`, `g <= order.tiles()`
/// (CTA `b` starts with tile `b` of `order` and claims further ones from
/// `tile_counter`), 384 threads, `attn::tiles::smem_layout(..).bytes` bytes of
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::FWD_KERNELS;
    use crate::attn::tiles::{HDIM128, LONG_TILINGS, TILINGS};

    /// The host picks a forward kernel by (element, tiling, schedule): each
    /// tiling of the table has one full kernel per element type, no two rows
    /// make the same choice, and the ablation builds are bf16 hdim 128.
    #[test]
    fn every_choice_has_one_kernel() {
        let rows = |elem, tiling, schedule| {
            FWD_KERNELS
                .iter()
                .filter(|k| (k.elem, k.tiling, k.schedule) == (elem, tiling, schedule))
                .count()
        };
        for tiling in TILINGS.into_iter().chain(LONG_TILINGS) {
            for elem in [FwdElem::Bf16, FwdElem::F16] {
                assert_eq!(rows(elem, tiling, Schedule::Full), 1, "{elem:?} {tiling:?}");
            }
        }
        for schedule in [Schedule::NoPingpong, Schedule::NoOverlap, Schedule::Plain] {
            assert_eq!(rows(FwdElem::Bf16, HDIM128, schedule), 1, "{schedule:?}");
        }
        assert_eq!(
            FWD_KERNELS.len(),
            2 * (TILINGS.len() + LONG_TILINGS.len()) + 3
        );
        assert!(Schedule::Full.pingpong() && Schedule::Full.overlap());
        assert!(!Schedule::Plain.pingpong() && !Schedule::Plain.overlap());
        assert!(!Schedule::NoPingpong.pingpong() && Schedule::NoPingpong.overlap());
        assert!(Schedule::NoOverlap.pingpong() && !Schedule::NoOverlap.overlap());
    }
}
