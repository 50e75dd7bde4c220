//! Warp specialization in miniature: one TMA producer warpgroup, two
//! consumer warpgroups taking turns on named barriers, an S-stage ring.

use super::check_len;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, LaunchShape, TmaView};
use fa3_kernels::abi::selftest::{PINGPONG_TILE_ROWS, PingpongParams, pingpong_smem_bytes};
use fa3_kernels::abi::{GlobalPtr, Kernel, SelftestPingpong2, SelftestPingpong3};
use half::bf16;

/// What the ring computed.
#[derive(Debug, Clone)]
pub struct PingpongResult {
    /// `D[c][p] = A_c · (Σ over tiles t with t % 2 == p of B_t)ᵀ`: four 64 x 192
    /// f32 blocks, row-major, block `2c + p`.
    pub d: Vec<f32>,
    /// The order consumers issued their GEMMs: `(consumer, tile)`.
    pub order: Vec<(u32, u32)>,
}

/// Streams `b` (`tiles` tiles of 192 x 64 bf16, row-major, one after the
/// other) through a `stages`-stage ring (2 or 3) to two consumers holding
/// `a` (A_0 then A_1, 64 x 64 bf16 each, row-major) in registers.
pub fn pingpong(gpu: &Gpu, stages: usize, a: &[bf16], b: &[bf16]) -> Result<PingpongResult> {
    let rows = PINGPONG_TILE_ROWS as usize;
    check_len("a", a.len(), 2 * 64 * 64)?;
    if b.is_empty() || !b.len().is_multiple_of(rows * 64) {
        return Err(Error::InvalidArgument {
            argument: "b",
            problem: format!(
                "{} elements; expected a positive multiple of {}",
                b.len(),
                rows * 64
            ),
        });
    }
    let tiles = b.len() / (rows * 64);
    let (da, db) = (gpu.upload(a)?, gpu.upload(b)?);
    let b_map = gpu.tensor_map(
        &db,
        &TmaView {
            offset: 0,
            dims: &[64, (tiles * rows) as u64],
            strides_bytes: &[128],
            box_dims: &[64, PINGPONG_TILE_ROWS],
        },
    )?;
    let mut d = gpu.alloc::<f32>(4 * 64 * rows)?;
    let mut order = gpu.alloc::<u32>(2 * tiles)?;
    let mut order_len = gpu.alloc::<u32>(1)?;
    let shape = LaunchShape {
        grid: (1, 1, 1),
        threads_per_block: SelftestPingpong2::SPEC.max_threads_per_block,
        dynamic_smem_bytes: pingpong_smem_bytes(stages as u32),
    };
    {
        let (b_map, _a) = gpu.map_ptr(&b_map);
        let (a_ptr, _b) = gpu.read_ptr(&da);
        let (_b_ptr, _c) = gpu.read_ptr(&db);
        let (d_ptr, _d) = gpu.write_ptr(&mut d);
        let (order_ptr, _e) = gpu.write_ptr(&mut order);
        let (len_ptr, _f) = gpu.write_ptr(&mut order_len);
        let params = PingpongParams {
            b_map,
            a: GlobalPtr::from_address(a_ptr.address()),
            d: d_ptr,
            order: order_ptr,
            order_len: len_ptr,
            tiles: tiles as u32,
        };
        // SAFETY: map checked against the live B buffer of `tiles` tiles;
        // A, D and the order log sized as the kernel uses them; the counter
        // starts at zero (alloc zero-fills).
        unsafe {
            match stages {
                2 => gpu.launch::<SelftestPingpong2>(shape, params)?,
                3 => gpu.launch::<SelftestPingpong3>(shape, params)?,
                _ => {
                    return Err(Error::InvalidArgument {
                        argument: "stages",
                        problem: format!("{stages}; the ring is built with 2 or 3 stages"),
                    });
                }
            }
        }
    }
    let order = gpu.download(&order)?;
    Ok(PingpongResult {
        d: gpu.download(&d)?,
        order: order.iter().map(|e| (e >> 16, e & 0xffff)).collect(),
    })
}
