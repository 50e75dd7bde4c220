//! Timing work on the GPU with CUDA events.

use super::Gpu;
use crate::error::{DriverContext, Result};
use cudarc::driver::sys::CUevent_flags;

impl Gpu {
    /// Runs `work` (which issues GPU work on this GPU) between two CUDA events
    /// and returns the GPU time between them, in milliseconds.
    pub fn time_ms(&self, work: impl FnOnce() -> Result<()>) -> Result<f32> {
        // cudarc's default event flags disable timing.
        let timed = Some(CUevent_flags::CU_EVENT_DEFAULT);
        let start = self
            .stream
            .record_event(timed)
            .during("recording an event")?;
        work()?;
        let stop = self
            .stream
            .record_event(timed)
            .during("recording an event")?;
        stop.synchronize().during("waiting for an event")?;
        start.elapsed_ms(&stop).during("reading event times")
    }
}
