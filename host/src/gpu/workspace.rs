//! The memory of the backward's workspaces: a stream-ordered pool of the
//! `Gpu`'s own that keeps what it has mapped between calls. The device's
//! default pool returns its free memory at every synchronization (release
//! threshold 0), so each backward call mapped its six workspaces afresh:
//! 0.14-0.26 ms of host time per call (PERF.md, session 13), where
//! PyTorch's caching allocator keeps FA3's.

use crate::error::{DriverContext, Result};
use cudarc::driver::result::mem_pool;
use cudarc::driver::{CudaStream, sys};
use std::sync::Arc;

/// A memory pool on one device whose free memory stays mapped until
/// [`WorkspacePool::trim`].
#[derive(Debug)]
pub(super) struct WorkspacePool {
    pool: sys::CUmemoryPool,
}

// SAFETY: a driver handle; the CUDA driver API is thread-safe, and the pool
// is only used through driver calls.
unsafe impl Send for WorkspacePool {}
// SAFETY: as for Send: no state on the Rust side.
unsafe impl Sync for WorkspacePool {}

impl WorkspacePool {
    /// A pool on device `ordinal` (its context current on this thread).
    pub(super) fn new(ordinal: usize) -> Result<Self> {
        // SAFETY: all-zero bytes are a valid CUmemPoolProps (plain integers
        // and a null pointer); the fields that matter are set below.
        let mut props: sys::CUmemPoolProps = unsafe { std::mem::zeroed() };
        props.allocType = sys::CUmemAllocationType::CU_MEM_ALLOCATION_TYPE_PINNED;
        props.handleTypes = sys::CUmemAllocationHandleType::CU_MEM_HANDLE_TYPE_NONE;
        props.location = sys::CUmemLocation {
            type_: sys::CUmemLocationType::CU_MEM_LOCATION_TYPE_DEVICE,
            id: ordinal as i32,
        };
        // SAFETY: `props` is a valid CUmemPoolProps.
        let pool = unsafe { mem_pool::create(&props) }.during("creating the workspace pool")?;
        let pool = Self { pool };
        let mut keep = u64::MAX;
        // SAFETY: a live pool; the release threshold is a u64.
        unsafe {
            mem_pool::set_attribute(
                pool.pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                (&raw mut keep).cast(),
            )
        }
        .during("keeping the workspace pool's memory")?;
        Ok(pool)
    }

    /// `bytes` of uninitialized device memory, ordered on `stream`.
    ///
    /// # Safety
    /// The caller frees it on a stream of the pool's device
    /// (`cuMemFreeAsync`, as a `CudaSlice` does when dropped).
    pub(super) unsafe fn alloc(
        &self,
        stream: &Arc<CudaStream>,
        bytes: usize,
    ) -> Result<sys::CUdeviceptr> {
        stream
            .context()
            .bind_to_thread()
            .during("binding the context")?;
        // SAFETY: a live pool and stream of the same device; the memory is
        // the caller's (contract).
        unsafe { mem_pool::alloc_async(self.pool, bytes, stream.cu_stream()) }
            .during("allocating a workspace")
    }

    /// Returns the pool's free memory to the device.
    pub(super) fn trim(&self) -> Result<()> {
        // SAFETY: a live pool.
        unsafe { mem_pool::trim_to(self.pool, 0) }.during("trimming the workspace pool")
    }
}

impl Drop for WorkspacePool {
    fn drop(&mut self) {
        // SAFETY: a live pool, destroyed once; allocations still out are
        // released by the driver once freed. Nothing to do on failure.
        let _ = unsafe { mem_pool::destroy(self.pool) };
    }
}
