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

    /// How many of the two techniques the schedule has on.
    pub const fn techniques(self) -> u32 {
        self.pingpong() as u32 + self.overlap() as u32
    }
}

/// The input element types of the forward kernels.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub enum FwdElem {
    Bf16,
    F16,
    /// FP8 e4m3 (O in bf16, dequantized with [`Fp8DescaleParams`]).
    E4m3,
}

/// Where one tensor's dequantization factors are: the factor of batch `b`,
/// head `h` (a query head for Q, a kv head for K and V) and block `i` (of
/// the kernel's `BLOCK_M` queries or `block_n` keys) is element `b * batch
/// + (h / head_group) * head + i * block`. FA3's per-(batch, kv head)
/// factors have `block = 0`, and Q's `head_group` is the GQA group.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct ScaleIndex {
    pub batch: u32,
    pub head: u32,
    pub block: u32,
    pub head_group: u32,
}

impl ScaleIndex {
    /// The element of (batch, head, block).
    #[inline(always)]
    pub const fn at(&self, batch: u32, head: u32, block: u32) -> u32 {
        batch * self.batch + (head / self.head_group) * self.head + block * self.block
    }
}

/// The FP8 forward's dequantization factors (f32). Scores are
/// `softmax_scale · q(i) · k(j) · q·k` for query block `i` and key block
/// `j`; values are `v(j) · v`. Unread by the 16-bit kernels (null).
#[repr(C)]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct Fp8DescaleParams {
    pub q: GlobalPtr<f32>,
    pub k: GlobalPtr<f32>,
    pub v: GlobalPtr<f32>,
    pub q_index: ScaleIndex,
    /// K's and V's (the same shape).
    pub kv_index: ScaleIndex,
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
    /// Q as a 4-D map: (head_dim, seqlen_q, heads_q, batch), box (128 bytes
    /// of head dims, 128, 1, 1).
    pub q_map: GlobalPtr<TensorMap>,
    /// K: (head_dim, seqlen_k, heads_kv, batch), box (128 bytes, block_n, 1, 1).
    pub k_map: GlobalPtr<TensorMap>,
    /// V: like K.
    pub v_map: GlobalPtr<TensorMap>,
    /// Output elements (bf16 or f16 bits; bf16 for e4m3 inputs).
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
    /// e4m3 kernels only.
    pub descale: Fp8DescaleParams,
}

// SAFETY: repr(C), Copy, align 8, device addresses as GlobalPtr.
unsafe impl KernelParams for FwdParams {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::FWD_KERNELS;
    use crate::attn::tiles::{FP8_TILINGS, HDIM128, LONG_TILINGS, TILINGS};

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
        // One FP8 kernel per tiling, whatever its schedule (hdim 256 runs
        // without the overlap: abi::table).
        for tiling in FP8_TILINGS {
            let fp8 = FWD_KERNELS
                .iter()
                .filter(|k| (k.elem, k.tiling) == (FwdElem::E4m3, tiling))
                .count();
            assert_eq!(fp8, 1, "{tiling:?}");
        }
        assert_eq!(
            FWD_KERNELS.len(),
            2 * (TILINGS.len() + LONG_TILINGS.len()) + 3 + FP8_TILINGS.len()
        );
        assert!(Schedule::Full.pingpong() && Schedule::Full.overlap());
        assert!(!Schedule::Plain.pingpong() && !Schedule::Plain.overlap());
        assert!(!Schedule::NoPingpong.pingpong() && Schedule::NoPingpong.overlap());
        assert!(Schedule::NoOverlap.pingpong() && !Schedule::NoOverlap.overlap());
    }
}
