//! Self-test kernels: each proves one Hopper primitive on the GPU against a
//! CPU reference (launched by `fa3::diagnostics`, checked in `tests/`).

pub(crate) mod bulk_add;
pub(crate) mod chain;
pub(crate) mod chain_e4m3;
pub(crate) mod gemm;
pub(crate) mod pingpong;
pub(crate) mod tma_round_trip;
