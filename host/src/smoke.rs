//! The smoke kernel's safe entry point: proves build, load and launch.

use crate::error::{Error, Result};
use crate::gpu::{DeviceBuffer, Gpu, LaunchShape};
use fa3_kernels::abi::{Kernel, SmokeAxpy, SmokeParams, SmokeSpin, SpinParams};

impl Gpu {
    /// `out[i] = alpha * x[i] + y[i]` on the GPU (f32, one rounding per
    /// operation: no fused multiply-add).
    ///
    /// All three buffers must have the same length and live on this GPU;
    /// otherwise nothing is launched and `out` is untouched.
    pub fn smoke_axpy(
        &self,
        alpha: f32,
        x: &DeviceBuffer<f32>,
        y: &DeviceBuffer<f32>,
        out: &mut DeviceBuffer<f32>,
    ) -> Result<()> {
        self.check_owned(x, "x")?;
        self.check_owned(y, "y")?;
        self.check_owned(out, "out")?;
        for (argument, len) in [("y", y.len()), ("out", out.len())] {
            if len != x.len() {
                return Err(Error::InvalidArgument {
                    argument,
                    problem: format!("{len} elements, but x has {}; lengths must match", x.len()),
                });
            }
        }
        if x.is_empty() {
            return Ok(());
        }
        let threads = SmokeAxpy::SPEC.max_threads_per_block;
        // Grid-stride kernel: 4 blocks per SM-sized chunk is plenty; cap the
        // grid so huge inputs loop instead of overflowing the grid size.
        let blocks = x.len().div_ceil(threads as usize).min(65_535) as u32;
        let shape = LaunchShape {
            grid: (blocks, 1, 1),
            threads_per_block: threads,
            dynamic_smem_bytes: 0,
        };
        let (x_ptr, _x) = self.read_ptr(x);
        let (y_ptr, _y) = self.read_ptr(y);
        let (out_ptr, _out) = self.write_ptr(out);
        let params = SmokeParams {
            x: x_ptr,
            y: y_ptr,
            out: out_ptr,
            len: x.len() as u64,
            alpha,
        };
        // SAFETY: all three buffers live on this GPU (checked), hold `len`
        // elements (checked), and `out` is borrowed mutably so it cannot alias
        // the inputs; the guards keep them tracked until the launch is issued,
        // and cudarc's stream tracking keeps them alive until it has run.
        unsafe { self.launch::<SmokeAxpy>(shape, params) }
    }

    /// Queues one thread that spins `cycles` SM clock cycles on this GPU's
    /// stream (`torch.cuda._sleep`): work queued after it waits for it, so
    /// the host can enqueue a timed call before its start event is reached.
    pub fn spin_cycles(&self, cycles: u64) -> Result<()> {
        let shape = LaunchShape {
            grid: (1, 1, 1),
            threads_per_block: 1,
            dynamic_smem_bytes: 0,
        };
        // SAFETY: the kernel reads only its parameter and touches no memory.
        unsafe { self.launch::<SmokeSpin>(shape, SpinParams { cycles }) }
    }
}
