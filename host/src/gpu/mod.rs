//! The GPU backend: one device, its kernel module and a stream.

mod buffer;
mod launch;
mod module;
mod tile_counter;
mod timing;
mod tma;
mod workspace;

pub use buffer::{DeviceBuffer, Element};
pub(crate) use launch::LaunchShape;
pub use module::ModuleSource;
pub use tma::TmaElement;
pub(crate) use tma::{DeviceTensorMap, TmaView};

use crate::error::{DriverContext, Error, Result};
use cudarc::driver::{CudaContext, CudaFunction, CudaStream, DriverError, sys};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tile_counter::TileCounter;
use workspace::WorkspacePool;

/// A Hopper GPU with the kernel module loaded.
///
/// Work is issued on one stream in order; downloads wait for it.
#[derive(Debug)]
pub struct Gpu {
    ordinal: usize,
    name: String,
    /// Streaming multiprocessors: the persistent kernels' grid size.
    sm_count: u32,
    /// Where the backward's workspaces come from (dropped before the
    /// stream and its context).
    workspaces: WorkspacePool,
    stream: Arc<CudaStream>,
    /// Where the persistent kernels claim tiles.
    tile_counter: Mutex<TileCounter>,
    /// Tensor maps already uploaded.
    map_cache: Mutex<tma::MapCache>,
    /// Every kernel entry (each keeps the module loaded).
    functions: HashMap<&'static str, CudaFunction>,
    source: ModuleSource,
}

impl Gpu {
    /// Opens GPU `ordinal` and loads the kernels.
    ///
    /// Errors: [`Error::NoDriver`] without libcuda, [`Error::NoDevice`] when
    /// there is no such GPU, [`Error::UnsupportedGpu`] for anything but
    /// compute capability 9.0 (sm_90a code runs on H100/H200 only).
    pub fn new(ordinal: usize) -> Result<Self> {
        Self::open(ordinal, None)
    }

    /// Like [`Gpu::new`], but loads only the given image of the module: the
    /// embedded cubin, or the PTX through the driver JIT. For tests and for
    /// comparing the two; [`Gpu::new`] picks the cubin when the driver takes it.
    pub fn with_module(ordinal: usize, source: ModuleSource) -> Result<Self> {
        Self::open(ordinal, Some(source))
    }

    fn open(ordinal: usize, only: Option<ModuleSource>) -> Result<Self> {
        // SAFETY: only tries to dlopen libcuda; no CUDA call is made.
        if !unsafe { sys::is_culib_present() } {
            return Err(Error::NoDriver);
        }
        let count = device_count()?;
        if ordinal >= count {
            return Err(Error::NoDevice { ordinal, count });
        }
        let ctx = CudaContext::new(ordinal).during("creating the CUDA context")?;
        let name = ctx.name().during("reading the device name")?;
        let (major, minor) = ctx
            .compute_capability()
            .during("reading the compute capability")?;
        if (major, minor) != (9, 0) {
            return Err(Error::UnsupportedGpu {
                ordinal,
                name,
                major,
                minor,
            });
        }
        let sm_count = ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .during("reading the multiprocessor count")?
            .max(1) as u32;
        let (module, source) = module::load(&ctx, only)?;
        let functions = module::entries(&module)?;
        let stream = ctx.default_stream();
        let workspaces = WorkspacePool::new(ordinal)?;
        let counter = stream
            .alloc_zeros::<u32>(1)
            .during("allocating the tile counter")?;
        Ok(Self {
            ordinal,
            name,
            sm_count,
            workspaces,
            stream,
            tile_counter: TileCounter::new(DeviceBuffer { slice: counter }),
            map_cache: Mutex::default(),
            functions,
            source,
        })
    }

    /// The device ordinal.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// The device name, e.g. `NVIDIA H200`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of streaming multiprocessors.
    pub fn sm_count(&self) -> u32 {
        self.sm_count
    }

    /// The grid of a persistent kernel over `tiles` tiles: one CTA per SM
    /// (one fits: 384 threads and most of the shared memory), fewer when
    /// there are fewer tiles; each takes tiles in order as it finishes one.
    pub(crate) fn persistent_grid(&self, tiles: u32) -> (u32, u32, u32) {
        (tiles.min(self.sm_count), 1, 1)
    }

    /// Which image of the kernel module the driver loaded.
    pub fn module_source(&self) -> ModuleSource {
        self.source
    }

    /// Gives the memory the backward's workspaces keep between calls back
    /// to the device (the largest call's so far). It is kept so that a
    /// training loop does not map it afresh on every call; trim after the
    /// last backward of a phase, or before allocating much else.
    pub fn trim_workspace(&self) -> Result<()> {
        self.synchronize()?;
        self.workspaces.trim()
    }

    /// Waits until all work issued on this GPU has finished.
    pub fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().during("synchronizing the stream")
    }
}

fn device_count() -> Result<usize> {
    match CudaContext::device_count() {
        Ok(n) => Ok(usize::try_from(n).unwrap_or(0)),
        // cuInit reports a machine without GPUs as an error.
        Err(DriverError(sys::CUresult::CUDA_ERROR_NO_DEVICE)) => Ok(0),
        Err(source) => Err(Error::Driver {
            action: "initializing the CUDA driver",
            source,
        }),
    }
}
