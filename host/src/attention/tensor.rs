//! Strided tensor views over host or device memory.
//!
//! A view is memory + element offset + shape + strides (in elements).
//! Views are checked when an entry point uses them, never at construction:
//! constructors cannot fail. What a view must satisfy is on [`Tensor`].

use super::layout::{Checked, Layout};
use crate::gpu::DeviceBuffer;
use std::fmt;
use std::marker::PhantomData;

/// A read-only view of a rank-`R` tensor of `T`.
///
/// Element `index` of a view is at `offset + Σ index[i] · strides[i]` in
/// its memory (row-major strides unless [`with_strides`](Self::with_strides)
/// gives others).
///
/// # What a view must satisfy
///
/// Every entry point and backend checks the same rules, before anything is
/// read or written; a view that breaks one is a typed [`Error`](crate::Error):
///
/// 1. Its shape is the one the problem gives that argument
///    ([`ShapeMismatch`](crate::Error::ShapeMismatch)).
/// 2. An empty view (an axis of length 0) addresses nothing: nothing else
///    about it is checked, whatever its strides, offset or other axes.
/// 3. Every axis is at most 2^31 − 1 long, and the logical element count
///    is at most `i64::MAX` ([`Overflow`](crate::Error::Overflow)): the
///    kernels index tokens, heads and columns with `i32` and elements with
///    `i64`.
/// 4. The innermost stride is 1 ([`InnermostStride`](crate::Error::InnermostStride)).
/// 5. `offset + Σ (len_i − 1) · stride_i + 1` (computed without wrapping),
///    in elements and in bytes, is at most `i64::MAX`
///    ([`Overflow`](crate::Error::Overflow)), and at most the elements its
///    memory holds ([`BufferTooSmall`](crate::Error::BufferTooSmall)).
/// 6. It is in the memory the backend uses ([`WrongMemory`](crate::Error::WrongMemory));
///    on a GPU, `q`, `k`, `v`, `out`, `dout` and the gradients also start
///    at a 16-byte aligned address and have 16-byte aligned strides but the
///    innermost ([`Misaligned`](crate::Error::Misaligned)).
/// 7. An output (`out`, `lse`, `dq`, `dk`, `dv`) gives every element an
///    address of its own: sorted by stride, its axes longer than 1 each step
///    past all the elements the smaller ones reach
///    ([`SelfOverlap`](crate::Error::SelfOverlap)). Row-major, padded and
///    permuted layouts all qualify; a zero or too small stride does not.
/// 8. No byte of an output belongs to an input or another output
///    ([`Aliasing`](crate::Error::Aliasing)). Inputs may overlap each other
///    and themselves (a zero stride broadcasts). The test is exact for views
///    that step alike, such as the thirds of one packed `(batch, seqlen, 3,
///    heads, dim)` buffer, and conservative (it may refuse) for stranger
///    interleavings.
///
/// Rules 4 and 6 do not apply to an axis of length 1, which never moves an
/// address. So the same logical tensor gets the same answer whatever
/// strides describe it.
///
/// ```
/// use fa3::Tensor;
/// let data = vec![0.0f32; 2 * 8 * 4 * 64];
/// // (batch 2, seqlen 8, heads 4, head_dim 64), row-major:
/// let q = Tensor::host(&data, [2, 8, 4, 64]);
/// // The same memory seen as 2 heads of a 4-head tensor (head stride 64):
/// let half_heads = Tensor::host(&data, [2, 8, 2, 64]).with_strides([2048, 256, 64, 1]);
/// assert_eq!(half_heads.shape(), [2, 8, 2, 64]);
/// # let _ = q;
/// ```
pub struct Tensor<'a, T, const R: usize> {
    memory: Memory<'a, T>,
    layout: Layout<R>,
}

/// A view of a rank-`R` tensor of `T` that an entry point writes.
///
/// ```
/// use fa3::TensorMut;
/// let mut out = vec![0.0f32; 2 * 3];
/// let view = TensorMut::host(&mut out, [2, 3]);
/// assert_eq!(view.shape(), [2, 3]);
/// ```
pub struct TensorMut<'a, T, const R: usize> {
    memory: MemoryMut<'a, T>,
    layout: Layout<R>,
}

/// The memory under a [`Tensor`].
pub(crate) enum Memory<'a, T> {
    /// Host memory valid for reads of `len` elements for `'a`.
    Host {
        ptr: *const T,
        len: usize,
        borrow: PhantomData<&'a [T]>,
    },
    Device(&'a DeviceBuffer<T>),
}

/// The memory under a [`TensorMut`].
pub(crate) enum MemoryMut<'a, T> {
    /// Host memory valid for reads and writes of `len` elements for `'a`,
    /// accessed by nothing else meanwhile (but other views of the same call,
    /// which validation keeps apart).
    Host {
        ptr: *mut T,
        len: usize,
        borrow: PhantomData<&'a mut [T]>,
    },
    Device(&'a mut DeviceBuffer<T>),
}

/// Which memory a view is in, for residency, alignment and overlap checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Host {
        address: usize,
        len: usize,
    },
    Device {
        ordinal: usize,
        address: u64,
        len: usize,
    },
}

impl Place {
    pub fn len(&self) -> usize {
        match *self {
            Self::Host { len, .. } | Self::Device { len, .. } => len,
        }
    }
}

impl<'a, T, const R: usize> Tensor<'a, T, R> {
    /// A row-major view of host memory.
    pub fn host(data: &'a [T], shape: [usize; R]) -> Self {
        Self {
            memory: Memory::Host {
                ptr: data.as_ptr(),
                len: data.len(),
                borrow: PhantomData,
            },
            layout: Layout::contiguous(shape),
        }
    }

    /// A row-major view of host memory given by pointer, for memory that is
    /// not a Rust slice (FFI). Unlike slices, such views may overlap an
    /// output of the same call; entry points detect that and return
    /// [`Error::Aliasing`](crate::Error::Aliasing) before touching memory.
    ///
    /// # Safety
    /// `ptr` must be non-null, aligned, and valid for reads of `len`
    /// elements for `'a`, and nothing may write that memory during `'a`
    /// except through a [`TensorMut`] passed to the same call.
    pub unsafe fn from_raw_parts(ptr: *const T, len: usize, shape: [usize; R]) -> Self {
        Self {
            memory: Memory::Host {
                ptr,
                len,
                borrow: PhantomData,
            },
            layout: Layout::contiguous(shape),
        }
    }

    /// A row-major view of a device buffer.
    pub fn device(buffer: &'a DeviceBuffer<T>, shape: [usize; R]) -> Self {
        Self {
            memory: Memory::Device(buffer),
            layout: Layout::contiguous(shape),
        }
    }

    /// The same memory with these strides (in elements; the innermost must
    /// be 1).
    pub fn with_strides(mut self, strides: [usize; R]) -> Self {
        self.layout.strides = Some(strides);
        self
    }

    /// The same memory, starting `offset` elements in.
    pub fn with_offset(mut self, offset: usize) -> Self {
        self.layout.offset = offset;
        self
    }

    /// The shape.
    pub fn shape(&self) -> [usize; R] {
        self.layout.shape
    }

    pub(crate) fn layout(&self) -> &Layout<R> {
        &self.layout
    }

    /// The device buffer under the view, if it is in device memory.
    pub(crate) fn device_buffer(&self) -> Option<&'a DeviceBuffer<T>> {
        match self.memory {
            Memory::Device(buffer) => Some(buffer),
            Memory::Host { .. } => None,
        }
    }

    pub(crate) fn place(&self) -> Place {
        match &self.memory {
            Memory::Host { ptr, len, .. } => Place::Host {
                address: *ptr as usize,
                len: *len,
            },
            Memory::Device(buffer) => device_place(buffer),
        }
    }

    /// The `checked.extent` elements from `checked.offset`, when this view
    /// is in host memory that holds them (`None` otherwise).
    ///
    /// # Safety
    /// No [`TensorMut`] alive overlaps those elements (validation's
    /// aliasing check).
    pub(crate) unsafe fn host_slice(&self, checked: &Checked<R>) -> Option<&'a [T]> {
        let Memory::Host { ptr, len, .. } = self.memory else {
            return None;
        };
        if checked.extent == 0 {
            return Some(&[]);
        }
        if checked.offset.checked_add(checked.extent)? > len {
            return None;
        }
        // SAFETY: the range is within the `len` elements the constructor's
        // contract makes readable for 'a (checked just above), and nothing
        // writes them meanwhile (the caller's contract).
        Some(unsafe { std::slice::from_raw_parts(ptr.add(checked.offset), checked.extent) })
    }
}

impl<'a, T, const R: usize> TensorMut<'a, T, R> {
    /// A row-major view of host memory.
    pub fn host(data: &'a mut [T], shape: [usize; R]) -> Self {
        Self {
            memory: MemoryMut::Host {
                ptr: data.as_mut_ptr(),
                len: data.len(),
                borrow: PhantomData,
            },
            layout: Layout::contiguous(shape),
        }
    }

    /// A row-major view of writable host memory given by pointer (FFI).
    /// Overlap with any other view of the same call is detected and
    /// rejected with [`Error::Aliasing`](crate::Error::Aliasing) before
    /// anything is read or written.
    ///
    /// # Safety
    /// `ptr` must be non-null, aligned, and valid for reads and writes of
    /// `len` elements for `'a`, and nothing may access that memory during
    /// `'a` except through views passed to the same call.
    pub unsafe fn from_raw_parts(ptr: *mut T, len: usize, shape: [usize; R]) -> Self {
        Self {
            memory: MemoryMut::Host {
                ptr,
                len,
                borrow: PhantomData,
            },
            layout: Layout::contiguous(shape),
        }
    }

    /// A row-major view of a device buffer.
    pub fn device(buffer: &'a mut DeviceBuffer<T>, shape: [usize; R]) -> Self {
        Self {
            memory: MemoryMut::Device(buffer),
            layout: Layout::contiguous(shape),
        }
    }

    /// The same memory with these strides (in elements; the innermost must
    /// be 1).
    pub fn with_strides(mut self, strides: [usize; R]) -> Self {
        self.layout.strides = Some(strides);
        self
    }

    /// The same memory, starting `offset` elements in.
    pub fn with_offset(mut self, offset: usize) -> Self {
        self.layout.offset = offset;
        self
    }

    /// The shape.
    pub fn shape(&self) -> [usize; R] {
        self.layout.shape
    }

    pub(crate) fn layout(&self) -> &Layout<R> {
        &self.layout
    }

    /// The device buffer under the view, if it is in device memory.
    pub(crate) fn device_buffer_mut(&mut self) -> Option<&mut DeviceBuffer<T>> {
        match &mut self.memory {
            MemoryMut::Device(buffer) => Some(buffer),
            MemoryMut::Host { .. } => None,
        }
    }

    pub(crate) fn place(&self) -> Place {
        match &self.memory {
            MemoryMut::Host { ptr, len, .. } => Place::Host {
                address: *ptr as usize,
                len: *len,
            },
            MemoryMut::Device(buffer) => device_place(buffer),
        }
    }

    /// The `checked.extent` elements from `checked.offset`, writable, when
    /// this view is in host memory that holds them (`None` otherwise).
    ///
    /// # Safety
    /// No other view alive overlaps those elements (validation's aliasing
    /// check).
    pub(crate) unsafe fn host_slice_mut(&mut self, checked: &Checked<R>) -> Option<&mut [T]> {
        let MemoryMut::Host { ptr, len, .. } = self.memory else {
            return None;
        };
        if checked.extent == 0 {
            return Some(&mut []);
        }
        if checked.offset.checked_add(checked.extent)? > len {
            return None;
        }
        // SAFETY: the range is within the `len` elements the constructor's
        // contract makes writable for 'a (checked just above), no other
        // view overlaps it (the caller's contract), and `&mut self` keeps
        // this the only slice made from this view.
        Some(unsafe { std::slice::from_raw_parts_mut(ptr.add(checked.offset), checked.extent) })
    }
}

fn device_place<T>(buffer: &DeviceBuffer<T>) -> Place {
    Place::Device {
        ordinal: buffer.ordinal(),
        address: buffer.address(),
        len: buffer.len(),
    }
}

impl<T, const R: usize> Clone for Tensor<'_, T, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, const R: usize> Copy for Tensor<'_, T, R> {}

impl<T> Clone for Memory<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Memory<'_, T> {}

// SAFETY: a `Tensor` is a shared borrow, for 'a, of host elements (like
// `&'a [T]`) or of a `DeviceBuffer<T>` (which is `Send + Sync`): moving or
// sharing it across threads is sound when `&[T]` is, that is when `T: Sync`.
unsafe impl<T: Sync, const R: usize> Send for Tensor<'_, T, R> {}
// SAFETY: as for `Send`: `&Tensor` only reads, like `&&[T]`.
unsafe impl<T: Sync, const R: usize> Sync for Tensor<'_, T, R> {}
// SAFETY: a `TensorMut` is an exclusive borrow, for 'a, like `&'a mut [T]`
// (or `&'a mut DeviceBuffer<T>`): it may move to another thread when
// `T: Send`...
unsafe impl<T: Send, const R: usize> Send for TensorMut<'_, T, R> {}
// SAFETY: ...and be shared when `T: Sync` (`&TensorMut` gives no access to
// the elements at all).
unsafe impl<T: Sync, const R: usize> Sync for TensorMut<'_, T, R> {}

impl<T, const R: usize> fmt::Debug for Tensor<'_, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("place", &self.place())
            .field("layout", &self.layout)
            .finish()
    }
}

impl<T, const R: usize> fmt::Debug for TensorMut<'_, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorMut")
            .field("place", &self.place())
            .field("layout", &self.layout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_and_sync<X: Send + Sync>(_: &X) {}

    #[test]
    fn views_cross_threads_like_slices() {
        let data = vec![1.0f32; 8];
        let mut out = vec![0.0f32; 8];
        let view = Tensor::host(&data, [2, 4]);
        let view_mut = TensorMut::host(&mut out, [2, 4]);
        send_and_sync(&view);
        send_and_sync(&view_mut);
        std::thread::scope(|s| {
            s.spawn(move || assert_eq!(view.shape(), [2, 4]));
        });
    }
}
