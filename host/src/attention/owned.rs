//! Results that an entry point allocates: they live where the device
//! computes (host vectors for the CPU backend, device buffers for a GPU).

use super::tensor::{Tensor, TensorMut};
use crate::gpu::DeviceBuffer;

/// Memory owned by a result.
#[derive(Debug)]
pub enum Storage<T> {
    /// Host memory (CPU backend).
    Host(Vec<T>),
    /// Memory of the GPU that computed the result.
    Device(DeviceBuffer<T>),
}

/// A row-major tensor that owns its memory.
#[derive(Debug)]
pub struct OwnedTensor<T, const R: usize> {
    storage: Storage<T>,
    shape: [usize; R],
}

impl<T, const R: usize> OwnedTensor<T, R> {
    pub(crate) fn new(storage: Storage<T>, shape: [usize; R]) -> Self {
        Self { storage, shape }
    }

    /// The shape.
    pub fn shape(&self) -> [usize; R] {
        self.shape
    }

    /// The memory.
    pub fn storage(&self) -> &Storage<T> {
        &self.storage
    }

    /// The memory, giving up the shape.
    pub fn into_storage(self) -> Storage<T> {
        self.storage
    }

    /// The elements, when they are in host memory.
    pub fn as_host(&self) -> Option<&[T]> {
        match &self.storage {
            Storage::Host(data) => Some(data),
            Storage::Device(_) => None,
        }
    }

    /// A read-only view, e.g. to pass a forward's results to a backward.
    pub fn view(&self) -> Tensor<'_, T, R> {
        match &self.storage {
            Storage::Host(data) => Tensor::host(data, self.shape),
            Storage::Device(buffer) => Tensor::device(buffer, self.shape),
        }
    }

    /// A writable view.
    pub fn view_mut(&mut self) -> TensorMut<'_, T, R> {
        match &mut self.storage {
            Storage::Host(data) => TensorMut::host(data, self.shape),
            Storage::Device(buffer) => TensorMut::device(buffer, self.shape),
        }
    }
}

/// What [`Device::forward`](crate::Device::forward) returns.
#[derive(Debug)]
pub struct ForwardOutput<T, const R: usize, const L: usize> {
    /// The attention output, shaped like `q` with `head_dim_v`.
    pub out: OwnedTensor<T, R>,
    /// The log-sum-exp of each query row (`-inf` when fully masked).
    pub lse: OwnedTensor<f32, L>,
}

/// What [`Device::backward`](crate::Device::backward) returns.
#[derive(Debug)]
pub struct Gradients<T, const R: usize> {
    /// Gradient with respect to `q`.
    pub dq: OwnedTensor<T, R>,
    /// Gradient with respect to `k`.
    pub dk: OwnedTensor<T, R>,
    /// Gradient with respect to `v`.
    pub dv: OwnedTensor<T, R>,
}
