//! The kernel module embedded at build time.
//!
//! `build.rs` compiles `fa3-kernels` for nvptx64, patches launch bounds into
//! the entries and checks the module (self-contained, `.target sm_90a`, the
//! entries of the kernel table); when ptxas was found it also assembles a
//! cubin. [`Gpu`](crate::Gpu) prefers the cubin and falls back to the driver
//! JIT of the PTX.

include!(concat!(env!("OUT_DIR"), "/kernel_image.rs"));

/// The PTX module, as embedded (for tools such as `cargo xtask inspect`).
pub fn ptx() -> &'static str {
    PTX
}

/// The sm_90a cubin, if ptxas was available when this crate was built.
pub fn cubin() -> Option<&'static [u8]> {
    CUBIN
}
