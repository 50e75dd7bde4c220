//! Self-tests of the Hopper building blocks the kernels are made of: TMA
//! copies, bulk copies and reduce-adds, wgmma GEMMs (SS and RS, bf16/f16/e4m3), the GEMM chain of
//! attention with P kept in registers, and a warp-specialized producer /
//! pingpong-consumer ring; and the forward kernel's builds without one or
//! both of its scheduling techniques.
//!
//! Each function runs one self-test kernel on host data and returns what the
//! GPU computed, for comparison with a CPU reference (the test suite does
//! this). Inputs are checked; a wrong shape is an [`Error::InvalidArgument`]
//! and nothing is launched.
//!
//! [`Error::InvalidArgument`]: crate::Error::InvalidArgument

mod bulk;
mod chain;
mod gemm;
mod pingpong;
mod schedule;
mod tma;

pub use crate::gpu::TmaElement;
pub use bulk::{BULK_ADD_WORD_MULTIPLE, BulkAddResult, bulk_add};
pub use chain::{ChainResult, gemm_chain, gemm_chain_e4m3};
pub use gemm::{BMajor, GEMM_CASES, GemmCase, GemmElement, GemmForm, GemmInput, wgmma_gemm};
pub use pingpong::{PingpongResult, pingpong};
pub use schedule::{Schedule, forward_with_schedule};
pub use tma::{TmaCase, TmaRoundTrip, tma_round_trip};

use crate::error::{Error, Result};

/// Errors unless `len == expected`.
fn check_len(argument: &'static str, len: usize, expected: usize) -> Result<()> {
    if len == expected {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            argument,
            problem: format!("{len} elements; this self-test needs exactly {expected}"),
        })
    }
}
