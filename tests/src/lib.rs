//! Shared helpers of the integration tests: random inputs and poison, FA3's
//! accuracy rule, an independent materialized attention, padded layouts.

pub mod accuracy;
pub mod cases;
pub mod materialized;
pub mod strided;

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

/// `len` uniform values in `[-1, 1)` from a seeded generator (reproducible).
pub fn seeded_f32(seed: u64, len: usize) -> Vec<f32> {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

pub use accuracy::{Report, assert_accurate, check as check_accuracy};
