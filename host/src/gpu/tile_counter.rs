//! The global counter persistent kernels claim tiles from.
//!
//! Never reset: a launch that makes `claims` claims is told the counter's
//! value when it begins (`base`) and counts its tiles from there, so no
//! memset has to run before each launch. Launches on the one stream run in
//! order, so each sees the value the previous one left.

use super::{DeviceBuffer, Gpu};
use crate::error::Result;
use fa3_kernels::abi::GlobalPtr;
use std::sync::{Mutex, PoisonError};

#[derive(Debug)]
pub(super) struct TileCounter {
    buffer: DeviceBuffer<u32>,
    /// The counter's value once every launch issued so far has run.
    claimed: u32,
}

impl TileCounter {
    pub(super) fn new(buffer: DeviceBuffer<u32>) -> Mutex<Self> {
        Mutex::new(Self { buffer, claimed: 0 })
    }
}

impl Gpu {
    /// Calls `launch` with the counter and this launch's base, for a kernel
    /// that makes exactly `claims` claims. The base moves on only when
    /// `launch` succeeds (a launch that never started claimed nothing).
    pub(crate) fn with_tile_counter(
        &self,
        claims: u32,
        launch: impl FnOnce(GlobalPtr<u32>, u32) -> Result<()>,
    ) -> Result<()> {
        // A panic while the lock was held cannot have left `claimed` half
        // updated (it is written once, after the launch).
        let mut counter = self
            .tile_counter
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let base = counter.claimed;
        {
            // The guard orders the launch with other work on the counter
            // and must end before `counter` is written again.
            let (ptr, _guard) = self.write_ptr(&mut counter.buffer);
            launch(ptr, base)?;
        }
        counter.claimed = base.wrapping_add(claims);
        Ok(())
    }
}
