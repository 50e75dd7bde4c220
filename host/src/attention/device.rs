//! [`Device`]: the backend an entry point runs on. The entry points are in
//! `forward.rs` and `backward.rs`.

use super::element::Real;
use super::layout::element_count;
use super::owned::{OwnedTensor, Storage};
use super::residency::Target;
use super::shape::FixedDims;
use crate::error::Result;
use crate::gpu::{Element, Gpu};
use crate::reference::seqlen::Seqlens;

/// The accumulation precision of the CPU reference backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// `f32`, like the GPU kernels.
    #[default]
    F32,
    /// `f64`, for tests.
    F64,
}

/// Where attention runs: a Hopper GPU, or the CPU reference.
///
/// Both backends take the same arguments and give the same results within
/// precision. The CPU backend needs every tensor in host memory, a GPU
/// backend every tensor in its own memory ([`Error::WrongMemory`](crate::Error::WrongMemory)
/// otherwise). Entry points a GPU cannot run yet return
/// [`Error::Unsupported`](crate::Error::Unsupported) after validating everything; none falls back to
/// the CPU silently. The entry points that allocate their results
/// ([`Device::forward`], [`Device::backward`]) never panic or abort on size:
/// memory that cannot be had is a typed error ([`Error::Allocation`](crate::Error::Allocation) on the
/// host, the driver's out-of-memory error on a GPU) before anything is
/// written, and the CPU backend asks for its working memory the same way
/// before it starts.
#[derive(Debug)]
pub struct Device {
    pub(super) backend: Backend,
}

#[derive(Debug)]
pub(super) enum Backend {
    Cpu(Precision),
    // Boxed: a Gpu (context, stream, kernels, caches) is much larger than
    // a precision.
    Gpu(Box<Gpu>),
}

impl From<Gpu> for Device {
    fn from(gpu: Gpu) -> Self {
        Self {
            backend: Backend::Gpu(Box::new(gpu)),
        }
    }
}

/// The sequences of a fixed-length batch, for the validators.
pub(super) fn fixed_seqlens(d: &FixedDims) -> Result<Seqlens> {
    Ok(d.seqlens())
}

impl Device {
    /// The CPU reference backend, accumulating in `f32`.
    pub fn cpu() -> Self {
        Self::cpu_with(Precision::F32)
    }

    /// The CPU reference backend with the given accumulation precision.
    pub fn cpu_with(precision: Precision) -> Self {
        Self {
            backend: Backend::Cpu(precision),
        }
    }

    /// GPU `ordinal` (see [`Gpu::new`] for the errors).
    pub fn gpu(ordinal: usize) -> Result<Self> {
        Gpu::new(ordinal).map(Self::from)
    }

    /// The GPU, for a GPU backend (to upload and download buffers).
    pub fn as_gpu(&self) -> Option<&Gpu> {
        match &self.backend {
            Backend::Gpu(gpu) => Some(gpu),
            Backend::Cpu(_) => None,
        }
    }

    /// The accumulation precision, for the CPU backend.
    pub fn precision(&self) -> Option<Precision> {
        match self.backend {
            Backend::Cpu(precision) => Some(precision),
            Backend::Gpu(_) => None,
        }
    }

    pub(super) fn target(&self) -> Target<'_> {
        match &self.backend {
            Backend::Cpu(_) => Target::Cpu,
            Backend::Gpu(gpu) => Target::Gpu(gpu),
        }
    }

    /// Allocates a zeroed row-major tensor where this device computes.
    pub(super) fn alloc<T: Real + Element, const R: usize>(
        &self,
        name: &'static str,
        shape: [usize; R],
    ) -> Result<OwnedTensor<T, R>> {
        let len = element_count(name, &shape)?;
        let storage = match &self.backend {
            Backend::Cpu(_) => Storage::Host(crate::memory::filled(name, len, T::from_f32(0.0))?),
            Backend::Gpu(gpu) => Storage::Device(gpu.alloc(len)?),
        };
        Ok(OwnedTensor::new(storage, shape))
    }
}
