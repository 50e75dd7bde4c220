//! Typed kernel launches: the kernel's marker type fixes its entry name, its
//! parameter block and its launch bounds.

use super::Gpu;
use super::module::MAX_DYNAMIC_SMEM_BYTES;
use crate::error::{DriverContext, Error, Result};
use cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
use fa3_kernels::abi::{Kernel, KernelParams, KernelSpec};

/// Grid, block and dynamic shared memory of one launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LaunchShape {
    pub grid: (u32, u32, u32),
    pub threads_per_block: u32,
    pub dynamic_smem_bytes: u32,
}

/// Passes a parameter block by value, as the kernel entry declares it.
#[repr(transparent)]
struct ParamBlock<P>(P);

// SAFETY: `KernelParams` guarantees a repr(C), Copy, plain-data block whose
// layout the device entry shares (same type, same crate).
unsafe impl<P: KernelParams> DeviceRepr for ParamBlock<P> {}

impl Gpu {
    /// Launches kernel `K` on this GPU's stream.
    ///
    /// # Safety
    /// `params` must satisfy the kernel's contract (documented on its device
    /// body): every address valid for what the kernel reads and writes, on
    /// this GPU, and alive until the stream has run the launch.
    pub(crate) unsafe fn launch<K: Kernel>(
        &self,
        shape: LaunchShape,
        params: K::Params,
    ) -> Result<()> {
        // SAFETY: forwarded contract; `K::Params` is the entry's block.
        unsafe { self.launch_entry(&K::SPEC, shape, params) }
    }

    /// Launches the entry of `spec`, a kernel of the table chosen at run
    /// time (e.g. a row of `FWD_KERNELS`).
    ///
    /// # Safety
    /// As [`Self::launch`], and `P` is the parameter block the entry of
    /// `spec` declares.
    pub(crate) unsafe fn launch_entry<P: KernelParams>(
        &self,
        spec: &KernelSpec,
        shape: LaunchShape,
        params: P,
    ) -> Result<()> {
        check_shape(spec, shape)?;
        let func = self.functions.get(spec.entry).ok_or(Error::LaunchShape {
            kernel: spec.entry,
            problem: "not in the loaded module (a build of another kernel table?)".to_string(),
        })?;
        let cfg = LaunchConfig {
            grid_dim: shape.grid,
            block_dim: (shape.threads_per_block, 1, 1),
            shared_mem_bytes: shape.dynamic_smem_bytes,
        };
        let block = ParamBlock(params);
        let mut args = self.stream.launch_builder(func);
        args.arg(&block);
        // SAFETY: the shape is within the kernel's bounds (checked above) and
        // the caller upholds the parameter contract.
        unsafe { args.launch(cfg) }.during("launching a kernel")?;
        Ok(())
    }
}

fn check_shape(spec: &KernelSpec, shape: LaunchShape) -> Result<()> {
    let problem =
        if shape.threads_per_block == 0 || shape.threads_per_block > spec.max_threads_per_block {
            Some(format!(
                "{} threads per block; the kernel is built for 1..={}",
                shape.threads_per_block, spec.max_threads_per_block
            ))
        } else if shape.grid.0 == 0 || shape.grid.1 == 0 || shape.grid.2 == 0 {
            Some(format!("empty grid {:?}", shape.grid))
        } else if shape.dynamic_smem_bytes > MAX_DYNAMIC_SMEM_BYTES {
            Some(format!(
                "{} bytes of dynamic shared memory; sm_90 allows at most {MAX_DYNAMIC_SMEM_BYTES}",
                shape.dynamic_smem_bytes
            ))
        } else {
            None
        };
    match problem {
        Some(problem) => Err(Error::LaunchShape {
            kernel: spec.entry,
            problem,
        }),
        None => Ok(()),
    }
}
