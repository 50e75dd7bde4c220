//! Element and operand-major markers: types that carry what the instruction
//! encodings need (byte width, PTX type name, transpose immediate).

/// An element type of a tensor-core operand.
pub trait Element {
    /// Bytes per element.
    const BYTES: u32;
}

/// bfloat16.
pub enum Bf16 {}
/// IEEE half.
pub enum F16 {}
/// FP8 e4m3.
pub enum E4m3 {}

impl Element for Bf16 {
    const BYTES: u32 = 2;
}
impl Element for F16 {
    const BYTES: u32 = 2;
}
impl Element for E4m3 {
    const BYTES: u32 = 1;
}

/// Which dimension of a wgmma operand is contiguous in shared memory.
pub trait Major {
    /// The wgmma `imm-trans` value: 0 for K-major, 1 for MN-major.
    const TRANSPOSE: u32;
}

/// K contiguous (Q, K as the B operand of Q·Kᵀ).
pub enum KMajor {}
/// M or N contiguous (V as the B operand of P·V).
pub enum MnMajor {}

impl Major for KMajor {
    const TRANSPOSE: u32 = 0;
}
impl Major for MnMajor {
    const TRANSPOSE: u32 = 1;
}
