//! Index arithmetic shared by device code and host tests: pipeline ring
//! state, wgmma fragment coordinates, shared-memory descriptors, swizzle,
//! the FP8 V transpose.
//!
//! Nothing here touches hardware, so all of it is unit-tested on the CPU.

pub mod desc;
pub mod fp8_transpose;
pub mod fragment;
pub mod pipeline_state;
pub mod swizzle;
