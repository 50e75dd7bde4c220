//! Parameters of the FP8 quantization kernel (`fp8::quantize`).

use super::kernel::KernelParams;
use super::ptr::GlobalPtr;

/// One launch of the quantizer: grid `(groups_per_head · chunks_per_group,
/// heads, batch)`, 256 threads; twice per call, `pass` 0 then 1.
///
/// The values of a (batch, head) are cut into groups of `group_rows`
/// positions (one scale each; `seqlen` per (batch, head) or per tensor, a
/// block's `rows` per block) and a group into chunks of `chunk_rows`, one
/// CTA each. Pass 0 adds each chunk's largest magnitude into its group's
/// `amax` word (the bits of a non-negative f32 order like the value); pass
/// 1 turns it into the scale, writes it (the group's first chunk, in the
/// first CTA along any axis the scales do not have) and writes the data.
#[repr(C)]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct Fp8QuantizeParams {
    /// `x` at its first element (16-bit values); element strides (batch,
    /// seqlen, head); head_dim contiguous, rows 16-byte aligned.
    pub x: GlobalPtr<u16>,
    pub x_strides: [u64; 3],
    /// `data` at its first element (e4m3 bytes); strides likewise, rows
    /// 8-byte aligned.
    pub data: GlobalPtr<u8>,
    pub data_strides: [u64; 3],
    /// `scales` at its first element; element strides (batch, head,
    /// block), 0 along the axes the scaling does not have.
    pub scales: GlobalPtr<f32>,
    pub scale_strides: [u64; 3],
    /// One word per scale, zeroed before pass 0; strides like
    /// `scale_strides` (0 where those are).
    pub amax: GlobalPtr<u32>,
    pub amax_strides: [u32; 3],
    /// 1/√head_dim with incoherent processing, 0 without.
    pub rotation_norm: f32,
    pub seed: u64,
    pub seqlen: u32,
    /// A power of two from 8 to 256.
    pub head_dim: u32,
    /// Positions per group (at least 1).
    pub group_rows: u32,
    /// CTAs per group, each `chunk_rows` positions of it.
    pub chunks_per_group: u32,
    pub chunk_rows: u32,
    /// 0: the group maxima; 1: scales and data.
    pub pass: u32,
}

// SAFETY: repr(C), Copy, align 8, device addresses as GlobalPtr.
unsafe impl KernelParams for Fp8QuantizeParams {}
