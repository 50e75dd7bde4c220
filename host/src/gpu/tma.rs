//! Tensor maps for TMA: encoded on the host with `cuTensorMapEncodeTiled`,
//! checked first, and placed in device memory (a by-value tensor-map kernel
//! parameter is not usable from rustc-built kernels, see
//! `fa3_kernels::arch::tma`).

use super::{DeviceBuffer, Element, Gpu};
use crate::error::{Error, Result};
use cudarc::driver::SyncOnDrop;
use cudarc::driver::sys::{
    self, CUtensorMapDataType, CUtensorMapFloatOOBfill, CUtensorMapInterleave,
    CUtensorMapL2promotion, CUtensorMapSwizzle,
};
use fa3_kernels::abi::{GlobalPtr, TensorMap};
use fa3_kernels::layout::swizzle::{ROW_BYTES, ROW_BYTES_64};
use float8::F8E4M3;
use half::{bf16, f16};
use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

/// Element types TMA moves, with the driver's name for them.
pub trait TmaElement: Element {
    /// The tensor-map data type (FP8 moves as bytes).
    const DATA_TYPE: CUtensorMapDataType;
}

impl TmaElement for bf16 {
    const DATA_TYPE: CUtensorMapDataType = CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
}
impl TmaElement for f16 {
    const DATA_TYPE: CUtensorMapDataType = CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
}
impl TmaElement for F8E4M3 {
    const DATA_TYPE: CUtensorMapDataType = CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_UINT8;
}
impl TmaElement for f32 {
    const DATA_TYPE: CUtensorMapDataType = CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
}

/// Our shared-memory tiles are rows of 128 bytes with the 128-byte swizzle,
/// or, where a tensor's rows are 64 bytes (e4m3 at head_dim 64), rows of 64
/// bytes with the 64-byte swizzle (`fa3_kernels::arch::smem::Tile`): a
/// map's inner box is one of those rows, and its swizzle follows.
const INNER_BOX_BYTES: [u64; 2] = [ROW_BYTES_64 as u64, ROW_BYTES as u64];

/// The swizzle of tiles whose rows are `row_bytes` (one of [`INNER_BOX_BYTES`]).
fn swizzle(row_bytes: u64) -> CUtensorMapSwizzle {
    if row_bytes == u64::from(ROW_BYTES_64) {
        CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_64B
    } else {
        CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B
    }
}

/// A strided view of a device buffer, as TMA sees it (innermost first).
#[derive(Debug, Clone)]
pub(crate) struct TmaView<'a> {
    /// Elements from the buffer's start to the view's first element.
    pub offset: u64,
    /// Extent of each dimension, innermost first (rank 2 to 4).
    pub dims: &'a [u64],
    /// Byte stride of dimensions 1.. (dimension 0 is contiguous).
    pub strides_bytes: &'a [u64],
    /// Box (tile) extent per dimension; `box_dims[0]` spans 128 bytes.
    pub box_dims: &'a [u32],
}

/// A tensor map in device memory.
#[derive(Debug)]
pub(crate) struct DeviceTensorMap {
    bytes: DeviceBuffer<u8>,
}

/// Maps already in device memory, by their encoding. A map only describes
/// memory (address, shape, strides, box), so an entry is right for any
/// later request that encodes to the same bytes, even after the buffer it
/// was made for is gone: repeated calls on the same tensors upload nothing.
/// Bounded: when full it is emptied (each map is freed on the stream, after
/// the kernels that read it).
#[derive(Debug, Default)]
pub(super) struct MapCache {
    maps: HashMap<[u64; 16], Arc<DeviceTensorMap>>,
}

/// Entries kept before the cache is emptied (128 bytes of device memory
/// each).
const MAP_CACHE_ENTRIES: usize = 256;

impl Gpu {
    /// Checks `view` against `buffer` and TMA's rules, encodes the map
    /// (the swizzle of its inner box's rows, out-of-bounds elements read as
    /// zero) and uploads it
    /// unless an identical one is already on the device.
    pub(crate) fn tensor_map<T: TmaElement>(
        &self,
        buffer: &DeviceBuffer<T>,
        view: &TmaView<'_>,
    ) -> Result<Arc<DeviceTensorMap>> {
        let elem = size_of::<T>() as u64;
        let base = buffer.address() + view.offset * elem;
        let available = (buffer.len() as u64).saturating_sub(view.offset) * elem;
        check_view(view, elem, base, available)?;
        let ones = [1u32; 4];
        let mut map = sys::CUtensorMap { opaque: [0; 16] };
        // SAFETY: all arrays have the lengths the rank says (checked above);
        // `map` is a properly aligned CUtensorMap; the driver only writes it.
        let status = unsafe {
            sys::cuTensorMapEncodeTiled(
                &mut map,
                T::DATA_TYPE,
                view.dims.len() as u32,
                base as *mut std::ffi::c_void,
                view.dims.as_ptr(),
                view.strides_bytes.as_ptr(),
                view.box_dims.as_ptr(),
                ones.as_ptr(),
                CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
                swizzle(u64::from(view.box_dims[0]) * elem),
                CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
            )
        };
        if status != sys::CUresult::CUDA_SUCCESS {
            return Err(Error::TensorMap {
                problem: format!("cuTensorMapEncodeTiled refused {view:?}: {status:?}"),
            });
        }
        // The cache holds no invariant a panic could break half-way.
        let mut cache = self
            .map_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = cache.maps.get(&map.opaque) {
            return Ok(Arc::clone(cached));
        }
        let raw: Vec<u8> = map.opaque.iter().flat_map(|w| w.to_le_bytes()).collect();
        let uploaded = Arc::new(DeviceTensorMap {
            bytes: self.upload(&raw)?,
        });
        if cache.maps.len() >= MAP_CACHE_ENTRIES {
            cache.maps.clear();
        }
        cache.maps.insert(map.opaque, Arc::clone(&uploaded));
        Ok(uploaded)
    }

    /// The tensor map's address for a kernel (keep the guard across the launch).
    pub(crate) fn map_ptr<'a>(
        &'a self,
        map: &'a DeviceTensorMap,
    ) -> (GlobalPtr<TensorMap>, SyncOnDrop<'a>) {
        let (ptr, guard) = self.read_ptr(&map.bytes);
        (GlobalPtr::from_address(ptr.address()), guard)
    }
}

/// TMA's rules (CUDA driver API, cuTensorMapEncodeTiled) plus ours: the view
/// must lie inside the buffer (`available` bytes from its start), so no TMA
/// access can leave the allocation.
fn check_view(view: &TmaView<'_>, elem: u64, base: u64, available: u64) -> Result<()> {
    let rank = view.dims.len();
    let fail = |problem: String| Err(Error::TensorMap { problem });
    if !(2..=4).contains(&rank)
        || view.box_dims.len() != rank
        || view.strides_bytes.len() + 1 != rank
    {
        return fail(format!(
            "rank {rank} with {} box dims and {} strides; expected rank 2 to 4, rank box dims, rank - 1 strides",
            view.box_dims.len(),
            view.strides_bytes.len()
        ));
    }
    if !base.is_multiple_of(16) {
        return fail(format!("base address {base:#x} is not 16-byte aligned"));
    }
    if let Some(d) = view.dims.iter().find(|&&d| d == 0 || d > 1 << 32) {
        return fail(format!("dimension {d} outside 1..=2^32"));
    }
    // TMA stores write whole 16-byte chunks: with a 300-byte fp8 row the
    // bytes up to 304 were written too (measured on an H200). A row that ends
    // inside a chunk would let a store clobber what follows it.
    if !(view.dims[0] * elem).is_multiple_of(16) {
        return fail(format!(
            "rows of {} bytes; the innermost extent must be a multiple of 16 bytes",
            view.dims[0] * elem
        ));
    }
    if let Some(s) = view
        .strides_bytes
        .iter()
        .find(|&&s| s % 16 != 0 || s >= 1 << 40)
    {
        return fail(format!(
            "byte stride {s} is not a multiple of 16 below 2^40"
        ));
    }
    if let Some(b) = view.box_dims.iter().find(|&&b| b == 0 || b > 256) {
        return fail(format!("box dimension {b} outside 1..=256"));
    }
    if !INNER_BOX_BYTES.contains(&(u64::from(view.box_dims[0]) * elem)) {
        return fail(format!(
            "inner box of {} bytes; the swizzled tiles need {ROW_BYTES_64} or {ROW_BYTES}",
            u64::from(view.box_dims[0]) * elem
        ));
    }
    let last = view.dims[1..]
        .iter()
        .zip(view.strides_bytes)
        .try_fold(view.dims[0] * elem, |end, (&d, &s)| {
            (d - 1).checked_mul(s).and_then(|x| x.checked_add(end))
        });
    match last {
        Some(end) if end <= available => Ok(()),
        _ => fail(format!(
            "the view needs {last:?} bytes but the buffer has {available} after its offset"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(dims: &'a [u64], strides: &'a [u64], boxes: &'a [u32]) -> TmaView<'a> {
        TmaView {
            offset: 0,
            dims,
            strides_bytes: strides,
            box_dims: boxes,
        }
    }

    #[test]
    fn accepts_a_bf16_matrix_in_its_buffer() {
        assert!(check_view(&view(&[200, 300], &[400], &[64, 64]), 2, 0x1000, 400 * 300).is_ok());
    }

    #[test]
    fn rejects_what_tma_cannot_do() {
        let cases: [(TmaView<'_>, u64, &str); 7] = [
            (
                view(&[203, 300], &[416], &[64, 64]),
                0x1000,
                "multiple of 16 bytes",
            ),
            (
                view(&[200, 300], &[400], &[64, 64]),
                0x1008,
                "16-byte aligned",
            ),
            (
                view(&[200, 300], &[402], &[64, 64]),
                0x1000,
                "multiple of 16",
            ),
            (
                view(&[200, 300], &[400], &[16, 64]),
                0x1000,
                "need 64 or 128",
            ),
            (
                view(&[200, 300], &[400], &[64, 300]),
                0x1000,
                "outside 1..=256",
            ),
            (view(&[200], &[], &[64]), 0x1000, "rank 1"),
            (view(&[200, 301], &[400], &[64, 64]), 0x1000, "buffer has"),
        ];
        for (v, base, needle) in cases {
            let err = check_view(&v, 2, base, 400 * 300).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
