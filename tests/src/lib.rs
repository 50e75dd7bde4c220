//! Shared helpers of the integration tests: random inputs and poison, FA3's
//! accuracy rule, an independent materialized attention, padded layouts.

pub mod accuracy;
pub mod cases;
pub mod materialized;
pub mod matrix;
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

/// `len` uniform values in `[-1, 1)` rounded to bf16, fresh for every call.
pub fn random_bf16(len: usize) -> Vec<fa3::bf16> {
    random_f32(len)
        .into_iter()
        .map(fa3::bf16::from_f32)
        .collect()
}

/// An element's bit pattern, for comparisons that tell NaN payloads and
/// signed zeros apart (poisoned buffers must come back bit for bit).
pub trait Bits: Copy {
    fn bits(self) -> u32;
}

impl Bits for f32 {
    fn bits(self) -> u32 {
        self.to_bits()
    }
}

impl Bits for fa3::bf16 {
    fn bits(self) -> u32 {
        u32::from(self.to_bits())
    }
}

/// The bit patterns of `values`.
pub fn bits<T: Bits>(values: &[T]) -> Vec<u32> {
    values.iter().map(|&x| x.bits()).collect()
}
/// `len` random multiples of `step` in `[-limit, limit]`: exactly
/// representable in bf16, f16 and e4m3 for small limits, so GEMM results can
/// be checked bit for bit.
pub fn random_grid(len: usize, step: f32, limit: f32) -> Vec<f32> {
    let mut rng = rand::rng();
    let steps = (limit / step) as i32;
    (0..len)
        .map(|_| rng.random_range(-steps..=steps) as f32 * step)
        .collect()
}

/// How many times repeat-tests repeat: 100, or `FA3_TEST_REPEATS` (the
/// bundle's sanitizer mode lowers it; racecheck is ~100x slower).
pub fn repeats() -> usize {
    std::env::var("FA3_TEST_REPEATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

/// `len` standard normal values (Box-Muller), fresh for every call: the
/// inputs FA3's tests use.
pub fn random_normal(len: usize) -> Vec<f32> {
    normal(&mut rand::rng(), len)
}

/// `len` standard normal values (Box-Muller, both values of each pair) from
/// `rng`: seeded generators give reproducible inputs (the bench's).
pub fn normal(rng: &mut impl Rng, len: usize) -> Vec<f32> {
    let mut values = Vec::with_capacity(len + 1);
    while values.len() < len {
        // 1 - u is in (0, 1]: its logarithm is finite.
        let radius = (-2.0 * (1.0 - rng.random::<f32>()).ln()).sqrt();
        let (sin, cos) = (std::f32::consts::TAU * rng.random::<f32>()).sin_cos();
        values.extend([radius * cos, radius * sin]);
    }
    values.truncate(len);
    values
}

/// True when the bundle's sanitizer mode asks for the reduced test matrix
/// (`FA3_TEST_REDUCED`): compute-sanitizer makes every launch far slower.
pub fn reduced() -> bool {
    std::env::var_os("FA3_TEST_REDUCED").is_some()
}

/// The CPU backend's forward, then its backward from that forward's `out`
/// and `lse`: what a training step computes.
pub fn cpu_forward_backward<'a, T: fa3::AttentionElement>(
    qkv: fa3::Qkv<'a, T, 4>,
    dout: fa3::Tensor<'a, T, 4>,
    options: &fa3::AttentionOptions,
) -> (fa3::ForwardOutput<T, 4, 3>, fa3::Gradients<T, 4>) {
    let device = fa3::Device::cpu();
    let fwd = device.forward(qkv, options).unwrap();
    let grads = device
        .backward(
            fa3::BackwardInputs {
                q: qkv.q,
                k: qkv.k,
                v: qkv.v,
                out: fwd.out.view(),
                lse: fwd.lse.view(),
                dout,
            },
            options,
        )
        .unwrap();
    (fwd, grads)
}
