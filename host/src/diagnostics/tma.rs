//! TMA round trip: global -> shared (load, zero fill out of bounds) ->
//! global (store, nothing written out of bounds).

use super::check_len;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, LaunchShape, TmaElement, TmaView};
use fa3_kernels::abi::selftest::{TmaRoundTripParams, tma_round_trip_smem_bytes};
use fa3_kernels::abi::{Kernel, SelftestTma2d, SelftestTma4d};

/// A tensor copied box by box from `src` to `dst` by TMA.
#[derive(Debug, Clone)]
pub struct TmaCase<'a, T> {
    /// The source buffer; the tensor starts at `src_offset` elements.
    pub src: &'a [T],
    /// Offset of the source tensor in `src`, in elements.
    pub src_offset: usize,
    /// The destination buffer as it is before the copy (poison it).
    pub dst: &'a [T],
    /// Offset of the destination tensor in `dst`, in elements.
    pub dst_offset: usize,
    /// Tensor extent per dimension, innermost first (2 or 4 dimensions).
    pub dims: &'a [u64],
    /// Source strides of dimensions 1.., in elements.
    pub src_strides: &'a [u64],
    /// Destination strides of dimensions 1.., in elements.
    pub dst_strides: &'a [u64],
    /// Box extent per dimension (`box_dims[0]` spans 128 bytes).
    pub box_dims: &'a [u32],
    /// Box origins, innermost first: inside the tensor, the first coordinate
    /// on a 16-byte boundary; the box may hang off the far edges.
    pub origins: &'a [[i32; 4]],
}

/// What a round trip left behind.
#[derive(Debug, Clone)]
pub struct TmaRoundTrip<T> {
    /// The whole destination buffer after the copies.
    pub dst: Vec<T>,
    /// Per box, shared memory after the load: box elements in row-major box
    /// order with the 128-byte swizzle applied to each 128-byte row.
    pub smem: Vec<Vec<u8>>,
}

/// Runs the TMA round trip of `case` on `gpu`.
pub fn tma_round_trip<T: TmaElement>(gpu: &Gpu, case: &TmaCase<'_, T>) -> Result<TmaRoundTrip<T>> {
    let rank = case.dims.len();
    if rank != 2 && rank != 4 {
        return Err(Error::InvalidArgument {
            argument: "dims",
            problem: format!("rank {rank}; the round trip runs 2-D and 4-D tensors"),
        });
    }
    if case.origins.is_empty() || case.origins.len() > 65_535 {
        return Err(Error::InvalidArgument {
            argument: "origins",
            problem: format!("{} boxes; expected 1 to 65535", case.origins.len()),
        });
    }
    check_len("box_dims", case.box_dims.len(), rank)?;
    let elem = size_of::<T>() as u64;
    // A box must start inside the tensor, on a 16-byte boundary in the
    // innermost dimension: a column off that boundary faults with "illegal
    // instruction" (measured), and so did a box starting past the tensor's
    // end. A fault kills the CUDA context, so both are refused here.
    let bad = |o: &&[i32; 4]| {
        (i64::from(o[0]) * elem as i64) % 16 != 0
            || (0..rank).any(|d| o[d] < 0 || o[d] as u64 >= case.dims[d])
    };
    if let Some(o) = case.origins.iter().find(bad) {
        return Err(Error::InvalidArgument {
            argument: "origins",
            problem: format!(
                "origin {o:?}: every coordinate must lie inside the tensor {:?} and the first be a multiple of {} elements (16 bytes)",
                case.dims,
                16 / elem
            ),
        });
    }
    let box_bytes = case.box_dims.iter().map(|&b| u64::from(b)).product::<u64>() * elem;
    if !box_bytes.is_multiple_of(1024) || box_bytes > 64 * 1024 {
        return Err(Error::InvalidArgument {
            argument: "box_dims",
            problem: format!(
                "a box of {box_bytes} bytes; expected a multiple of 1024 up to 64 KiB"
            ),
        });
    }
    let bytes = |strides: &[u64]| strides.iter().map(|s| s * elem).collect::<Vec<_>>();
    let (src_strides, dst_strides) = (bytes(case.src_strides), bytes(case.dst_strides));
    let src = gpu.upload(case.src)?;
    let mut dst = gpu.upload(case.dst)?;
    let view = |offset: usize, strides| TmaView {
        offset: offset as u64,
        dims: case.dims,
        strides_bytes: strides,
        box_dims: case.box_dims,
    };
    let src_map = gpu.tensor_map(&src, &view(case.src_offset, &src_strides))?;
    let dst_map = gpu.tensor_map(&dst, &view(case.dst_offset, &dst_strides))?;
    let origins = gpu.upload(&case.origins.iter().flatten().copied().collect::<Vec<i32>>())?;
    let mut dump = gpu.alloc::<u32>(case.origins.len() * box_bytes as usize / 4)?;

    let shape = LaunchShape {
        grid: (case.origins.len() as u32, 1, 1),
        threads_per_block: SelftestTma2d::SPEC.max_threads_per_block,
        dynamic_smem_bytes: tma_round_trip_smem_bytes(box_bytes as u32),
    };
    {
        let (src_map_ptr, _a) = gpu.map_ptr(&src_map);
        let (dst_map_ptr, _b) = gpu.map_ptr(&dst_map);
        let (origins_ptr, _c) = gpu.read_ptr(&origins);
        let (_dst_ptr, _d) = gpu.write_ptr(&mut dst);
        let (dump_ptr, _e) = gpu.write_ptr(&mut dump);
        let params = TmaRoundTripParams {
            src: src_map_ptr,
            dst: dst_map_ptr,
            origins: fa3_kernels::abi::GlobalPtr::from_address(origins_ptr.address()),
            smem_dump: dump_ptr,
            box_bytes: box_bytes as u32,
        };
        // SAFETY: both maps were checked to lie inside their buffers, which
        // stay alive (and tracked by the guards) across the launch; one
        // origin per block; the dump holds box_bytes per block; the shared
        // memory size is the kernel's own formula.
        unsafe {
            if rank == 2 {
                gpu.launch::<SelftestTma2d>(shape, params)?;
            } else {
                gpu.launch::<SelftestTma4d>(shape, params)?;
            }
        }
    }
    let smem_words = gpu.download(&dump)?;
    let smem_bytes: Vec<u8> = smem_words.iter().flat_map(|w| w.to_le_bytes()).collect();
    Ok(TmaRoundTrip {
        dst: gpu.download(&dst)?,
        smem: smem_bytes
            .chunks(box_bytes as usize)
            .map(<[u8]>::to_vec)
            .collect(),
    })
}
