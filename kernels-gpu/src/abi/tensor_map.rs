//! The tensor map TMA reads: opaque 128 bytes the host encodes with
//! `cuTensorMapEncodeTiled` and places in global memory.

/// A CUDA tensor map (`CUtensorMap`): 128 bytes, 64-byte aligned.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub struct TensorMap {
    /// The encoded map, as the driver wrote it.
    pub bytes: [u8; 128],
}

#[cfg(not(target_arch = "nvptx64"))]
impl core::fmt::Debug for TensorMap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TensorMap(..)")
    }
}
