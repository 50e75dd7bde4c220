//! The GPU forward: tensor maps of q, k, v, the parameter block, and the
//! launch of the kernel for the element type and head dim; for FP8 inputs
//! also the dequantization factors (`abi::fwd::Fp8DescaleParams`).

use super::args::{ForwardInto, Fp8Scales, Qkv};
use super::element::ForwardKernels;
use super::validate::{CheckedForward, CheckedOutputs};
use crate::error::{Error, Result};
use crate::gpu::{DeviceBuffer, Element, Gpu, LaunchShape, TmaElement, TmaView};
use fa3_kernels::abi::fwd::{Fp8DescaleParams, FwdElem, FwdKernel, FwdParams, ScaleIndex};
use fa3_kernels::abi::{FWD_KERNELS, GlobalPtr};
use fa3_kernels::attn::tile_order::{Problem as TileProblem, TileOrder};
use fa3_kernels::attn::tiles::{BLOCK_M, Tiling, fp8_tiling, smem_layout, tiling};
use fa3_kernels::layout::swizzle::segment_bytes;
use std::f32::consts::LOG2_E;

/// Which scheduling techniques a forward kernel build has; the ablation
/// builds are reached through `fa3::diagnostics::forward_with_schedule`.
pub use fa3_kernels::abi::fwd::Schedule;

/// Runs the forward of a validated, non-empty problem on `gpu` with the
/// kernel build of `schedule` (every technique on, but for the ablation):
/// 16-bit inputs with `O = T`, or e4m3 inputs with `descale` and `O =
/// bf16`.
pub(super) fn forward_into<T: TmaElement + ForwardKernels, O: Element>(
    gpu: &Gpu,
    checked: &CheckedForward<4>,
    qkv: &Qkv<'_, T, 4>,
    mut into: ForwardInto<'_, O, 4, 3>,
    outputs: &CheckedOutputs<4, 3>,
    schedule: Schedule,
    descale: Option<Fp8Scales<'_>>,
) -> Result<()> {
    let problem = &checked.problem;
    let params = problem.params;
    let head_dim = problem.head_dim;
    if params.softcap != 0.0 {
        return Err(Error::Unsupported {
            feature: "GPU forward with softcap",
        });
    }
    let [batch, seqlen_q, heads_q, _] = qkv.q.shape();
    let [_, seqlen_k, heads_kv, _] = qkv.k.shape();
    let too_big = Error::Unsupported {
        feature: "GPU forward with 2^31 or more tokens or heads (TMA coordinates are i32), or 2^32 or more tiles of 128 queries",
    };
    // TMA coordinates are i32.
    if [batch, seqlen_q, seqlen_k, heads_q]
        .iter()
        .any(|&x| x > i32::MAX as usize)
    {
        return Err(too_big);
    }
    let fp8 = T::FWD_ELEM == FwdElem::E4m3;
    let tiles = if fp8 {
        fp8_tiling(head_dim as u32)
    } else {
        tiling(head_dim as u32, seqlen_k as u32)
    };
    let tiles = tiles
        .filter(|_| problem.head_dim_v == head_dim)
        .ok_or(Error::Unsupported {
            feature: if fp8 {
                "GPU FP8 forward for this head dim (the FP8 kernels take head_dim = head_dim_v = 64, 128 or 256)"
            } else {
                "GPU forward for this head dim (the kernels take head_dim = head_dim_v = 64, 128 or 256)"
            },
        })?;
    let (descale, _descale_buffers) = match descale {
        Some(scales) => {
            let (params, buffers) = upload_descale(gpu, scales, qkv, tiles)?;
            (params, Some(buffers))
        }
        None => (NO_DESCALE, None),
    };
    let _descale_reads = _descale_buffers
        .as_ref()
        .map(|b| b.each_ref().map(|b| gpu.read_ptr(b).1));
    let order = TileOrder::new(
        &TileProblem {
            seqlen_q: seqlen_q as u32,
            seqlen_k: seqlen_k as u32,
            heads: heads_q as u32,
            batch: batch as u32,
            heads_per_kv: (heads_q / heads_kv) as u32,
            head_dim: head_dim as u32,
            elem_bytes: size_of::<T>() as u32,
            causal: params.mask.right.is_some(),
        },
        BLOCK_M,
    )
    .ok_or(too_big)?;

    let [q_layout, k_layout, v_layout] = &checked.qkv;
    let q_map = map(gpu, buffer(&qkv.q)?, q_layout, BLOCK_M)?;
    // Without keys no K/V box is ever loaded; q's map stands in (a map needs
    // every dimension >= 1).
    let (k_map, v_map) = if seqlen_k == 0 {
        (None, None)
    } else {
        (
            Some(map(gpu, buffer(&qkv.k)?, k_layout, tiles.block_n)?),
            Some(map(gpu, buffer(&qkv.v)?, v_layout, tiles.block_n)?),
        )
    };

    let [ob, os, oh, _] = outputs.out.strides;
    let [lb, lh, ls] = outputs.lse.strides;
    let (out_offset, lse_offset) = (outputs.out.offset, outputs.lse.offset);
    let out_buf = into.out.device_buffer_mut().ok_or_else(residency_bug)?;
    let (out_ptr, _out_guard) = gpu.write_ptr(out_buf);
    let lse_buf = into.lse.device_buffer_mut().ok_or_else(residency_bug)?;
    let (lse_ptr, _lse_guard) = gpu.write_ptr(lse_buf);
    let (q_ptr, _q) = gpu.map_ptr(&q_map);
    let (k_ptr, _k) = gpu.map_ptr(k_map.as_ref().unwrap_or(&q_map));
    let (v_ptr, _v) = gpu.map_ptr(v_map.as_ref().unwrap_or(&q_map));
    // The kernel reads q, k and v through the maps; these guards order the
    // launch after earlier writes to them on the stream.
    let _reads = [&qkv.q, &qkv.k, &qkv.v].map(|t| t.device_buffer().map(|b| gpu.read_ptr(b).1));

    let scale = params.scale as f32;
    let tiles_total = order.tiles();
    let params_with = |tile_counter, tile_base| FwdParams {
        q_map: q_ptr,
        k_map: k_ptr,
        v_map: v_ptr,
        out: GlobalPtr::from_address(out_ptr.address() + (out_offset * size_of::<O>()) as u64),
        lse: GlobalPtr::from_address(lse_ptr.address() + (lse_offset * size_of::<f32>()) as u64),
        out_strides: [ob as u64, os as u64, oh as u64],
        lse_strides: [lb as u64, lh as u64, ls as u64],
        tile_counter,
        seqlen_q: seqlen_q as u32,
        seqlen_k: seqlen_k as u32,
        order,
        tile_base,
        heads_per_kv: (heads_q / heads_kv) as u32,
        window_left: window_bound(params.mask.left),
        window_right: window_bound(params.mask.right),
        scale,
        scale_log2: scale * LOG2_E,
        descale,
    };
    let kernel = kernel(T::FWD_ELEM, tiles, schedule)?;
    let shape = LaunchShape {
        grid: gpu.persistent_grid(tiles_total),
        threads_per_block: kernel.spec.max_threads_per_block,
        dynamic_smem_bytes: smem_layout(tiles, size_of::<T>() as u32).bytes,
    };
    // SAFETY: validation checked every view inside its buffer (shapes,
    // strides, 16-byte alignment) and the outputs apart from the inputs; the
    // maps describe exactly those views; the tile order covers seqlen_q with
    // query blocks that start inside it; the guards keep the buffers
    // tracked on this stream until the launch has run; the kernel claims
    // each tile once, `tiles_total` claims in all; `kernel` is a
    // `FWD_KERNELS` row, whose entry takes `FwdParams` and was built with
    // `tiles` (the shared memory and K/V boxes above follow from them); an
    // e4m3 kernel's factors are device buffers of the lengths
    // `validate::descale` checked, indexed as `upload_descale` says.
    gpu.with_tile_counter(tiles_total, |counter, base| unsafe {
        gpu.launch_entry(&kernel.spec, shape, params_with(counter, base))
    })
}

/// A window bound as the kernels take it: keys visible left or right of
/// the diagonal, -1 for unbounded (clamped to i32, more than any length).
pub(super) fn window_bound(bound: Option<usize>) -> i32 {
    bound.map_or(-1, |x| x.min(i32::MAX as usize) as i32)
}

/// The 4-D map (head_dim, seqlen, heads, batch) of a validated view, with
/// boxes of one swizzled row segment of head dims (`segment_bytes`: 128
/// bytes, or a 64-byte row whole) by `rows` tokens of one head.
pub(super) fn map<T: TmaElement>(
    gpu: &Gpu,
    buffer: &DeviceBuffer<T>,
    layout: &super::layout::Checked<4>,
    rows: u32,
) -> Result<std::sync::Arc<crate::gpu::DeviceTensorMap>> {
    let [b, s, h, d] = layout.shape;
    let [sb, ss, sh, _] = layout.strides;
    let bytes = size_of::<T>() as u64;
    gpu.tensor_map(
        buffer,
        &TmaView {
            offset: layout.offset as u64,
            dims: &[d as u64, s as u64, h as u64, b as u64],
            strides_bytes: &[ss as u64 * bytes, sh as u64 * bytes, sb as u64 * bytes],
            box_dims: &[
                segment_bytes((d as u64 * bytes) as u32) / bytes as u32,
                rows,
                1,
                1,
            ],
        },
    )
}

/// The forward kernel of `elem` and `tiles` (a row of the kernel table,
/// whose entry takes `FwdParams`). `Schedule::Full` asks for the table's
/// build with the most techniques on: every tiling has one, and for FP8
/// head_dim 256 it is the build without the overlap (the overlap does not
/// fit its registers, `abi::table`). Any other schedule asks for exactly
/// that ablation build.
fn kernel(elem: FwdElem, tiles: Tiling, schedule: Schedule) -> Result<&'static FwdKernel> {
    let mut builds = FWD_KERNELS
        .iter()
        .filter(|k| k.elem == elem && k.tiling == tiles);
    let found = if schedule == Schedule::Full {
        builds.max_by_key(|k| k.schedule.techniques())
    } else {
        builds.find(|k| k.schedule == schedule)
    };
    found.ok_or(Error::Unsupported {
        feature: if schedule == Schedule::Full {
            "GPU forward for this head dim"
        } else {
            "forward ablation builds other than bf16 with head_dim 128"
        },
    })
}

/// The device buffer under an input view.
pub(super) fn buffer<'a, T>(t: &super::Tensor<'a, T, 4>) -> Result<&'a DeviceBuffer<T>> {
    t.device_buffer().ok_or_else(residency_bug)
}

/// Validation puts every tensor of a GPU call in that GPU's memory.
pub(super) fn residency_bug() -> Error {
    Error::WrongMemory {
        tensor: "q/k/v/out/lse",
        expected: "device memory of the GPU (validation should have caught this)".to_string(),
        found: "host memory".to_string(),
    }
}

/// The 16-bit kernels read no factors.
const NO_DESCALE: Fp8DescaleParams = {
    let none = ScaleIndex {
        batch: 0,
        head: 0,
        block: 0,
        head_group: 1,
    };
    Fp8DescaleParams {
        q: GlobalPtr::from_address(0),
        k: GlobalPtr::from_address(0),
        v: GlobalPtr::from_address(0),
        q_index: none,
        kv_index: none,
    }
};

/// The FP8 factors (validated by `validate::descale`: lengths, finite and
/// positive) copied to the device, and how the kernel indexes them. Block
/// factors must be of the kernel's blocks: `BLOCK_M` queries and
/// `block_n` keys.
fn upload_descale<T>(
    gpu: &Gpu,
    scales: Fp8Scales<'_>,
    qkv: &Qkv<'_, T, 4>,
    tiles: Tiling,
) -> Result<(Fp8DescaleParams, [DeviceBuffer<f32>; 3])> {
    let [_, seqlen_q, heads_q, _] = qkv.q.shape();
    let [_, seqlen_k, heads_kv, _] = qkv.k.shape();
    let (q, k, v, q_index, kv_index) = match scales {
        Fp8Scales::PerKvHead(d) => {
            let per_kv_head = |head_group| ScaleIndex {
                batch: heads_kv as u32,
                head: 1,
                block: 0,
                head_group,
            };
            (
                d.q,
                d.k,
                d.v,
                per_kv_head((heads_q / heads_kv) as u32),
                per_kv_head(1),
            )
        }
        Fp8Scales::PerBlock(d) => {
            if (d.q_rows, d.k_rows) != (BLOCK_M as usize, tiles.block_n as usize) {
                return Err(Error::InvalidArgument {
                    argument: "descale",
                    problem: format!(
                        "blocks of {} queries and {} keys; accepted on the GPU: the kernel's tiles, {BLOCK_M} queries and {} keys (fa3::fp8_block_rows({}))",
                        d.q_rows, d.k_rows, tiles.block_n, tiles.head_dim
                    ),
                });
            }
            let per_block = |heads: usize, blocks: usize| ScaleIndex {
                batch: (heads * blocks) as u32,
                head: blocks as u32,
                block: 1,
                head_group: 1,
            };
            (
                d.q,
                d.k,
                d.v,
                per_block(heads_q, seqlen_q.div_ceil(d.q_rows)),
                per_block(heads_kv, seqlen_k.div_ceil(d.k_rows)),
            )
        }
    };
    let buffers = [gpu.upload(q)?, gpu.upload(k)?, gpu.upload(v)?];
    let params = Fp8DescaleParams {
        q: GlobalPtr::from_address(buffers[0].address()),
        k: GlobalPtr::from_address(buffers[1].address()),
        v: GlobalPtr::from_address(buffers[2].address()),
        q_index,
        kv_index,
    };
    Ok((params, buffers))
}
