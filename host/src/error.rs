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
    /// The entry point is valid but this backend has no implementation of it
    /// yet (no silent fallback to another backend).
    #[error(
        "{feature} is not implemented yet; the CPU reference backend (`Device::cpu()`) computes it"
    )]
    Unsupported {
        /// The missing feature, e.g. `GPU backward`.
        feature: &'static str,
    },
    /// A dimension of a tensor disagrees with the problem's shape.
    #[error(
        "`{tensor}` dimension {axis} ({dim}) is {got}, but it must be {expected} (set by `{set_by}`)"
    )]
    ShapeMismatch {
        /// The tensor with the wrong dimension.
        tensor: &'static str,
        /// Which axis (0-based).
        axis: usize,
        /// The axis' name, e.g. `seqlen_k`.
        dim: &'static str,
        /// The tensor's length along that axis.
        got: usize,
        /// The length it must have.
        expected: usize,
        /// The argument that fixed the expected length.
        set_by: &'static str,
    },
    /// The query heads cannot be split into groups over the key/value heads.
    #[error(
        "heads_q = {heads_q} and heads_kv = {heads_kv}: both must be at least 1 and heads_q a \
         multiple of heads_kv (MHA: equal, GQA: a multiple, MQA: heads_kv = 1)"
    )]
    HeadsNotDivisible {
        /// Query heads.
        heads_q: usize,
        /// Key/value heads.
        heads_kv: usize,
    },
    /// A head dimension outside what the kernels are built for.
    #[error("{dim} = {got} is not supported; accepted: multiples of 8 from 8 to 256")]
    UnsupportedHeadDim {
        /// `head_dim` (q and k) or `head_dim_v` (v and out).
        dim: &'static str,
        /// The value given.
        got: usize,
    },
    /// The innermost (head dimension) stride is not 1.
    #[error(
        "`{tensor}` has innermost stride {stride}; the innermost dimension must be contiguous (stride 1)"
    )]
    InnermostStride {
        /// The tensor.
        tensor: &'static str,
        /// Its innermost stride, in elements.
        stride: usize,
    },
    /// A base address or stride the GPU path cannot use (TMA needs 16 bytes).
    #[error(
        "`{tensor}` is misaligned for the GPU path: {problem}; the base address and every \
         non-innermost stride must be multiples of 16 bytes"
    )]
    Misaligned {
        /// The tensor.
        tensor: &'static str,
        /// Which address or stride, and its value.
        problem: String,
    },
    /// The elements a tensor addresses run past the end of its memory.
    #[error(
        "`{tensor}` addresses elements up to index {needed} of its memory, which holds {len}; \
         the buffer must hold offset + the tensor's extent"
    )]
    BufferTooSmall {
        /// The tensor.
        tensor: &'static str,
        /// One past the last element the tensor addresses (offset included).
        needed: usize,
        /// Elements in the memory.
        len: usize,
    },
    /// An output overlaps an input or another output.
    #[error(
        "output `{output}` overlaps `{other}` in memory; outputs must not share bytes with any \
         input or other output"
    )]
    Aliasing {
        /// The output.
        output: &'static str,
        /// The input or output it overlaps.
        other: &'static str,
    },
    /// An attention option outside its domain.
    #[error("invalid option `{option}`: {problem}")]
    InvalidOption {
        /// `softmax_scale`, `softcap` or `window`.
        option: &'static str,
        /// What is wrong and what is accepted.
        problem: String,
    },
    /// Cumulative sequence lengths that do not describe the packed tensors.
    #[error("invalid `{argument}`: {problem}")]
    InvalidCuSeqlens {
        /// `cu_seqlens_q` or `cu_seqlens_k`.
        argument: &'static str,
        /// What is wrong and what is accepted.
        problem: String,
    },
    /// A `max_seqlen` below the longest sequence of its `cu_seqlens`.
    #[error(
        "`{argument}` is {given}, but the longest sequence has {needed} tokens; it must be at least that"
    )]
    MaxSeqlenTooSmall {
        /// `max_seqlen_q` or `max_seqlen_k`.
        argument: &'static str,
        /// The value given.
        given: usize,
        /// The longest sequence.
        needed: usize,
    },
    /// A tensor's shape or strides reach beyond what the kernels index:
    /// an axis longer than 2^31 − 1, or an element or byte offset beyond
    /// `i64::MAX`.
    #[error(
        "`{tensor}`: {problem}; accepted: axes of at most 2^31 − 1 and element and byte \
         offsets (offset + Σ (len − 1)·stride) of at most i64::MAX"
    )]
    Overflow {
        /// The tensor.
        tensor: &'static str,
        /// Which computation overflows.
        problem: String,
    },
    /// An output whose strides give two of its elements one address: the
    /// result would depend on the order of the writes.
    #[error(
        "output `{tensor}` overlaps itself: {problem}; accepted: outputs whose axes longer than 1, \
         sorted by stride, each step past everything the smaller ones address (row-major, padded \
         or permuted layouts)"
    )]
    SelfOverlap {
        /// The output.
        tensor: &'static str,
        /// Which axis revisits elements.
        problem: String,
    },
    /// Host memory for a result or a working copy could not be allocated:
    /// nothing was written.
    #[error("could not allocate {bytes} bytes of host memory for {what}; nothing was written")]
    Allocation {
        /// What the memory was for.
        what: &'static str,
        /// How much was asked for.
        bytes: u128,
    },
    /// A tensor lives in memory the chosen backend cannot use.
    #[error("`{tensor}` is in {found}, but this backend needs {expected}")]
    WrongMemory {
        /// The tensor.
        tensor: &'static str,
        /// Where the backend needs it.
        expected: String,
        /// Where it is.
        found: String,
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
