//! FP8 (e4m3) quantization of attention inputs, the FA3 paper's section
//! 3.3: one dequantization factor per tensor, per (batch, head) or per
//! block of rows ("block quantization"), optionally after incoherent
//! processing.
//!
//! A value `x` is stored as `e4m3(x / scale)` with `scale = amax / 448`
//! over its group (1 for a group of zeros): `data · scale` is `x` within
//! e4m3's rounding (3 mantissa bits), and the group's largest magnitude
//! lands on e4m3's largest finite value. The scales are what the FP8
//! forward calls descale factors. Nothing checks the values: an infinite
//! input makes its group's scale infinite, and a NaN stays NaN in the
//! data without entering the maximum.
//!
//! Incoherent processing multiplies every row of `head_dim` values by
//! `M = diag(s) · H / √d`, `H` the d x d Walsh–Hadamard matrix (Sylvester
//! order, `H[i][j] = (−1)^popcount(i & j)`) and `s` the signs drawn from the
//! caller's seed ([`hadamard_sign`]). `M` is orthogonal, so Q and K rotated
//! with the same seed give the same `Q·Kᵀ` in exact arithmetic, while a
//! row's outliers are spread over all its columns: a smaller amax, a finer
//! scale for everything else. V is not rotated (its rotation would have to
//! be undone after P·V). The CPU backend rotates and finds the scales in
//! f64 and rounds each value once.

use super::args::{Fp8Quantize, Fp8QuantizedInto};
use super::cpu::{read, write};
use super::device::{Backend, Device};
use super::element::AttentionElement;
use super::gpu_fp8;
use super::tensor::Tensor;
use super::validate::{self, CheckedQuantize};
use crate::error::Result;

/// e4m3's largest finite magnitude.
pub const E4M3_MAX: f32 = 448.0;

/// The blocks of block-quantized FP8 inputs that the GPU forward takes for
/// `head_dim`: `(q_rows, k_rows)` of [`Fp8BlockDescale`](crate::Fp8BlockDescale)
/// and the `rows` of [`Fp8Scaling::PerBlock`](crate::Fp8Scaling::PerBlock)
/// for q and for k, v, which are the kernel's tiles (one factor per tile
/// of queries, one per block of keys). `None` where no GPU FP8 kernel
/// exists; the CPU backend takes any blocks.
///
/// ```
/// assert_eq!(fa3::fp8_block_rows(128), Some((128, 128)));
/// assert_eq!(fa3::fp8_block_rows(64), Some((128, 128)));
/// assert_eq!(fa3::fp8_block_rows(256), Some((128, 128)));
/// assert_eq!(fa3::fp8_block_rows(96), None);
/// ```
pub fn fp8_block_rows(head_dim: usize) -> Option<(usize, usize)> {
    let tiles = fa3_kernels::attn::tiles::fp8_tiling(u32::try_from(head_dim).ok()?)?;
    Some((
        fa3_kernels::attn::tiles::BLOCK_M as usize,
        tiles.block_n as usize,
    ))
}

/// The sign of column `column` in incoherent processing with `seed`: +1
/// or −1, bit 63 of SplitMix64's output for counter `column + 1`: a
/// stateless hash, so each column (each GPU thread) computes its own (the
/// kernel calls this same function).
///
/// ```
/// use fa3::hadamard_sign;
/// let signs: Vec<f32> = (0..8).map(|j| hadamard_sign(7, j)).collect();
/// assert!(signs.iter().all(|s| s.abs() == 1.0));
/// assert_eq!(signs, (0..8).map(|j| hadamard_sign(7, j)).collect::<Vec<_>>());
/// ```
pub fn hadamard_sign(seed: u64, column: u32) -> f32 {
    fa3_kernels::fp8::hadamard_sign(seed, column)
}

/// `row · M` in place: incoherent processing of one row of `head_dim`
/// values with `seed`, `M = diag(s) · H / √d` (module docs), by the fast
/// Walsh–Hadamard transform; `row.len()` a power of two (what
/// [`Device::quantize_fp8_into`] applies before quantizing, in the same
/// f64 arithmetic).
///
/// ```
/// use fa3::hadamard_rotate;
/// let (mut q, mut k) = ([1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 0.0, 2.0]);
/// let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
/// let before = dot(&q, &k);
/// hadamard_rotate(&mut q, 11);
/// hadamard_rotate(&mut k, 11);
/// assert!((dot(&q, &k) - before).abs() < 1e-12);
/// ```
pub fn hadamard_rotate(row: &mut [f64], seed: u64) {
    for (j, x) in row.iter_mut().enumerate() {
        *x *= f64::from(hadamard_sign(seed, j as u32));
    }
    let mut half = 1;
    while half < row.len() {
        for pair in row.chunks_exact_mut(2 * half) {
            let (a, b) = pair.split_at_mut(half);
            for (u, w) in a.iter_mut().zip(b) {
                (*u, *w) = (*u + *w, *u - *w);
            }
        }
        half *= 2;
    }
    let norm = (row.len() as f64).sqrt().recip();
    row.iter_mut().for_each(|x| *x *= norm);
}

impl Device {
    /// FP8 quantization of `x` `(batch, seqlen, heads, head_dim)` in bf16
    /// or f16 into e4m3 `data` and f32 `scales` (`data · scale ≈ x`, one
    /// scale per [`Fp8Scaling`](crate::Fp8Scaling) group), with incoherent processing when
    /// `options` has a seed (head_dim must then be a power of two). On a
    /// GPU: head_dim a power of two from 8 to 256, `x` and `data` by the
    /// alignment rules of [`Tensor`] (16-byte aligned start and strides),
    /// the rotation in f32 (the CPU's is in f64, so an element may round to
    /// the neighbouring e4m3 value).
    ///
    /// ```
    /// use fa3::{bf16, Device, F8E4M3, Fp8QuantizedInto, Fp8Quantize, Fp8Scaling, Tensor, TensorMut};
    /// # fn main() -> fa3::Result<()> {
    /// let shape = [1, 4, 1, 8];
    /// let x: Vec<bf16> = (0..32).map(|i| bf16::from_f32(i as f32 - 16.0)).collect();
    /// let (mut data, mut scales) = (vec![F8E4M3::from_f32(0.0); 32], vec![0.0f32; 2]);
    /// let scaling = Fp8Scaling::PerBlock { rows: 2 };
    /// Device::cpu().quantize_fp8_into(
    ///     Tensor::host(&x, shape),
    ///     Fp8QuantizedInto {
    ///         data: TensorMut::host(&mut data, shape),
    ///         scales: TensorMut::host(&mut scales, scaling.scales_shape(shape)),
    ///     },
    ///     &Fp8Quantize::new(scaling),
    /// )?;
    /// // Rows 0-1 hold -16..-1 (amax 16), rows 2-3 hold 0..15 (amax 15).
    /// assert_eq!(scales, [16.0 / 448.0, 15.0 / 448.0]);
    /// assert_eq!(data[0].to_f32(), -448.0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn quantize_fp8_into<T: AttentionElement>(
        &self,
        x: Tensor<'_, T, 4>,
        mut into: Fp8QuantizedInto<'_>,
        options: &Fp8Quantize,
    ) -> Result<()> {
        let checked = validate::quantize(self.target(), &x, &into, options)?;
        match self.backend {
            Backend::Cpu(_) => quantize_on_cpu(&x, &mut into, options, &checked),
            Backend::Gpu(ref gpu) => gpu_fp8::quantize(gpu, &x, &mut into, options, &checked),
        }
    }
}

/// The CPU backend of [`Device::quantize_fp8_into`], on checked views.
fn quantize_on_cpu<T: AttentionElement>(
    x: &Tensor<'_, T, 4>,
    into: &mut Fp8QuantizedInto<'_>,
    options: &Fp8Quantize,
    checked: &CheckedQuantize,
) -> Result<()> {
    let [batch, seqlen, heads, dim] = checked.x.shape;
    let mut values: Vec<f64> = read("x", x, &checked.x)?;
    if let Some(seed) = options.hadamard_seed {
        values
            .chunks_exact_mut(dim.max(1))
            .for_each(|row| hadamard_rotate(row, seed));
    }
    let scaling = options.scaling;
    // Row-major (batch, seqlen, heads): the group of each row of `values`.
    let groups: Vec<usize> = (0..batch)
        .flat_map(|b| (0..seqlen).flat_map(move |s| (0..heads).map(move |h| (b, s, h))))
        .map(|row| scaling.group(row, heads, seqlen))
        .collect();
    let mut amax = vec![0.0f64; checked.scales.shape.iter().product()];
    for (row, &g) in values.chunks_exact(dim.max(1)).zip(&groups) {
        amax[g] = row.iter().fold(amax[g], |m, v| m.max(v.abs()));
    }
    let scales: Vec<f64> = amax
        .iter()
        .map(|&a| {
            if a == 0.0 {
                1.0
            } else {
                f64::from((a / f64::from(E4M3_MAX)) as f32)
            }
        })
        .collect();
    for (row, &g) in values.chunks_exact_mut(dim.max(1)).zip(&groups) {
        row.iter_mut().for_each(|v| *v /= scales[g]);
    }
    write("data", &mut into.data, &checked.data, &values)?;
    write("scales", &mut into.scales, &checked.scales, &scales)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attention::{Fp8Scaling, TensorMut};
    use crate::error::Error;
    use float8::F8E4M3;
    use half::bf16;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn the_rotation_is_orthogonal_and_keeps_scores() {
        let mut rng = StdRng::seed_from_u64(1);
        for dim in [1, 2, 8, 64, 128, 256] {
            let q: Vec<f64> = (0..dim).map(|_| rng.random_range(-3.0..3.0)).collect();
            let k: Vec<f64> = (0..dim).map(|_| rng.random_range(-3.0..3.0)).collect();
            let (mut qr, mut kr) = (q.clone(), k.clone());
            hadamard_rotate(&mut qr, 42);
            hadamard_rotate(&mut kr, 42);
            let tol = 1e-12 * dim as f64;
            assert!((dot(&qr, &kr) - dot(&q, &k)).abs() < tol, "dim {dim}");
            assert!((dot(&qr, &qr) - dot(&q, &q)).abs() < tol, "dim {dim}");
        }
        // A single outlier is spread evenly over the row.
        let mut row = vec![0.0; 128];
        row[5] = 100.0;
        hadamard_rotate(&mut row, 42);
        assert!(
            row.iter()
                .all(|x| (x.abs() - 100.0 / 128f64.sqrt()).abs() < 1e-9)
        );
    }

    #[test]
    fn signs_come_from_the_seed_alone() {
        let signs = |seed| (0..256).map(|j| hadamard_sign(seed, j)).collect::<Vec<_>>();
        assert_eq!(signs(3), signs(3));
        assert_ne!(signs(3), signs(4));
        let negative = signs(3).iter().filter(|&&s| s < 0.0).count();
        assert!((96..160).contains(&negative), "{negative} of 256 negative");
    }

    /// The paper's inputs: N(0, 1)-like values with rare large outliers.
    fn inputs(rng: &mut StdRng, len: usize) -> Vec<bf16> {
        (0..len)
            .map(|_| {
                let x: f32 = rng.random_range(-2.0..2.0);
                let outlier = if rng.random::<f64>() < 0.001 {
                    30.0
                } else {
                    0.0
                };
                bf16::from_f32(x + outlier)
            })
            .collect()
    }

    fn quantize(
        x: &[bf16],
        shape: [usize; 4],
        options: &Fp8Quantize,
    ) -> Result<(Vec<F8E4M3>, Vec<f32>)> {
        let mut data = vec![F8E4M3::from_f32(f32::NAN); x.len()];
        let mut scales = vec![f32::NAN; options.scaling.scales_shape(shape).iter().product()];
        Device::cpu().quantize_fp8_into(
            Tensor::host(x, shape),
            Fp8QuantizedInto {
                data: TensorMut::host(&mut data, shape),
                scales: TensorMut::host(&mut scales, options.scaling.scales_shape(shape)),
            },
            options,
        )?;
        Ok((data, scales))
    }

    #[test]
    fn every_group_reaches_448_and_round_trips_within_e4m3_rounding() {
        let mut rng = StdRng::seed_from_u64(2);
        let shape = [2, 300, 3, 64];
        let x = inputs(&mut rng, shape.iter().product());
        for scaling in [
            Fp8Scaling::PerTensor,
            Fp8Scaling::PerHead,
            Fp8Scaling::PerBlock { rows: 128 },
            Fp8Scaling::PerBlock { rows: 1 },
        ] {
            for seed in [None, Some(9)] {
                let options = Fp8Quantize {
                    scaling,
                    hadamard_seed: seed,
                };
                let (data, scales) = quantize(&x, shape, &options).unwrap();
                let mut exact: Vec<f64> = x.iter().map(|v| f64::from(v.to_f32())).collect();
                if let Some(seed) = seed {
                    exact
                        .chunks_exact_mut(64)
                        .for_each(|r| hadamard_rotate(r, seed));
                }
                let mut group_max = vec![0.0f32; scales.len()];
                for (i, (d, e)) in data.iter().zip(&exact).enumerate() {
                    let row = i / 64;
                    let (b, s, h) = (row / (300 * 3), (row / 3) % 300, row % 3);
                    let g = scaling.group((b, s, h), 3, 300);
                    let scale = f64::from(scales[g]);
                    group_max[g] = group_max[g].max(d.to_f32().abs());
                    // 3 mantissa bits: half an ulp is 2^-4 of the value for
                    // normals, 2^-10 of the scale below 2^-6 (subnormals).
                    let error = (f64::from(d.to_f32()) * scale - e).abs();
                    let bound = (e.abs() / 16.0).max(scale / 1024.0) * (1.0 + 1e-6);
                    assert!(
                        error <= bound,
                        "{scaling:?} {seed:?} [{i}]: {error} > {bound}"
                    );
                }
                assert!(group_max.iter().all(|&m| m == E4M3_MAX), "{scaling:?}");
            }
        }
    }

    #[test]
    fn a_nan_stays_nan_and_stays_out_of_the_maximum() {
        let shape = [1, 2, 1, 8];
        let mut x = vec![bf16::from_f32(0.5); 16];
        x[3] = bf16::NAN;
        x[9] = bf16::from_f32(-2.0);
        let (data, scales) = quantize(&x, shape, &Fp8Quantize::new(Fp8Scaling::PerTensor)).unwrap();
        assert_eq!(scales, [2.0 / E4M3_MAX]);
        assert!(data[3].to_f32().is_nan());
        assert_eq!(data[9].to_f32(), -E4M3_MAX);
    }

    #[test]
    fn zeros_get_scale_one() {
        let shape = [1, 3, 2, 8];
        let x = vec![bf16::ZERO; 48];
        let options = Fp8Quantize::new(Fp8Scaling::PerHead).hadamard(1);
        let (data, scales) = quantize(&x, shape, &options).unwrap();
        assert_eq!(scales, [1.0, 1.0]);
        assert!(data.iter().all(|d| d.to_f32() == 0.0));
        // No rows: the per-head scales still exist, and are 1.
        let (_, scales) =
            quantize(&[], [2, 0, 2, 8], &Fp8Quantize::new(Fp8Scaling::PerHead)).unwrap();
        assert_eq!(scales, [1.0; 4]);
    }

    #[test]
    fn bad_arguments_are_typed_errors_and_write_nothing() {
        let shape = [1, 4, 2, 96];
        let x = vec![bf16::ONE; 4 * 2 * 96];
        let refused = |options: Fp8Quantize, scales_shape: [usize; 3], data_shape: [usize; 4]| {
            let mut data = vec![F8E4M3::from_f32(7.0); x.len()];
            let mut scales = vec![7.0f32; scales_shape.iter().product()];
            let err = Device::cpu()
                .quantize_fp8_into(
                    Tensor::host(&x, shape),
                    Fp8QuantizedInto {
                        data: TensorMut::host(&mut data, data_shape),
                        scales: TensorMut::host(&mut scales, scales_shape),
                    },
                    &options,
                )
                .unwrap_err();
            assert!(data.iter().all(|d| d.to_f32() == 7.0) && scales.iter().all(|&s| s == 7.0));
            err
        };
        let per_head = Fp8Quantize::new(Fp8Scaling::PerHead);
        let err = refused(per_head.hadamard(1), [1, 2, 1], shape);
        assert!(
            matches!(&err, Error::InvalidArgument { argument: "options.hadamard_seed", problem } if problem.contains("96")),
            "{err}"
        );
        let err = refused(
            Fp8Quantize::new(Fp8Scaling::PerBlock { rows: 0 }),
            [1, 2, 4],
            shape,
        );
        assert!(
            matches!(
                err,
                Error::InvalidArgument {
                    argument: "options.scaling",
                    ..
                }
            ),
            "{err}"
        );
        let err = refused(per_head, [1, 2, 2], shape);
        assert!(
            matches!(
                err,
                Error::ShapeMismatch {
                    tensor: "scales",
                    axis: 2,
                    ..
                }
            ),
            "{err}"
        );
        let err = refused(per_head, [1, 2, 1], [1, 4, 2, 48]);
        assert!(
            matches!(
                err,
                Error::ShapeMismatch {
                    tensor: "data",
                    axis: 3,
                    ..
                }
            ),
            "{err}"
        );
    }
}
