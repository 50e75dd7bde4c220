//! The attention GEMM chain on one block: S = Q·Kᵀ, row max/sum of S,
//! P = bf16(S) in registers, O = P·V; and its FP8 form (P = e4m3(S)).

use super::check_len;
use crate::error::Result;
use crate::gpu::{DeviceBuffer, DeviceTensorMap, Gpu, LaunchShape, TmaElement, TmaView};
use fa3_kernels::abi::selftest::{
    CHAIN_E4M3_SMEM_BYTES, CHAIN_SMEM_BYTES, ChainE4m3Params, ChainParams,
};
use fa3_kernels::abi::{Kernel, SelftestChain, SelftestChainE4m3};
use float8::F8E4M3;
use half::bf16;
use std::sync::Arc;

/// What the chain computed.
#[derive(Debug, Clone)]
pub struct ChainResult {
    /// O = bf16(Q·Kᵀ)·V, 64 x 64, row-major.
    pub o: Vec<f32>,
    /// Row maxima of S = Q·Kᵀ (64).
    pub row_max: Vec<f32>,
    /// Row sums of S (64).
    pub row_sum: Vec<f32>,
}

/// Runs the chain with Q (64 x 64), K (128 x 64) and V (128 x 64), all
/// row-major bf16.
pub fn gemm_chain(gpu: &Gpu, q: &[bf16], k: &[bf16], v: &[bf16]) -> Result<ChainResult> {
    let ([dq, dk, dv], [q_map, k_map, v_map]) = upload_rows(gpu, 64, [q, k, v])?;
    let mut o = gpu.alloc::<f32>(64 * 64)?;
    let mut row_max = gpu.alloc::<f32>(64)?;
    let mut row_sum = gpu.alloc::<f32>(64)?;
    let shape = LaunchShape {
        grid: (1, 1, 1),
        threads_per_block: SelftestChain::SPEC.max_threads_per_block,
        dynamic_smem_bytes: CHAIN_SMEM_BYTES,
    };
    {
        let (q_map, _a) = gpu.map_ptr(&q_map);
        let (k_map, _b) = gpu.map_ptr(&k_map);
        let (v_map, _c) = gpu.map_ptr(&v_map);
        let (_q, _d) = gpu.read_ptr(&dq);
        let (_k, _e) = gpu.read_ptr(&dk);
        let (_v, _f) = gpu.read_ptr(&dv);
        let (o_ptr, _g) = gpu.write_ptr(&mut o);
        let (max_ptr, _h) = gpu.write_ptr(&mut row_max);
        let (sum_ptr, _i) = gpu.write_ptr(&mut row_sum);
        let params = ChainParams {
            q_map,
            k_map,
            v_map,
            o: o_ptr,
            row_max: max_ptr,
            row_sum: sum_ptr,
        };
        // SAFETY: maps checked against live buffers of the documented sizes;
        // outputs sized as the kernel writes them.
        unsafe { gpu.launch::<SelftestChain>(shape, params)? };
    }
    Ok(ChainResult {
        o: gpu.download(&o)?,
        row_max: gpu.download(&row_max)?,
        row_sum: gpu.download(&row_sum)?,
    })
}

/// Runs the FP8 chain: Q (64 x 128), K (128 x 128) and V (128 keys x 128
/// head dims), row-major e4m3; returns O = e4m3(Q·Kᵀ)·V, 64 x 128,
/// row-major. The kernel transposes V itself, in the key order its packing
/// of P needs.
pub fn gemm_chain_e4m3(gpu: &Gpu, q: &[F8E4M3], k: &[F8E4M3], v: &[F8E4M3]) -> Result<Vec<f32>> {
    let ([dq, dk, dv], [q_map, k_map, v_map]) = upload_rows(gpu, 128, [q, k, v])?;
    let mut o = gpu.alloc::<f32>(64 * 128)?;
    let shape = LaunchShape {
        grid: (1, 1, 1),
        threads_per_block: SelftestChainE4m3::SPEC.max_threads_per_block,
        dynamic_smem_bytes: CHAIN_E4M3_SMEM_BYTES,
    };
    {
        let (q_map, _a) = gpu.map_ptr(&q_map);
        let (k_map, _b) = gpu.map_ptr(&k_map);
        let (v_map, _c) = gpu.map_ptr(&v_map);
        let (_q, _d) = gpu.read_ptr(&dq);
        let (_k, _e) = gpu.read_ptr(&dk);
        let (_v, _f) = gpu.read_ptr(&dv);
        let (o_ptr, _g) = gpu.write_ptr(&mut o);
        let params = ChainE4m3Params {
            q_map,
            k_map,
            v_map,
            o: o_ptr,
        };
        // SAFETY: maps checked against live buffers of the documented sizes;
        // the output sized as the kernel writes it.
        unsafe { gpu.launch::<SelftestChainE4m3>(shape, params)? };
    }
    gpu.download(&o)
}

/// Q, K and V on the device, and a map of each.
type Uploaded<T> = ([DeviceBuffer<T>; 3], [Arc<DeviceTensorMap>; 3]);

/// Q (64 rows), K and V (128 rows each) of `cols` elements (128 bytes)
/// checked, uploaded, and each mapped whole by one TMA box.
fn upload_rows<T: TmaElement>(gpu: &Gpu, cols: u64, [q, k, v]: [&[T]; 3]) -> Result<Uploaded<T>> {
    let rows = [64, 128, 128];
    for ((name, x), rows) in ["q", "k", "v"].into_iter().zip([q, k, v]).zip(rows) {
        check_len(name, x.len(), (rows * cols) as usize)?;
    }
    let buffers = [gpu.upload(q)?, gpu.upload(k)?, gpu.upload(v)?];
    let map = |buf, rows: u64| {
        gpu.tensor_map(
            buf,
            &TmaView {
                offset: 0,
                dims: &[cols, rows],
                strides_bytes: &[128],
                box_dims: &[cols as u32, rows as u32],
            },
        )
    };
    let maps = [
        map(&buffers[0], rows[0])?,
        map(&buffers[1], rows[1])?,
        map(&buffers[2], rows[2])?,
    ];
    Ok((buffers, maps))
}
