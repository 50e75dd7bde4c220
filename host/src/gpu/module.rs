//! Loading the embedded kernel module: the cubin first, the PTX as fallback.

use crate::error::{DriverContext, Error, Result};
use crate::kernel_image;
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, sys};
use cudarc::nvrtc::Ptx;
use fa3_kernels::abi::KERNELS;
use std::collections::HashMap;
use std::sync::Arc;

/// Which image of the module the driver accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleSource {
    /// The sm_90a cubin assembled by ptxas at build time.
    Cubin,
    /// The PTX, compiled by the driver's JIT (no cubin embedded, or the
    /// driver is older than the ptxas that made it).
    PtxJit,
}

/// Loads the cubin, falling back to the PTX; `only` restricts to one image.
pub(super) fn load(
    ctx: &Arc<CudaContext>,
    only: Option<ModuleSource>,
) -> Result<(Arc<CudaModule>, ModuleSource)> {
    let cubin_error = if only == Some(ModuleSource::PtxJit) {
        "not tried (PTX JIT requested)".to_string()
    } else {
        match kernel_image::cubin() {
            Some(cubin) => match ctx.load_module(Ptx::from_binary(cubin.to_vec())) {
                Ok(m) => return Ok((m, ModuleSource::Cubin)),
                Err(e) => e.to_string(),
            },
            None => "none embedded (ptxas was not found at build time)".to_string(),
        }
    };
    if only == Some(ModuleSource::Cubin) {
        return Err(Error::ModuleLoad {
            cubin: cubin_error,
            ptx: "not tried (cubin requested)".to_string(),
        });
    }
    match ctx.load_module(Ptx::from_src(kernel_image::ptx())) {
        Ok(m) => Ok((m, ModuleSource::PtxJit)),
        Err(ptx) => Err(Error::ModuleLoad {
            cubin: cubin_error,
            ptx: ptx.to_string(),
        }),
    }
}

/// Every entry of the module, looked up once, with its dynamic shared-memory
/// limit raised to the most a block may use: launches then make no driver
/// calls but the launch itself.
pub(super) fn entries(module: &Arc<CudaModule>) -> Result<HashMap<&'static str, CudaFunction>> {
    let mut functions = HashMap::with_capacity(KERNELS.len());
    for spec in KERNELS {
        let function = module
            .load_function(spec.entry)
            .during("looking up a kernel entry")?;
        function
            .set_attribute(
                sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                MAX_DYNAMIC_SMEM_BYTES as i32,
            )
            .during("raising a kernel's dynamic shared memory limit")?;
        functions.insert(spec.entry, function);
    }
    Ok(functions)
}

/// 227 KiB: the most dynamic shared memory one block may use on sm_90.
pub(super) const MAX_DYNAMIC_SMEM_BYTES: u32 = 227 * 1024;
