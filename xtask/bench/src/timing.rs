//! Timing fa3 calls: CUDA events around each repetition, warm-up first,
//! and the L2 cache flushed before every timed repetition so that small
//! problems are not flattered by inputs left in cache by the last one.

use crate::results::Timing;
use fa3::{DeviceBuffer, Gpu};

/// f32 elements of each flush buffer: 256 MB, five times an H200's L2.
const FLUSH_LEN: usize = 1 << 26;
/// GPU cycles of the spin queued after each flush (about 1 ms at 1.98
/// GHz): the same as the Python peers' (`py/peers.py`), so every
/// event-timed implementation starts its call after the same idle-free
/// gap, and the host has enqueued the call before its start event.
pub const SPIN_CYCLES: u64 = 2_000_000;

/// Evicts the L2 cache by streaming 768 MB through it with the smoke
/// kernel (`out = x + y`), which also gives the device copy rate.
pub struct L2Flush {
    x: DeviceBuffer<f32>,
    y: DeviceBuffer<f32>,
    out: DeviceBuffer<f32>,
}

impl L2Flush {
    /// Allocates the buffers and checks the kernel once, like every kernel
    /// this binary times (its copy rate goes into the report).
    pub fn new(gpu: &Gpu) -> Result<Self, String> {
        let setup = |e: fa3::Error| format!("could not set up the L2 flush: {e}");
        let mut flush = Self {
            x: gpu.upload(&vec![1.5f32; FLUSH_LEN]).map_err(setup)?,
            y: gpu.upload(&vec![0.25f32; FLUSH_LEN]).map_err(setup)?,
            out: gpu.alloc(FLUSH_LEN).map_err(setup)?,
        };
        flush.run(gpu).map_err(setup)?;
        let out = gpu.download(&flush.out).map_err(setup)?;
        match out.iter().position(|&o| o != 1.75) {
            None => Ok(flush),
            Some(i) => Err(format!(
                "the L2-flush kernel is wrong at element {i}: {} instead of 1.75",
                out[i]
            )),
        }
    }

    pub fn run(&mut self, gpu: &Gpu) -> fa3::Result<()> {
        gpu.smoke_axpy(1.0, &self.x, &self.y, &mut self.out)
    }

    /// The median copy rate of a flush, bytes read + written, in GB/s.
    pub fn copy_gb_per_s(&mut self, gpu: &Gpu, reps: usize) -> fa3::Result<Option<f64>> {
        self.run(gpu)?;
        let mut samples = Vec::with_capacity(reps);
        for _ in 0..reps {
            samples.push(f64::from(gpu.time_ms(|| self.run(gpu))?));
        }
        let bytes = 3.0 * 4.0 * FLUSH_LEN as f64;
        Ok(Timing::of(samples).map(|t| bytes / (t.median_ms * 1e-3) / 1e9))
    }
}

/// Runs `work` `warmup` times, then `reps` times between CUDA events, each
/// after a flush and a spin of [`SPIN_CYCLES`]. `work` must issue its GPU
/// work on `gpu`'s stream.
pub fn time_reps(
    gpu: &Gpu,
    mut flush: Option<&mut L2Flush>,
    reps: usize,
    warmup: usize,
    mut work: impl FnMut() -> fa3::Result<()>,
) -> fa3::Result<Vec<f64>> {
    for _ in 0..warmup {
        work()?;
    }
    let mut samples = Vec::with_capacity(reps);
    for _ in 0..reps {
        if let Some(flush) = flush.as_deref_mut() {
            flush.run(gpu)?;
            gpu.spin_cycles(SPIN_CYCLES)?;
        }
        samples.push(f64::from(gpu.time_ms(&mut work)?));
    }
    Ok(samples)
}
