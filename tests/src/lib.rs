//! Shared helpers of the integration tests: random inputs and poison, FA3's
//! accuracy rule, an independent materialized attention, padded layouts.

pub mod accuracy;
pub mod cases;
pub mod fp8_accuracy;
pub mod materialized;
pub mod matrix;
pub mod strided;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cell::RefCell;
use std::sync::OnceLock;

/// What outputs are filled with before a launch, so an element the kernel
/// did not write cannot pass a check.
pub const POISON_F32: f32 = f32::NAN;

/// The environment variable that fixes the seed of a run's fresh inputs.
pub const SEED_VARIABLE: &str = "FA3_TEST_SEED";

/// The seed of this process's fresh inputs: [`SEED_VARIABLE`] if set, else
/// drawn at random once, so every run still draws new inputs.
pub fn run_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| match std::env::var(SEED_VARIABLE) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_VARIABLE} must be a u64, not {text:?}")),
        Err(_) => rand::rng().random(),
    })
}

thread_local! {
    static FRESH: RefCell<Option<StdRng>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's generator of fresh inputs. It starts from
/// [`run_seed`] mixed with the thread's name, which under libtest is the
/// test's name, and says so once on the test's output: a failing test's
/// inputs come back with `FA3_TEST_SEED=<seed> <binary> <test> --exact`
/// (with the same `FA3_TEST_REDUCED`, which changes what is drawn).
pub fn with_fresh_rng<T>(f: impl FnOnce(&mut StdRng) -> T) -> T {
    FRESH.with(|cell| {
        let mut cell = cell.borrow_mut();
        let rng = cell.get_or_insert_with(|| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("unnamed");
            let seed = run_seed();
            println!("fresh inputs of {name}: {SEED_VARIABLE}={seed} draws them again");
            StdRng::seed_from_u64(seed ^ fnv1a(name.as_bytes()))
        });
        f(rng)
    })
}

/// A generator of its own for a test that holds one (seeded from this
/// thread's fresh inputs, so as reproducible as they are).
pub fn fresh_rng() -> StdRng {
    StdRng::seed_from_u64(with_fresh_rng(|rng| rng.random()))
}

/// FNV-1a, 64-bit: a fixed hash of a test's name (std's hasher is seeded
/// per process).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `len` uniform values in `[-1, 1)`, fresh for every call.
pub fn random_f32(len: usize) -> Vec<f32> {
    with_fresh_rng(|rng| (0..len).map(|_| rng.random_range(-1.0..1.0)).collect())
}

/// A fresh random scalar in `[lo, hi)`.
pub fn random_scalar(lo: f32, hi: f32) -> f32 {
    with_fresh_rng(|rng| rng.random_range(lo..hi))
}

/// `len` uniform values in `[-1, 1)` from a seeded generator (reproducible).
pub fn seeded_f32(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
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
    let steps = (limit / step) as i32;
    with_fresh_rng(|rng| {
        (0..len)
            .map(|_| rng.random_range(-steps..=steps) as f32 * step)
            .collect()
    })
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
    with_fresh_rng(|rng| normal(rng, len))
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

#[cfg(test)]
mod fresh_inputs {
    use super::random_normal;

    fn draw_in(name: &str) -> Vec<f32> {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(|| random_normal(16))
            .unwrap()
            .join()
            .unwrap()
    }

    /// One seed and one test name give the same inputs (what makes a
    /// failure reproducible); another name gives others.
    #[test]
    fn a_test_name_and_the_seed_fix_the_inputs() {
        assert_eq!(draw_in("case a"), draw_in("case a"));
        assert_ne!(draw_in("case a"), draw_in("case b"));
    }
}
