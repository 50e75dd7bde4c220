//! wgmma on the GPU: every compiled GEMM shape (SS and RS; bf16, f16, e4m3;
//! K-major and MN-major B) for several K, the attention GEMM chain with P in
//! registers, against CPU references.

use fa3::Gpu;
use fa3::diagnostics::{
    BMajor, GEMM_CASES, GemmCase, GemmElement, GemmInput, gemm_chain, gemm_chain_e4m3, wgmma_gemm,
};
use fa3::reference::fp8_mma_dot;
use fa3_tests::{random_f32, random_grid, random_normal};
use float8::F8E4M3;
use half::{bf16, f16};

/// D = A·Bᵀ in f64; `b` is n x k (K-major) or k x n (MN-major), row-major.
fn reference(a: &[f64], b: &[f64], n: usize, k: usize, major: BMajor) -> Vec<f64> {
    let mut d = vec![0.0; 64 * n];
    for i in 0..64 {
        for j in 0..n {
            d[i * n + j] = (0..k)
                .map(|x| {
                    let bv = match major {
                        BMajor::K => b[j * k + x],
                        BMajor::Mn => b[x * n + j],
                    };
                    a[i * k + x] * bv
                })
                .sum();
        }
    }
    d
}

/// Runs `case` at `k` on multiples of 0.5 in [-3.5, 3.5]: exact in every
/// input type, products and sums exact in f32, so the GPU must match exactly.
fn check_case<T: GemmInput>(gpu: &Gpu, case: GemmCase, k: usize, from: fn(f32) -> T) {
    let a = random_grid(64 * k, 0.5, 3.5);
    let b = random_grid(case.n * k, 0.5, 3.5);
    let to_dev = |v: &[f32]| v.iter().map(|&x| from(x)).collect::<Vec<T>>();
    let got = wgmma_gemm(gpu, case, k, &to_dev(&a), &to_dev(&b)).expect("gemm runs");
    let f64s = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
    let want = reference(&f64s(&a), &f64s(&b), case.n, k, case.b_major);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            f64::from(*g),
            *w,
            "{case:?} k = {k}: D[{}][{}]",
            i / case.n,
            i % case.n
        );
    }
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn every_wgmma_shape_matches_the_cpu_for_several_k() {
    let gpu = Gpu::new(0).expect("a Hopper GPU");
    for &case in GEMM_CASES {
        // K in whole 128-byte rows: 64 bf16/f16 or 128 e4m3 per row.
        let ks: &[usize] = match case.element {
            GemmElement::E4m3 => &[128, 256],
            GemmElement::Bf16 | GemmElement::F16 => &[64, 128, 256],
        };
        for &k in ks {
            match case.element {
                GemmElement::Bf16 => check_case(&gpu, case, k, bf16::from_f32),
                GemmElement::F16 => check_case(&gpu, case, k, f16::from_f32),
                GemmElement::E4m3 => check_case(&gpu, case, k, F8E4M3::from_f32),
            }
        }
    }
}

/// e4m3 values of `3·N(0,1)` times a power of two in 2^-4 ..= 2^4: products
/// over 16 binades, so that the adder's alignment and truncation show.
fn wide_e4m3(len: usize) -> Vec<F8E4M3> {
    random_normal(len)
        .into_iter()
        .zip(random_f32(len))
        .map(|(x, u)| F8E4M3::from_f32(3.0 * x * (8.0 * u - 4.0).round().exp2()))
        .collect()
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn attention_gemm_chain_keeps_p_in_registers() {
    let gpu = Gpu::new(0).expect("a Hopper GPU");
    // Multiples of 0.25 in [-1, 1]: S = Q·Kᵀ is exact in f32, so its row max
    // and row sum are too; P = bf16(S) is rounded as the kernel rounds.
    let (q, k, v) = (
        random_grid(64 * 64, 0.25, 1.0),
        random_grid(128 * 64, 0.25, 1.0),
        random_grid(128 * 64, 0.25, 1.0),
    );
    let bf = |x: &[f32]| x.iter().map(|&v| bf16::from_f32(v)).collect::<Vec<_>>();
    let got = gemm_chain(&gpu, &bf(&q), &bf(&k), &bf(&v)).expect("chain runs");
    for i in 0..64 {
        let s: Vec<f32> = (0..128)
            .map(|j| (0..64).map(|x| q[i * 64 + x] * k[j * 64 + x]).sum())
            .collect();
        assert_eq!(
            got.row_max[i],
            s.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            "row max {i}"
        );
        assert_eq!(got.row_sum[i], s.iter().sum::<f32>(), "row sum {i}");
        for c in 0..64 {
            let (mut want, mut scale) = (0.0f64, 0.0f64);
            for (j, sv) in s.iter().enumerate() {
                let p = f64::from(bf16::from_f32(*sv).to_f32());
                want += p * f64::from(v[j * 64 + c]);
                scale += (p * f64::from(v[j * 64 + c])).abs();
            }
            let err = (f64::from(got.o[i * 64 + c]) - want).abs();
            assert!(
                err <= 1e-6 * scale.max(1.0),
                "O[{i}][{c}] = {} vs {want}",
                got.o[i * 64 + c]
            );
        }
    }
}

/// The FP8 chain: P = e4m3(S) packed from the thread's own registers, with
/// V transposed in shared memory in the packing's key order, gives
/// e4m3(S)·V. A wrong key order, packing or transpose sums P against the
/// wrong values of V.
#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn fp8_gemm_chain_packs_p_in_registers() {
    let gpu = Gpu::new(0).expect("a Hopper GPU");
    // Multiples of 0.25 in [-1, 1] are e4m3 values, and S = Q·Kᵀ is exact
    // in f32; P = e4m3(S) is rounded as the kernel rounds (nearest even).
    let (q, k, v) = (
        random_grid(64 * 128, 0.25, 1.0),
        random_grid(128 * 128, 0.25, 1.0),
        random_grid(128 * 128, 0.25, 1.0),
    );
    let e4 = |x: &[f32]| x.iter().map(|&v| F8E4M3::from_f32(v)).collect::<Vec<_>>();
    let got = gemm_chain_e4m3(&gpu, &e4(&q), &e4(&k), &e4(&v)).expect("chain runs");
    for i in 0..64 {
        let p: Vec<f64> = (0..128)
            .map(|j| {
                let s: f32 = (0..128).map(|x| q[i * 128 + x] * k[j * 128 + x]).sum();
                f64::from(F8E4M3::from_f32(s).to_f32())
            })
            .collect();
        for c in 0..128 {
            let terms = p
                .iter()
                .enumerate()
                .map(|(j, pj)| pj * f64::from(v[j * 128 + c]));
            let (want, scale) = terms.fold((0.0, 0.0), |(w, s), t| (w + t, s + t.abs()));
            let got = f64::from(got[i * 128 + c]);
            assert!(
                (got - want).abs() <= 1e-5 * scale + 1e-6,
                "O[{i}][{c}]: {got} against {want}"
            );
        }
    }
}

/// One candidate model of the FP8 adder over k32 steps (the k-step itself
/// was varied from 8 to 64 on 2026-12-01; only 32 came close): alignment
/// width below the largest addend, truncation of each addend or of the
/// step's exact sum, and the fraction bits the accumulator keeps.
#[derive(Debug, Clone, Copy)]
struct Adder {
    width: i32,
    each: bool,
    keep: i32,
    /// Products aligned in groups of this many first (their own largest
    /// exponent), the group sums then aligned with the accumulator.
    group: usize,
    /// The accumulator joins the alignment (else added after, kept to `keep`).
    acc_aligned: bool,
    /// Addends rounded toward -inf (two's complement), else toward zero.
    floor: bool,
    /// The kept sum rounded toward -inf, else toward zero.
    floor_keep: bool,
}

impl Adder {
    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        let trunc_bits =
            |x: f64, bits: i32| f64::from_bits(x.to_bits() & !((1u64 << (52 - bits as u32)) - 1));
        let exponent = |x: f64| ((x.to_bits() >> 52) & 0x7ff) as i32 - 1023;
        let mut acc = 0.0f64;
        for (a, b) in a.chunks(32).zip(b.chunks(32)) {
            let align = |xs: &[f64]| -> f64 {
                let Some(top) = xs.iter().filter(|x| **x != 0.0).map(|&x| exponent(x)).max() else {
                    return 0.0;
                };
                let unit = 2f64.powi(top - self.width);
                if self.each {
                    xs.iter()
                        .map(|x| {
                            if self.floor {
                                (x / unit).floor() * unit
                            } else {
                                (x / unit).trunc() * unit
                            }
                        })
                        .sum::<f64>()
                } else {
                    (xs.iter().sum::<f64>() / unit).trunc() * unit
                }
            };
            let products: Vec<f64> = a
                .iter()
                .zip(b)
                .map(|(&x, &y)| f64::from(x) * f64::from(y))
                .collect();
            let mut parts: Vec<f64> = if self.group < 32 {
                products.chunks(self.group).map(align).collect()
            } else {
                products
            };
            let sum = if self.acc_aligned {
                parts.push(acc);
                align(&parts)
            } else {
                acc + align(&parts)
            };
            acc = if self.floor_keep && sum < 0.0 && trunc_bits(sum, self.keep) != sum {
                trunc_bits(sum, self.keep) - 2f64.powi(exponent(sum) - self.keep)
            } else {
                trunc_bits(sum, self.keep)
            };
        }
        acc as f32
    }
}

/// The FP8 forward's baseline takes Q·Kᵀ as the FP8 tensor cores compute it
/// (`fa3::reference::fp8_mma_dot`). No simple adder model reproduces the
/// hardware bit for bit: of the candidates below (alignment width,
/// truncation of each addend or of the sum, toward zero or -inf, grouped
/// products, fraction bits kept), the library's (k32 steps, each addend
/// truncated toward zero 13 bits below the largest, 13 bits kept) matched
/// the most entries on an H200, 2665-2742 of 4096 in four draws
/// (2026-12-01; k16 and k64 steps at most 1494, 14-bit alignment 628).
/// Asserts that it stays the best candidate and matches at least 60%.
#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn fp8_wgmma_accumulation_is_best_modelled_by_the_baseline() {
    let gpu = Gpu::new(0).expect("a Hopper GPU");
    let case = *GEMM_CASES
        .iter()
        .find(|c| c.element == GemmElement::E4m3 && c.n == 64)
        .expect("an e4m3 case");
    let k = 256;
    let (a8, b8) = (wide_e4m3(64 * k), wide_e4m3(case.n * k));
    let got = wgmma_gemm(&gpu, case, k, &a8, &b8).expect("gemm runs");
    let f32s = |v: &[F8E4M3]| v.iter().map(|x| x.to_f32()).collect::<Vec<_>>();
    let (a, b) = (f32s(&a8), f32s(&b8));
    // Every combination of the options: 4 widths x 2 x 3 kept widths x 2
    // groupings x 2 x 2 x 2.
    let candidates = (0..384).map(|i| Adder {
        width: 12 + (i % 4) as i32,
        each: i / 4 % 2 == 0,
        keep: [13, 14, 23][i / 8 % 3],
        group: [8, 32][i / 24 % 2],
        acc_aligned: i / 48 % 2 == 0,
        floor: i / 96 % 2 == 0,
        floor_keep: i / 192 % 2 == 0,
    });
    let mut scores: Vec<(usize, Adder)> = candidates
        .map(|m| {
            let hits = got
                .iter()
                .enumerate()
                .filter(|(i, g)| {
                    let (r, c) = (i / case.n, i % case.n);
                    m.dot(&a[r * k..][..k], &b[c * k..][..k]).to_bits() == g.to_bits()
                })
                .count();
            (hits, m)
        })
        .collect();
    scores.sort_by_key(|(h, _)| core::cmp::Reverse(*h));
    for (h, m) in &scores[..12] {
        println!("ADDER {h}/{} {m:?}", got.len());
    }
    let library = got
        .iter()
        .enumerate()
        .filter(|(i, g)| {
            let (r, c) = (i / case.n, i % case.n);
            fp8_mma_dot(&a[r * k..][..k], &b[c * k..][..k]).to_bits() == g.to_bits()
        })
        .count();
    println!("ADDER library model {library}/{}", got.len());
    assert!(
        library >= scores[0].0 && 10 * library >= 6 * got.len(),
        "the baseline's adder model matches {library} of {} entries, the best candidate {:?}",
        got.len(),
        scores[0]
    );
}
