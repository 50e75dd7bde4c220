//! Shared helpers of the integration tests: random inputs and poison.

use rand::Rng;

/// What outputs are filled with before a launch, so an element the kernel
/// did not write cannot pass a check.
pub const POISON_F32: f32 = f32::NAN;

/// `len` uniform values in `[-1, 1)`, fresh for every call.
pub fn random_f32(len: usize) -> Vec<f32> {
    let mut rng = rand::rng();
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// A fresh random scalar in `[lo, hi)`.
pub fn random_scalar(lo: f32, hi: f32) -> f32 {
    rand::rng().random_range(lo..hi)
}
