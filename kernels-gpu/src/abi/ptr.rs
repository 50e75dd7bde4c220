//! A typed device address that is plain data on both sides of the ABI.

#[cfg(not(target_arch = "nvptx64"))]
use core::fmt;
use core::marker::PhantomData;

/// The address of a `T` in device global memory.
///
/// On the host this is a number handed out by the driver; on the device it is
/// dereferenced through `GlobalPtr::as_mut_ptr` (nvptx64 only). It is `#[repr(transparent)]`
/// over `u64`, so parameter blocks holding it have the same layout on both
/// targets.
#[repr(transparent)]
pub struct GlobalPtr<T> {
    address: u64,
    // `fn() -> T`: carries the pointee type without making the block !Send.
    pointee: PhantomData<fn() -> T>,
}

impl<T> GlobalPtr<T> {
    /// Wraps a device address (a `CUdeviceptr`).
    pub const fn from_address(address: u64) -> Self {
        Self {
            address,
            pointee: PhantomData,
        }
    }

    /// The device address.
    pub const fn address(self) -> u64 {
        self.address
    }

    /// The address as a generic-space pointer, for device code.
    #[cfg(target_arch = "nvptx64")]
    pub fn as_mut_ptr(self) -> *mut T {
        self.address as *mut T
    }
}

impl<T> Clone for GlobalPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for GlobalPtr<T> {}

#[cfg(not(target_arch = "nvptx64"))]
impl<T> fmt::Debug for GlobalPtr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GlobalPtr({:#x})", self.address)
    }
}
