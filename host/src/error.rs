//! The one error type of the library.

use cudarc::driver::DriverError;

/// Everything that can go wrong, with what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// libcuda could not be loaded.
    #[error("no NVIDIA driver found (libcuda.so could not be loaded)")]
    NoDriver,
    /// The driver loaded but has no device with this ordinal.
    #[error("no CUDA device {ordinal}: the driver reports {count} device(s)")]
    NoDevice {
        /// The ordinal asked for.
        ordinal: usize,
        /// How many devices the driver sees.
        count: usize,
    },
    /// The device is not a Hopper (compute capability 9.0).
    #[error("GPU {ordinal} ({name}) is sm_{major}{minor}; these kernels need sm_90a (H100/H200)")]
    UnsupportedGpu {
        /// Device ordinal.
        ordinal: usize,
        /// Device name.
        name: String,
        /// Compute capability, major.
        major: i32,
        /// Compute capability, minor.
        minor: i32,
    },
    /// A CUDA driver call failed.
    #[error("CUDA driver error while {action}: {source}")]
    Driver {
        /// What the library was doing.
        action: &'static str,
        /// The driver's error.
        #[source]
        source: DriverError,
    },
    /// Neither the embedded cubin nor the PTX (through the driver JIT) loaded.
    #[error("could not load the kernel module: cubin: {cubin}; PTX through the driver JIT: {ptx}")]
    ModuleLoad {
        /// Why the cubin failed (or that none is embedded).
        cubin: String,
        /// Why the PTX failed (or that it was not tried).
        ptx: String,
    },
    /// An argument is outside what the entry point accepts.
    #[error("invalid argument `{argument}`: {problem}")]
    InvalidArgument {
        /// The argument's name.
        argument: &'static str,
        /// What is wrong and what is accepted.
        problem: String,
    },
    /// A TMA tensor map the driver cannot encode, or one reaching outside its
    /// buffer.
    #[error("tensor map rejected: {problem}")]
    TensorMap {
        /// What is wrong and what is accepted.
        problem: String,
    },
    /// A launch shape outside the kernel's declared bounds.
    #[error("launch of `{kernel}` rejected: {problem}")]
    LaunchShape {
        /// The kernel entry.
        kernel: &'static str,
        /// What is wrong and what is accepted.
        problem: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches what the library was doing to a driver error.
pub(crate) trait DriverContext<T> {
    fn during(self, action: &'static str) -> Result<T>;
}

impl<T> DriverContext<T> for std::result::Result<T, DriverError> {
    fn during(self, action: &'static str) -> Result<T> {
        self.map_err(|source| Error::Driver { action, source })
    }
}
