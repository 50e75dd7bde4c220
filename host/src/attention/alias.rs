//! Outputs must not share bytes with inputs or other outputs.
//!
//! The check is on byte ranges (first to one past the last byte a view
//! addresses), so it is conservative for interleaved strided views: it
//! rejects two outputs that interleave without touching the same element.
//! Views built from Rust slices and buffers cannot overlap an output at all
//! (the borrow checker forbids it); the check guards views built from raw
//! pointers.

use super::tensor::Place;
use crate::error::{Error, Result};

/// The bytes a view spans, in one memory space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Region {
    /// `None` for host memory, the GPU's ordinal for device memory.
    device: Option<usize>,
    start: u128,
    end: u128,
}

impl Region {
    /// The region of `extent` elements of `elem_size` bytes, `offset`
    /// elements into `place`.
    pub fn new(place: Place, offset: usize, extent: usize, elem_size: usize) -> Self {
        let (device, address) = match place {
            Place::Host { address, .. } => (None, address as u128),
            Place::Device {
                ordinal, address, ..
            } => (Some(ordinal), u128::from(address)),
        };
        let size = elem_size as u128;
        let start = address + offset as u128 * size;
        Self {
            device,
            start,
            end: start + extent as u128 * size,
        }
    }

    fn overlaps(&self, other: &Self) -> bool {
        // Empty views address nothing, wherever they point.
        let empty = self.start == self.end || other.start == other.end;
        !empty && self.device == other.device && self.start < other.end && other.start < self.end
    }
}

/// Named regions of one call.
#[derive(Debug, Default)]
pub(crate) struct Regions {
    inputs: Vec<(&'static str, Region)>,
    outputs: Vec<(&'static str, Region)>,
}

impl Regions {
    pub fn input(&mut self, name: &'static str, region: Region) {
        self.inputs.push((name, region));
    }

    pub fn output(&mut self, name: &'static str, region: Region) {
        self.outputs.push((name, region));
    }

    /// Errors on the first output that overlaps an input or an earlier output.
    pub fn check(&self) -> Result<()> {
        for (i, &(output, region)) in self.outputs.iter().enumerate() {
            let mut others = self.inputs.iter().chain(&self.outputs[..i]);
            if let Some(&(other, _)) = others.find(|(_, r)| region.overlaps(r)) {
                return Err(Error::Aliasing { output, other });
            }
        }
        Ok(())
    }
}
