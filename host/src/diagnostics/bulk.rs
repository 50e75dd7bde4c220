//! Bulk adds: the two ways the backward adds f32 blocks into global memory
//! (one bulk reduce-add from shared memory; 16-byte reductions from
//! registers), raced by many blocks into the same sums.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, LaunchShape};
use fa3_kernels::abi::selftest::{BulkAddParams, bulk_add_smem_bytes};
use fa3_kernels::abi::{Kernel, SelftestBulkAdd};

/// Words one block adds: a multiple of this (128 threads x 4).
pub const BULK_ADD_WORD_MULTIPLE: usize = 512;

/// What the bulk adds left behind.
#[derive(Debug, Clone)]
pub struct BulkAddResult {
    /// `init` plus every block's words, by bulk reduce-add.
    pub bulk_sum: Vec<f32>,
    /// `init` plus every block's words, by 16-byte reductions.
    pub red_sum: Vec<f32>,
}

/// Adds the `src.len() / init.len()` blocks of `src` (each `init.len()`
/// words long) into two copies of `init` on `gpu`, one block per CTA.
pub fn bulk_add(gpu: &Gpu, src: &[f32], init: &[f32]) -> Result<BulkAddResult> {
    let words = init.len();
    if words == 0 || !words.is_multiple_of(BULK_ADD_WORD_MULTIPLE) || words > 8192 {
        return Err(Error::InvalidArgument {
            argument: "init",
            problem: format!(
                "{words} words; expected a multiple of {BULK_ADD_WORD_MULTIPLE} up to 8192"
            ),
        });
    }
    let blocks = src.len() / words;
    if src.len() != blocks * words || blocks == 0 || blocks > 65_535 {
        return Err(Error::InvalidArgument {
            argument: "src",
            problem: format!("{} words; expected 1 to 65535 blocks of {words}", src.len()),
        });
    }
    let src = gpu.upload(src)?;
    let mut bulk_sum = gpu.upload(init)?;
    let mut red_sum = gpu.upload(init)?;
    let shape = LaunchShape {
        grid: (blocks as u32, 1, 1),
        threads_per_block: SelftestBulkAdd::SPEC.max_threads_per_block,
        dynamic_smem_bytes: bulk_add_smem_bytes(words as u32),
    };
    {
        let (src_ptr, _a) = gpu.read_ptr(&src);
        let (bulk_ptr, _b) = gpu.write_ptr(&mut bulk_sum);
        let (red_ptr, _c) = gpu.write_ptr(&mut red_sum);
        let params = BulkAddParams {
            src: src_ptr,
            bulk_sum: bulk_ptr,
            red_sum: red_ptr,
            words: words as u32,
        };
        // SAFETY: `src` holds `blocks · words` f32 and each sum `words`
        // (checked above), all device allocations (aligned far beyond 16
        // bytes) alive across the launch; 128 threads and the kernel's own
        // shared-memory size; `words` a multiple of 512.
        unsafe { gpu.launch::<SelftestBulkAdd>(shape, params)? };
    }
    Ok(BulkAddResult {
        bulk_sum: gpu.download(&bulk_sum)?,
        red_sum: gpu.download(&red_sum)?,
    })
}
