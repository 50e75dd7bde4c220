//! Backend-specific checks: where each tensor must live, and the GPU path's
//! alignment (TMA reads and writes 16-byte aligned boxes).

use super::layout::Checked;
use super::tensor::Place;
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// The backend an entry point runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'g> {
    Cpu,
    Gpu(&'g Gpu),
}

/// TMA's alignment unit, in bytes.
const TMA_ALIGN: u64 = 16;

/// Errors unless `place` is memory `target` uses; on the GPU, non-empty
/// `tma` tensors also need 16-byte aligned base addresses and
/// non-innermost strides (axes of length 1 carry an aligned stride already,
/// see [`Checked::strides`]).
pub(crate) fn check<const R: usize>(
    target: Target<'_>,
    tensor: &'static str,
    place: Place,
    checked: &Checked<R>,
    elem_size: usize,
    tma: bool,
) -> Result<()> {
    match (target, place) {
        (Target::Cpu, Place::Host { .. }) => Ok(()),
        (Target::Cpu, Place::Device { ordinal, .. }) => Err(Error::WrongMemory {
            tensor,
            expected: "host memory (the CPU reference backend reads and writes host slices)".into(),
            found: format!("the memory of GPU {ordinal}"),
        }),
        (Target::Gpu(gpu), Place::Host { .. }) => Err(Error::WrongMemory {
            tensor,
            expected: format!(
                "the memory of GPU {} (a DeviceBuffer of that Gpu)",
                gpu.ordinal()
            ),
            found: "host memory".into(),
        }),
        (Target::Gpu(gpu), Place::Device { ordinal, .. }) if ordinal != gpu.ordinal() => {
            Err(Error::WrongMemory {
                tensor,
                expected: format!("the memory of GPU {}", gpu.ordinal()),
                found: format!("the memory of GPU {ordinal}"),
            })
        }
        // An empty view is never read or written: its strides cannot matter.
        (Target::Gpu(_), Place::Device { address, .. }) if tma && checked.extent > 0 => {
            aligned(tensor, address, checked, elem_size)
        }
        (Target::Gpu(_), Place::Device { .. }) => Ok(()),
    }
}

fn aligned<const R: usize>(
    tensor: &'static str,
    address: u64,
    c: &Checked<R>,
    elem_size: usize,
) -> Result<()> {
    // Layout checks bounded offset · elem_size by i64::MAX, so these fit.
    let size = elem_size as u64;
    let base = u128::from(address) + u128::from(c.offset as u64 * size);
    if base % u128::from(TMA_ALIGN) != 0 {
        return Err(Error::Misaligned {
            tensor,
            problem: format!(
                "base address {base:#x} (buffer {address:#x} + {} elements)",
                c.offset
            ),
        });
    }
    for (axis, &stride) in c.strides[..R - 1].iter().enumerate() {
        let bytes = u128::from(stride as u64) * u128::from(size);
        if bytes % u128::from(TMA_ALIGN) != 0 {
            return Err(Error::Misaligned {
                tensor,
                problem: format!("axis {axis} has a stride of {stride} elements ({bytes} bytes)"),
            });
        }
    }
    Ok(())
}
