//! The FA3 paper's FP8 accuracy experiment (Table 3), emulated on the CPU
//! before the FP8 kernels exist, to choose their quantization (issue 14):
//! inputs N(0, 1) plus, with probability 0.001, an extra N(0, 10²) term,
//! stored in bf16; the RMSE of O against the library's f64 reference on
//! those inputs (`reference::forward`).
//!
//! Q, K, V are quantized by the library (`Device::quantize_fp8_into` on
//! the CPU: one scale per group, amax / 448; incoherent processing of Q
//! and K with one seed, `M = diag(±1)·H/√d`, so (QM)(KM)ᵀ = QKᵀ). The
//! kernel's arithmetic is emulated in f32: S = q·k · s_q · s_k ·
//! softmax_scale, P = exp(S − max) in f32, its row sum from the f32 P, P
//! rounded to e4m3 (optionally times 2^8 first, which keeps probabilities
//! down to 2^-14 normal instead of 2^-6), O = Σ P·v · s_v / sum.
//!
//! Measured (2026-12-01, seqlen 2048, 2 heads, seeds as below): bf16
//! 7.6e-5 (P rounded; the inputs are exact); fp8 per tensor 1.54e-2, per
//! head 1.50e-2, per block 1.34e-2; per tensor + Hadamard 8.5e-3, per
//! block + Hadamard 8.7e-3 (the paper's method: at its 9.1e-3, but only
//! 1.8x below per tensor, where the paper reports 2.4e-2 -> 9.1e-3 and
//! issue 14 asks for 2.5x); P·2^8 8.5e-3. Rounding one tensor at a time
//! (per block + Hadamard): Q 4.8e-3, K 5.3e-3, V 4.7e-3, P 2.3e-3 (1.2e-3
//! with P·2^8): with Q and K rotated, each of Q, K, V is at e4m3's 3-bit
//! mantissa, and block scales add nothing once the outliers are spread
//! (every 128-row block holds some); rotating V too (O rotated back) left
//! V's part at 4.8e-3 (tried, not kept: V enters O linearly, and a
//! rotation keeps the rounding error's energy). Reaching the issue's
//! 7e-3 needs more than the paper's method.
//!
//! `cargo run --release -p fa3-tests --example fp8_accuracy -- [seqlen]
//! [heads] [rounded]`: `rounded` names what is rounded (default `qkvp`, P
//! being `p`; the others stay as stored, rotated where Q and K are), to
//! see what each contributes.

use fa3::reference::{self, Precision};
use fa3::{
    AttentionOptions, Device, F8E4M3, Fp8Quantize, Fp8QuantizedInto, Fp8Scaling, Qkv, Tensor,
    TensorMut, bf16, hadamard_rotate,
};
use fa3_tests::normal;
use rand::{Rng, SeedableRng, rngs::StdRng};

const DIM: usize = 128;
/// Rows per quantization block (the kernels' 128-row tiles).
const BLOCK: Fp8Scaling = Fp8Scaling::PerBlock { rows: 128 };
/// The signs of incoherent processing, one seed per run for Q and K.
const HADAMARD_SEED: u64 = 20261201;

/// One emulated arithmetic.
struct Variant {
    name: &'static str,
    /// `None`: bf16 inputs and P, no scales.
    fp8: Option<Fp8Scaling>,
    hadamard: bool,
    /// P is multiplied by 2^8 before it is rounded to e4m3.
    p_shift: bool,
}

const VARIANTS: [Variant; 7] = [
    Variant {
        name: "bf16",
        fp8: None,
        hadamard: false,
        p_shift: false,
    },
    Variant {
        name: "fp8 per tensor",
        fp8: Some(Fp8Scaling::PerTensor),
        hadamard: false,
        p_shift: false,
    },
    Variant {
        name: "fp8 per head (FA3's code)",
        fp8: Some(Fp8Scaling::PerHead),
        hadamard: false,
        p_shift: false,
    },
    Variant {
        name: "fp8 per block",
        fp8: Some(BLOCK),
        hadamard: false,
        p_shift: false,
    },
    Variant {
        name: "fp8 per tensor + Hadamard",
        fp8: Some(Fp8Scaling::PerTensor),
        hadamard: true,
        p_shift: false,
    },
    Variant {
        name: "fp8 per block + Hadamard (paper)",
        fp8: Some(BLOCK),
        hadamard: true,
        p_shift: false,
    },
    Variant {
        name: "fp8 per block + Hadamard + P·2^8",
        fp8: Some(BLOCK),
        hadamard: true,
        p_shift: true,
    },
];

/// A (seqlen, heads, DIM) tensor, batch 1: its bf16 values and the values
/// the emulated kernel reads (in f32).
#[derive(Clone)]
struct Heads {
    seqlen: usize,
    heads: usize,
    stored: Vec<bf16>,
    data: Vec<f32>,
}

impl Heads {
    fn shape(&self) -> [usize; 4] {
        [1, self.seqlen, self.heads, DIM]
    }
    fn row(&self, i: usize, h: usize) -> &[f32] {
        &self.data[(i * self.heads + h) * DIM..][..DIM]
    }

    /// The values as the kernel reads them: as stored, rotated (without
    /// rounding) when `hadamard`, or quantized by the library (rotated
    /// first when `hadamard`) and multiplied back by their scales.
    fn as_read(&self, fp8: Option<Fp8Scaling>, hadamard: bool) -> Heads {
        let seed = hadamard.then_some(HADAMARD_SEED);
        let Some(scaling) = fp8 else {
            let mut rows: Vec<f64> = self.data.iter().map(|&v| f64::from(v)).collect();
            if let Some(seed) = seed {
                rows.chunks_exact_mut(DIM)
                    .for_each(|r| hadamard_rotate(r, seed));
            }
            let data = rows.into_iter().map(|v| v as f32).collect();
            return Heads {
                data,
                ..self.clone()
            };
        };
        let shape = self.shape();
        let mut stored = vec![F8E4M3::from_f32(0.0); self.stored.len()];
        let mut scales = vec![0.0f32; scaling.scales_shape(shape).iter().product()];
        let options = Fp8Quantize {
            scaling,
            hadamard_seed: seed,
        };
        Device::cpu()
            .quantize_fp8_into(
                Tensor::host(&self.stored, shape),
                Fp8QuantizedInto {
                    data: TensorMut::host(&mut stored, shape),
                    scales: TensorMut::host(&mut scales, scaling.scales_shape(shape)),
                },
                &options,
            )
            .expect("quantize");
        let data = stored
            .iter()
            .enumerate()
            .map(|(e, v)| {
                let (i, h) = (e / DIM / self.heads, e / DIM % self.heads);
                v.to_f32() * scales[scaling.group((0, i, h), self.heads, self.seqlen)]
            })
            .collect();
        Heads {
            data,
            ..self.clone()
        }
    }
}

/// The paper's inputs: N(0, 1) plus, with probability 0.001, N(0, 10²),
/// stored in bf16.
fn draw(rng: &mut StdRng, seqlen: usize, heads: usize) -> Heads {
    let len = seqlen * heads * DIM;
    let outliers = normal(rng, len);
    let stored: Vec<bf16> = normal(rng, len)
        .into_iter()
        .zip(outliers)
        .map(|(x, o)| {
            let x = if rng.random::<f64>() < 0.001 {
                x + 10.0 * o
            } else {
                x
            };
            bf16::from_f32(x)
        })
        .collect();
    let data = stored.iter().map(|v| v.to_f32()).collect();
    Heads {
        seqlen,
        heads,
        stored,
        data,
    }
}

/// O of the emulated kernel, (seqlen, heads, DIM).
/// `round_p`: whether P is rounded (bf16 or e4m3 as the variant says).
fn attention(q: &Heads, k: &Heads, v: &Heads, variant: &Variant, round_p: bool) -> Vec<f32> {
    let scale = (DIM as f32).sqrt().recip();
    let p_scale = if variant.p_shift { 256.0 } else { 1.0 };
    let round_p = |p: f32| match variant.fp8 {
        _ if !round_p => p,
        None => bf16::from_f32(p).to_f32(),
        Some(_) => F8E4M3::from_f32(p * p_scale).to_f32() / p_scale,
    };
    let mut out = vec![0.0f32; q.data.len()];
    let mut s = vec![0.0f32; k.seqlen];
    for h in 0..q.heads {
        for i in 0..q.seqlen {
            let qi = q.row(i, h);
            for (j, sj) in s.iter_mut().enumerate() {
                *sj = qi.iter().zip(k.row(j, h)).map(|(a, b)| a * b).sum::<f32>() * scale;
            }
            let max = s.iter().fold(f32::MIN, |a, &x| a.max(x));
            let o = &mut out[(i * q.heads + h) * DIM..][..DIM];
            let mut sum = 0.0f32;
            for (j, &sj) in s.iter().enumerate() {
                let p = (sj - max).exp();
                sum += p;
                let p = round_p(p);
                for (od, vd) in o.iter_mut().zip(v.row(j, h)) {
                    *od += p * vd;
                }
            }
            o.iter_mut().for_each(|x| *x /= sum);
        }
    }
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seqlen: usize = args.next().map_or(2048, |a| a.parse().expect("seqlen"));
    let heads: usize = args.next().map_or(2, |a| a.parse().expect("heads"));
    let rounded = args.next().unwrap_or_else(|| "qkvp".into());
    let mut rng = StdRng::seed_from_u64(20261201);
    let (q, k, v) = (
        draw(&mut rng, seqlen, heads),
        draw(&mut rng, seqlen, heads),
        draw(&mut rng, seqlen, heads),
    );
    let shape = [1, seqlen, heads, DIM];
    let wide = |x: &Heads| x.data.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
    let (q64, k64, v64) = (wide(&q), wide(&k), wide(&v));
    let exact = reference::forward(
        Qkv {
            q: Tensor::host(&q64, shape),
            k: Tensor::host(&k64, shape),
            v: Tensor::host(&v64, shape),
        },
        &AttentionOptions::new(),
        Precision::F64,
    )
    .expect("reference");
    println!(
        "batch 1, seqlen {seqlen}, heads {heads}, head_dim {DIM}, not causal, {rounded} rounded; RMSE of O"
    );
    for variant in &VARIANTS {
        // Q and K rotated alike; V never (it would have to be rotated back).
        let input = |x: &Heads, name: char| {
            let rotated = variant.hadamard && name != 'v';
            x.as_read(variant.fp8.filter(|_| rounded.contains(name)), rotated)
        };
        let out = attention(
            &input(&q, 'q'),
            &input(&k, 'k'),
            &input(&v, 'v'),
            variant,
            rounded.contains('p'),
        );
        let mse = out
            .iter()
            .zip(&exact.out)
            .map(|(&o, &e)| (o as f64 - e).powi(2))
            .sum::<f64>()
            / out.len() as f64;
        println!("{:<34} {:.2e}", variant.name, mse.sqrt());
    }
}
