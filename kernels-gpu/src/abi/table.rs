//! The kernels of the module and their parameter blocks.

use super::kernel::{KernelParams, kernel_table};
use super::ptr::GlobalPtr;

/// Parameters of [`SmokeAxpy`]: `out[i] = alpha * x[i] + y[i]` for `i < len`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SmokeParams {
    pub x: GlobalPtr<f32>,
    pub y: GlobalPtr<f32>,
    pub out: GlobalPtr<f32>,
    pub len: u64,
    pub alpha: f32,
}

// SAFETY: repr(C), Copy, align 8, device addresses as GlobalPtr.
unsafe impl KernelParams for SmokeParams {}

kernel_table! {
    /// The smoke kernel: proves the build, load and launch path end to end.
    /// Grid-stride loop, so any grid covers any length.
    SmokeAxpy {
        entry: fa3_smoke_axpy,
        params: SmokeParams,
        max_threads_per_block: 256,
        min_blocks_per_sm: 1,
        body: crate::smoke::axpy,
    },
}
