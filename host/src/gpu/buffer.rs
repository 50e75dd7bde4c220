//! Device memory owned by a [`Gpu`].

use super::Gpu;
use crate::error::{DriverContext, Error, Result};
use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut, DeviceRepr, SyncOnDrop, ValidAsZeroBits};
use fa3_kernels::abi::GlobalPtr;
use float8::F8E4M3;
use half::{bf16, f16};

mod sealed {
    pub trait Sealed {}
}

/// Element types device buffers hold.
pub trait Element: sealed::Sealed + DeviceRepr + ValidAsZeroBits + Copy + Unpin + 'static {}

macro_rules! elements {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {}
    )*};
}
elements!(f32, f16, bf16, F8E4M3, i32, u32, u8);

/// A buffer of `T` in the memory of one [`Gpu`].
#[derive(Debug)]
pub struct DeviceBuffer<T> {
    pub(super) slice: CudaSlice<T>,
}

impl<T> DeviceBuffer<T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.slice.len()
    }

    /// True when the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.slice.len() == 0
    }
}

/// What validation and tensor-map encoding read of a buffer (no access).
impl<T> DeviceBuffer<T> {
    /// The device address of element 0, for alignment and overlap checks and
    /// for tensor maps.
    pub(crate) fn address(&self) -> u64 {
        // The guard would record a read on the buffer's own stream; nothing
        // reads through this address, so it is dropped at once.
        let (address, _record) = self.slice.device_ptr(self.slice.stream());
        address
    }

    /// The ordinal of the GPU that owns the buffer.
    pub(crate) fn ordinal(&self) -> usize {
        self.slice.ordinal()
    }
}

impl Gpu {
    /// A zero-filled buffer of `len` elements.
    pub fn alloc<T: Element>(&self, len: usize) -> Result<DeviceBuffer<T>> {
        let slice = self
            .stream
            .alloc_zeros::<T>(len)
            .during("allocating device memory")?;
        Ok(DeviceBuffer { slice })
    }

    /// A workspace of `len` elements whose contents are unspecified, from
    /// the pool that keeps its memory between calls
    /// ([`Gpu::trim_workspace`]): for buffers that kernels write before
    /// anything reads them (no zero-fill pass over memory that is about to
    /// be overwritten).
    ///
    /// # Safety
    /// Every element is written on the device before it is read, by the
    /// device or the host.
    pub(crate) unsafe fn alloc_uninit<T: Element>(&self, len: usize) -> Result<DeviceBuffer<T>> {
        let bytes =
            len.checked_mul(std::mem::size_of::<T>())
                .ok_or_else(|| Error::InvalidArgument {
                    argument: "len",
                    problem: format!("{len} elements overflow the address space"),
                })?;
        // SAFETY: the slice below frees it on this GPU's stream when dropped.
        let address = unsafe { self.workspaces.alloc(&self.stream, bytes)? };
        // SAFETY: `address` holds `len` elements of this device, owned by the
        // slice from here on; per the contract nothing reads the unset
        // memory.
        let slice = unsafe { self.stream.upgrade_device_ptr::<T>(address, len) };
        Ok(DeviceBuffer { slice })
    }

    /// Copies `host` into a new buffer.
    pub fn upload<T: Element>(&self, host: &[T]) -> Result<DeviceBuffer<T>> {
        let slice = self
            .stream
            .clone_htod(host)
            .during("copying to the device")?;
        Ok(DeviceBuffer { slice })
    }

    /// Overwrites `buffer` with `host`, which must have the same length.
    pub fn write<T: Element>(&self, host: &[T], buffer: &mut DeviceBuffer<T>) -> Result<()> {
        self.check_owned(buffer, "buffer")?;
        if host.len() != buffer.len() {
            return Err(Error::InvalidArgument {
                argument: "host",
                problem: format!(
                    "{} elements for a buffer of {}; lengths must match",
                    host.len(),
                    buffer.len()
                ),
            });
        }
        self.stream
            .memcpy_htod(host, &mut buffer.slice)
            .during("copying to the device")
    }

    /// Copies `buffer` to the host, after all work issued before.
    pub fn download<T: Element>(&self, buffer: &DeviceBuffer<T>) -> Result<Vec<T>> {
        self.check_owned(buffer, "buffer")?;
        self.stream
            .clone_dtoh(&buffer.slice)
            .during("copying to the host")
    }

    /// Errors unless `buffer` lives on this GPU's context.
    pub(crate) fn check_owned<T>(
        &self,
        buffer: &DeviceBuffer<T>,
        argument: &'static str,
    ) -> Result<()> {
        if **buffer.slice.context() == **self.stream.context() {
            Ok(())
        } else {
            Err(Error::InvalidArgument {
                argument,
                problem: format!(
                    "the buffer belongs to GPU {}, not to GPU {}",
                    buffer.slice.context().ordinal(),
                    self.ordinal
                ),
            })
        }
    }

    /// The buffer's address for a kernel that reads it. Keep the guard alive
    /// across the launch: dropping it records the read on the stream.
    pub(crate) fn read_ptr<'a, T>(
        &'a self,
        buffer: &'a DeviceBuffer<T>,
    ) -> (GlobalPtr<T>, SyncOnDrop<'a>) {
        let (address, guard) = buffer.slice.device_ptr(&self.stream);
        (GlobalPtr::from_address(address), guard)
    }

    /// The buffer's address for a kernel that writes it (see [`Self::read_ptr`]).
    pub(crate) fn write_ptr<'a, T>(
        &'a self,
        buffer: &'a mut DeviceBuffer<T>,
    ) -> (GlobalPtr<T>, SyncOnDrop<'a>) {
        let (address, guard) = buffer.slice.device_ptr_mut(&self.stream);
        (GlobalPtr::from_address(address), guard)
    }
}
