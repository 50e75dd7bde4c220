//! The GPU backend of [`Device::quantize_fp8_into`](super::Device::quantize_fp8_into):
//! two launches of the quantizer (`fa3_kernels::abi::fp8`), the group
//! maxima and then the scales and data, over a zeroed word per scale.

use super::args::{Fp8Quantize, Fp8QuantizedInto, Fp8Scaling};
use super::element::AttentionElement;
use super::gpu_forward::{buffer, residency_bug};
use super::layout::Checked;
use super::tensor::Tensor;
use super::validate::CheckedQuantize;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, LaunchShape};
use fa3_kernels::abi::GlobalPtr;
use fa3_kernels::abi::fp8::Fp8QuantizeParams;

/// Positions of a group one CTA takes at most (256 threads; 16 passes of
/// 16 rows at head_dim 128).
const CHUNK_ROWS: usize = 256;

/// Quantizes checked device views on `gpu`.
pub(super) fn quantize<T: AttentionElement>(
    gpu: &Gpu,
    x: &Tensor<'_, T, 4>,
    into: &mut Fp8QuantizedInto<'_>,
    options: &Fp8Quantize,
    checked: &CheckedQuantize,
) -> Result<()> {
    let [batch, seqlen, heads, head_dim] = checked.x.shape;
    if !(head_dim.is_power_of_two() && (8..=256).contains(&head_dim)) {
        return Err(Error::Unsupported {
            feature: "GPU FP8 quantization of this head_dim (it takes powers of two from 8 to 256)",
        });
    }
    if batch > 65535 || heads > 65535 {
        return Err(Error::Unsupported {
            feature: "GPU FP8 quantization of more than 65535 batches or heads",
        });
    }
    let scales_shape = checked.scales.shape;
    let scales_len: usize = scales_shape.iter().product();
    if scales_len == 0 {
        return Ok(()); // no group, nothing to write
    }
    let group_rows = match options.scaling {
        Fp8Scaling::PerBlock { rows } => rows,
        Fp8Scaling::PerHead | Fp8Scaling::PerTensor => seqlen,
    }
    .max(1);
    let chunk_rows = group_rows.min(CHUNK_ROWS);
    let chunks_per_group = group_rows.div_ceil(chunk_rows);
    // No positions: one empty group per head still writes its scale (1).
    let groups_per_head = seqlen.div_ceil(group_rows).max(1);
    let grid_x = groups_per_head
        .checked_mul(chunks_per_group)
        .filter(|&g| g <= i32::MAX as usize)
        .ok_or(Error::Unsupported {
            feature: "GPU FP8 quantization with 2^31 or more chunks per head",
        })?;
    // Zero-filled: pass 0 only raises the words.
    let mut amax = gpu.alloc::<u32>(scales_len)?;
    // Along an axis of length 1 every group is at 0 (and the kernel's
    // writer test relies on those strides being 0).
    let [sb, sh, sn] = scales_shape;
    let zero_if_one = |len: usize, stride: usize| if len == 1 { 0 } else { stride };
    let amax_strides = [
        zero_if_one(sb, sh * sn) as u32,
        zero_if_one(sh, sn) as u32,
        zero_if_one(sn, 1) as u32,
    ];
    let s = checked.scales.strides;
    let scale_strides = [
        zero_if_one(sb, s[0]) as u64,
        zero_if_one(sh, s[1]) as u64,
        zero_if_one(sn, s[2]) as u64,
    ];
    let strides3 = |c: &Checked<4>| {
        let [b, s, h, _] = c.strides;
        [b as u64, s as u64, h as u64]
    };
    let (x_ptr, _x) = gpu.read_ptr(buffer(x)?);
    let data_buf = into.data.device_buffer_mut().ok_or_else(residency_bug)?;
    let (data_ptr, _d) = gpu.write_ptr(data_buf);
    let scales_buf = into.scales.device_buffer_mut().ok_or_else(residency_bug)?;
    let (scales_ptr, _s) = gpu.write_ptr(scales_buf);
    let (amax_ptr, _a) = gpu.write_ptr(&mut amax);
    let params = |pass| Fp8QuantizeParams {
        x: GlobalPtr::from_address(x_ptr.address() + 2 * checked.x.offset as u64),
        x_strides: strides3(&checked.x),
        data: GlobalPtr::from_address(data_ptr.address() + checked.data.offset as u64),
        data_strides: strides3(&checked.data),
        scales: GlobalPtr::from_address(scales_ptr.address() + 4 * checked.scales.offset as u64),
        scale_strides,
        amax: amax_ptr,
        amax_strides,
        rotation_norm: options
            .hadamard_seed
            .map_or(0.0, |_| (1.0 / (head_dim as f64).sqrt()) as f32),
        seed: options.hadamard_seed.unwrap_or(0),
        seqlen: seqlen as u32,
        head_dim: head_dim as u32,
        group_rows: group_rows as u32,
        chunks_per_group: chunks_per_group as u32,
        chunk_rows: chunk_rows as u32,
        pass,
    };
    let spec = T::FP8_QUANTIZE;
    let shape = LaunchShape {
        grid: (grid_x as u32, heads as u32, batch as u32),
        threads_per_block: spec.max_threads_per_block,
        dynamic_smem_bytes: 0,
    };
    for pass in [0, 1] {
        // SAFETY: x, data and scales are validated device views of this
        // call (16-byte aligned rows of x and data, a contiguous head dim
        // that is a power of two from 8 to 256), amax holds one zeroed
        // word per scale, and pass 1 follows pass 0 on the stream.
        unsafe { gpu.launch_entry(&spec, shape, params(pass))? };
    }
    Ok(())
}
