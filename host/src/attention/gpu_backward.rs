//! The GPU backward: workspaces, tensor maps and the parameter blocks of
//! its kernels (`fa3_kernels::abi::bwd`), launched in order on the stream:
//! preprocess, the persistent main kernel, then the conversions of the f32
//! partials to the 16-bit gradients (dQ; with GQA dK and dV).

use super::args::{BackwardInputs, GradientsInto};
use super::element::AttentionElement;
use super::gpu_forward::{buffer, map, residency_bug, window_bound};
use super::layout::Checked;
use super::validate::CheckedBackward;
use crate::error::{Error, Result};
use crate::gpu::{DeviceBuffer, Gpu, LaunchShape};
use fa3_kernels::abi::bwd::{BwdConvertParams, BwdKernel, BwdParams, BwdPreParams};
use fa3_kernels::abi::fwd::FwdElem;
use fa3_kernels::abi::sched::SchedParams;
use fa3_kernels::abi::{BWD_KERNELS, GlobalPtr};
use fa3_kernels::attn::tile_order::{Problem as TileProblem, TileOrder};
use fa3_kernels::attn::tiles::{BwdTiling, DQ_BLOCK_COLS, bwd_smem_layout, bwd_tiling};
use fa3_kernels::layout::fragment::FRAG_BLOCK_BYTES;
use std::f32::consts::LOG2_E;

/// f32 per fragment-order block.
const BLOCK_FLOATS: usize = (FRAG_BLOCK_BYTES / 4) as usize;
/// Rows of a fragment-order block (query or key rows of the partials).
const BLOCK_ROWS: usize = 64;

/// Runs the backward of a validated problem with at least one query or
/// key on `gpu`.
pub(super) fn backward_into<T: AttentionElement>(
    gpu: &Gpu,
    checked: &CheckedBackward<4, 3>,
    inputs: &BackwardInputs<'_, T, 4, 3>,
    mut into: GradientsInto<'_, T, 4>,
    grads: &[Checked<4>; 3],
    deterministic: bool,
) -> Result<()> {
    let problem = &checked.problem;
    let params = problem.params;
    if params.softcap != 0.0 {
        return Err(Error::Unsupported {
            feature: "GPU backward with softcap",
        });
    }
    let tiling = bwd_tiling(problem.head_dim as u32)
        .filter(|_| problem.head_dim_v == problem.head_dim)
        .ok_or(Error::Unsupported {
            feature: "GPU backward for this head dim (the kernels take head_dim = head_dim_v = 64, 128 or 256)",
        })?;
    let [batch, seqlen_q, heads, head_dim] = inputs.q.shape();
    let [_, seqlen_k, heads_kv, _] = inputs.k.shape();
    if [batch, seqlen_q, seqlen_k, heads]
        .iter()
        .any(|&x| x > i32::MAX as usize)
    {
        return Err(Error::Unsupported {
            feature: "GPU backward with 2^31 or more tokens or heads (TMA coordinates are i32)",
        });
    }
    let group = heads / heads_kv;
    let m_blocks = seqlen_q.div_ceil(tiling.block_m as usize);
    let parts = tiling.dq_parts() as usize;
    // dQ's 64-row blocks per head in the accumulator (padding included).
    let dq_row_blocks = m_blocks * tiling.dq_row_blocks() as usize;
    let key_blocks_64 = seqlen_k.div_ceil(BLOCK_ROWS);
    let head_rows = batch * heads;
    let kv_parts = head_dim / DQ_BLOCK_COLS as usize;
    // Rows of the row statistics, fragment-order blocks of dQ and of the
    // GQA dK / dV: the kernels index them in u32.
    let rows = head_rows * m_blocks * tiling.block_m as usize;
    let dq_blocks = head_rows * dq_row_blocks * parts;
    let kv_blocks = head_rows * key_blocks_64 * kv_parts;
    if [rows, dq_blocks, kv_blocks]
        .iter()
        .any(|&n| n > u32::MAX as usize)
    {
        return Err(Error::Unsupported {
            feature: "GPU backward with 2^32 or more workspace rows or blocks (batch · heads · seqlen)",
        });
    }
    // Never empty: a kernel parameter needs an address even where nothing
    // is read through it. Not zero-filled: the preprocess writes every row
    // statistic (padding rows included) and clears every dQ block and
    // semaphore before the main kernel reads them, and the main kernel
    // writes every 64-key block of the GQA workspaces (tiles no query sees
    // write zeros) before the conversion reads them.
    let workspace = |len: usize| -> Result<DeviceBuffer<f32>> {
        // SAFETY: written before read, as said above.
        unsafe { gpu.alloc_uninit::<f32>(len.max(1)) }
    };
    let mut neg_lse_log2 = workspace(rows)?;
    let mut dpsum = workspace(rows)?;
    let mut dq_accum = workspace(dq_blocks * BLOCK_FLOATS)?;
    // SAFETY: cleared by the preprocess before the main kernel reads it.
    let mut semaphores = unsafe { gpu.alloc_uninit::<u32>((head_rows * m_blocks).max(1))? };
    let gqa_len = if group > 1 {
        kv_blocks * BLOCK_FLOATS
    } else {
        0
    };
    let mut dk_accum = workspace(gqa_len)?;
    let mut dv_accum = workspace(gqa_len)?;

    let [q_layout, k_layout, v_layout] = &checked.qkv;
    let [dq_layout, dk_layout, dv_layout] = grads;
    // A map needs every dimension >= 1: without queries (or keys) nothing
    // is loaded through it, and another stands in.
    let q_map = (seqlen_q > 0)
        .then(|| map(gpu, buffer(&inputs.q)?, q_layout, tiling.block_m))
        .transpose()?;
    let dout_map = (seqlen_q > 0)
        .then(|| map(gpu, buffer(&inputs.dout)?, &checked.dout, tiling.block_m))
        .transpose()?;
    let k_map = (seqlen_k > 0)
        .then(|| map(gpu, buffer(&inputs.k)?, k_layout, tiling.block_n()))
        .transpose()?;
    let v_map = (seqlen_k > 0)
        .then(|| map(gpu, buffer(&inputs.v)?, v_layout, tiling.block_n()))
        .transpose()?;

    let strides3 = |c: &Checked<4>| {
        let [b, s, h, _] = c.strides;
        [b as u64, s as u64, h as u64]
    };
    let elem = size_of::<T>() as u64;
    let at = |ptr: GlobalPtr<T>, c: &Checked<4>| -> GlobalPtr<u16> {
        GlobalPtr::from_address(ptr.address() + c.offset as u64 * elem)
    };
    let scale = params.scale as f32;
    let (pre, convert) = T::BWD_AUX;

    // Preprocess.
    let out_buf = buffer(&inputs.out)?;
    let dout_buf = buffer(&inputs.dout)?;
    let lse_buf = inputs.lse.device_buffer().ok_or_else(residency_bug)?;
    let (out_ptr, _o) = gpu.read_ptr(out_buf);
    let (dout_ptr, _d) = gpu.read_ptr(dout_buf);
    let (lse_ptr, _l) = gpu.read_ptr(lse_buf);
    let (neg_lse_log2_ptr, _ll) = gpu.write_ptr(&mut neg_lse_log2);
    let (dpsum_ptr, _dp) = gpu.write_ptr(&mut dpsum);
    let (dq_accum_ptr, _dqa) = gpu.write_ptr(&mut dq_accum);
    let (sem_ptr, _s) = gpu.write_ptr(&mut semaphores);
    let [lb, lh, ls] = checked.lse.strides;
    if m_blocks > 0 {
        let pre_params = BwdPreParams {
            out: at(GlobalPtr::from_address(out_ptr.address()), &checked.out),
            dout: at(GlobalPtr::from_address(dout_ptr.address()), &checked.dout),
            out_strides: strides3(&checked.out),
            dout_strides: strides3(&checked.dout),
            lse: GlobalPtr::from_address(
                lse_ptr.address() + (checked.lse.offset * size_of::<f32>()) as u64,
            ),
            lse_strides: [lb as u64, lh as u64, ls as u64],
            neg_lse_log2: neg_lse_log2_ptr,
            dpsum: dpsum_ptr,
            dq_accum: dq_accum_ptr,
            dq_semaphores: sem_ptr,
            seqlen_q: seqlen_q as u32,
            heads: heads as u32,
            m_blocks: m_blocks as u32,
            block_m: tiling.block_m,
            head_dim: head_dim as u32,
        };
        let shape = LaunchShape {
            grid: (m_blocks as u32, heads as u32, batch as u32),
            threads_per_block: pre.max_threads_per_block,
            dynamic_smem_bytes: 0,
        };
        // SAFETY: out, dout and lse are validated views in this GPU's
        // memory (16-byte aligned rows, contiguous head dim); the
        // workspaces hold (batch, heads, m_blocks) query blocks.
        unsafe { gpu.launch_entry(&pre, shape, pre_params)? };
    }

    // Main kernel.
    let dk_buf = into.dk.device_buffer_mut().ok_or_else(residency_bug)?;
    let (dk_ptr, _dk) = gpu.write_ptr(dk_buf);
    let dv_buf = into.dv.device_buffer_mut().ok_or_else(residency_bug)?;
    let (dv_ptr, _dv) = gpu.write_ptr(dv_buf);
    let (dk_accum_ptr, _dka) = gpu.write_ptr(&mut dk_accum);
    let (dv_accum_ptr, _dva) = gpu.write_ptr(&mut dv_accum);
    let stand_in = q_map
        .as_ref()
        .or(k_map.as_ref())
        .ok_or_else(residency_bug)?;
    let (q_map_ptr, _qm) = gpu.map_ptr(q_map.as_ref().unwrap_or(stand_in));
    let (dout_map_ptr, _dm) = gpu.map_ptr(dout_map.as_ref().unwrap_or(stand_in));
    let (k_map_ptr, _km) = gpu.map_ptr(k_map.as_ref().unwrap_or(stand_in));
    let (v_map_ptr, _vm) = gpu.map_ptr(v_map.as_ref().unwrap_or(stand_in));
    let _reads =
        [&inputs.q, &inputs.k, &inputs.v].map(|t| t.device_buffer().map(|b| gpu.read_ptr(b).1));
    let order = tile_order(
        &tiling,
        (seqlen_q, seqlen_k),
        (batch, heads),
        size_of::<T>(),
        params.mask.right.is_some() && !deterministic,
    )
    .ok_or(Error::Unsupported {
        feature: "GPU backward with 2^32 or more key-block tiles",
    })?;
    let tiles = order.tiles();
    if tiles > 0 {
        let kernel = main_kernel(T::FWD_ELEM, tiling)?;
        let params_with = |tile_counter, tile_base| BwdParams {
            q_map: q_map_ptr,
            dout_map: dout_map_ptr,
            k_map: k_map_ptr,
            v_map: v_map_ptr,
            neg_lse_log2: neg_lse_log2_ptr,
            dpsum: dpsum_ptr,
            dq_accum: dq_accum_ptr,
            dq_semaphores: sem_ptr,
            dk: at(GlobalPtr::from_address(dk_ptr.address()), dk_layout),
            dv: at(GlobalPtr::from_address(dv_ptr.address()), dv_layout),
            dk_strides: strides3(dk_layout),
            dv_strides: strides3(dv_layout),
            dk_accum: dk_accum_ptr,
            dv_accum: dv_accum_ptr,
            sched: SchedParams {
                tile_counter,
                order,
                tile_base,
            },
            seqlen_q: seqlen_q as u32,
            seqlen_k: seqlen_k as u32,
            heads: heads as u32,
            heads_per_kv: group as u32,
            m_blocks: m_blocks as u32,
            key_blocks_64: key_blocks_64 as u32,
            window_left: window_bound(params.mask.left),
            window_right: window_bound(params.mask.right),
            scale,
            scale_log2: scale * LOG2_E,
            deterministic: deterministic as u32,
        };
        let shape = LaunchShape {
            grid: gpu.persistent_grid(tiles),
            threads_per_block: kernel.spec.max_threads_per_block,
            dynamic_smem_bytes: bwd_smem_layout(tiling, size_of::<T>() as u32).bytes,
        };
        // SAFETY: validation checked every view inside its buffer and the
        // gradients apart from the inputs; the maps describe those views
        // with the tiling's boxes; the preprocess of this call ran before
        // on the stream and sized the workspaces for (batch, heads,
        // m_blocks); the kernel claims each tile once, `tiles` claims in
        // all; `kernel` is a `BWD_KERNELS` row taking `BwdParams`.
        gpu.with_tile_counter(tiles, |counter, base| unsafe {
            gpu.launch_entry(&kernel.spec, shape, params_with(counter, base))
        })?;
    }

    // Conversions.
    let dq_buf = into.dq.device_buffer_mut().ok_or_else(residency_bug)?;
    let (dq_ptr, _dq) = gpu.write_ptr(dq_buf);
    let convert_dq = BwdConvertParams {
        src: dq_accum_ptr,
        out: at(GlobalPtr::from_address(dq_ptr.address()), dq_layout),
        out_strides: strides3(dq_layout),
        rows: seqlen_q as u32,
        row_blocks: dq_row_blocks as u32,
        parts: parts as u32,
        src_heads: heads as u32,
        group: 1,
        scale,
    };
    // (conversion, output heads)
    let mut converts = vec![(convert_dq, heads)];
    if group > 1 {
        for (src, ptr, layout) in [
            (dk_accum_ptr, dk_ptr, dk_layout),
            (dv_accum_ptr, dv_ptr, dv_layout),
        ] {
            let p = BwdConvertParams {
                src,
                out: at(GlobalPtr::from_address(ptr.address()), layout),
                out_strides: strides3(layout),
                rows: seqlen_k as u32,
                row_blocks: key_blocks_64 as u32,
                parts: kv_parts as u32,
                group: group as u32,
                // dK was scaled in the main kernel.
                scale: 1.0,
                ..convert_dq
            };
            converts.push((p, heads_kv));
        }
    }
    for (p, heads_out) in converts {
        if p.row_blocks == 0 {
            continue;
        }
        let shape = LaunchShape {
            grid: (p.row_blocks * p.parts, heads_out as u32, batch as u32),
            threads_per_block: convert.max_threads_per_block,
            dynamic_smem_bytes: 0,
        };
        // SAFETY: `out` is a validated gradient view (16-byte aligned rows,
        // contiguous head dim of parts · 64 columns); `src` holds the
        // (batch, heads, row_blocks, parts) blocks the earlier kernels of
        // this call wrote.
        unsafe { gpu.launch_entry(&convert, shape, p)? };
    }
    Ok(())
}

/// The tile order of the main kernel: the forward's order over key blocks
/// (see `BwdParams`); `longest_first` for causal masks unless the dQ
/// reductions must keep their deterministic order. The L2 sections are
/// sized by what each head's CTAs all stream, Q and dO.
fn tile_order(
    tiling: &BwdTiling,
    (seqlen_q, seqlen_k): (usize, usize),
    (batch, heads): (usize, usize),
    elem_bytes: usize,
    longest_first: bool,
) -> Option<TileOrder> {
    TileOrder::new(
        &TileProblem {
            // The order's "query blocks" are key blocks here, and the
            // bytes each head's tiles share are its Q and dO rows.
            seqlen_q: seqlen_k as u32,
            seqlen_k: seqlen_q as u32,
            heads: heads as u32,
            batch: batch as u32,
            heads_per_kv: 1,
            head_dim: tiling.head_dim,
            elem_bytes: elem_bytes as u32,
            causal: longest_first,
        },
        tiling.block_n(),
    )
}

/// The main kernel of `elem` and `tiling` (a row of the kernel table).
fn main_kernel(elem: FwdElem, tiling: BwdTiling) -> Result<&'static BwdKernel> {
    BWD_KERNELS
        .iter()
        .find(|k| k.elem == elem && k.tiling == tiling)
        .ok_or(Error::Unsupported {
            feature: "GPU backward for this head dim",
        })
}
