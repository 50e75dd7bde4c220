//! FP8 (e4m3) quantization, shared by host and device: the signs of
//! incoherent processing ([`hadamard_sign`], one definition for the CPU
//! backend and the kernel) and, on the device, the quantization kernel and
//! V's transpose for the FP8 P·V GEMM.

#[cfg(target_arch = "nvptx64")]
pub(crate) mod quantize;
#[cfg(target_arch = "nvptx64")]
pub(crate) mod transpose;

/// The sign of column `column` in incoherent processing with `seed`: +1
/// or −1, bit 63 of SplitMix64's output for counter `column + 1`: a
/// stateless hash, so each column (each GPU thread) computes its own.
#[inline(always)]
pub fn hadamard_sign(seed: u64, column: u32) -> f32 {
    let counter = (column as u64).wrapping_add(1);
    let mut z = seed.wrapping_add(counter.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    if z >> 63 == 0 { 1.0 } else { -1.0 }
}
