//! The FA3 paper's FP8 accuracy experiment (Table 3), emulated on the CPU
//! before the FP8 kernels exist, to choose their quantization (issue 14):
//! inputs N(0, 1) plus, with probability 0.001, an extra N(0, 10²) term;
//! the RMSE of O against the library's f64 reference on the unquantized
//! inputs (`reference::forward`).
//!
//! Only the kernel's arithmetic is emulated, in f32: Q, K, V quantized to
//! e4m3 with one scale per group (amax / 448), S = q·k · s_q · s_k ·
//! softmax_scale, P = exp(S − max) in f32, its row sum from the f32 P, P
//! rounded to e4m3 (optionally times 2^8 first, which keeps probabilities
//! down to 2^-14 normal instead of 2^-6), O = Σ P·v · s_v / sum. Incoherent
//! processing multiplies Q and K along head_dim by M = diag(±1)·H/√d (signs
//! from a seed; (QM)(KM)ᵀ = QKᵀ), applied after the outliers are drawn and
//! before quantization, as the kernel's quantizer would.
//!
//! Measured (2026-12-01, seqlen 2048, 2 heads, seed as below): bf16
//! 9.9e-4; fp8 per tensor 1.53e-2, per head 1.51e-2, per block 1.35e-2;
//! per tensor + Hadamard 8.4e-3, per block + Hadamard 8.7e-3 (the
//! paper's method: at its 9.1e-3, but only 1.8x below per tensor, where
//! the paper reports 2.4e-2 -> 9.1e-3 and issue 14 asks for 2.5x); P·2^8
//! 8.5e-3. Rounding one tensor at a time (per block + Hadamard): Q 4.5e-3,
//! K 5.3e-3, V 4.7e-3, P 2.4e-3 (1.3e-3 with P·2^8): with Q and K
//! rotated, each of Q, K, V is at e4m3's 3-bit mantissa, and block scales
//! add nothing once the outliers are spread (every 128-row block holds
//! some); rotating V too (O rotated back) left V's part at 4.8e-3 (tried,
//! not kept: V enters O linearly, and a rotation keeps the rounding
//! error's energy). Reaching the 7e-3 needs more than the paper's
//! method.
//!
//! `cargo run --release -p fa3-tests --example fp8_accuracy -- [seqlen]
//! [heads] [rounded]`: `rounded` names what is rounded (default `qkvp`, P
//! being `p`; the others stay f32), to see what each contributes.

use fa3::reference::{self, Precision};
use fa3::{AttentionOptions, F8E4M3, Qkv, Tensor, bf16};
use fa3_tests::normal;
use rand::{Rng, SeedableRng, rngs::StdRng};

const DIM: usize = 128;
/// e4m3's largest finite value.
const E4M3_MAX: f32 = 448.0;
/// Rows per quantization block (the kernels' 128-row tiles).
const BLOCK_ROWS: usize = 128;

/// How one tensor's values share a scale.
#[derive(Clone, Copy, PartialEq)]
enum Scales {
    /// One for the whole tensor (the paper's baseline).
    Tensor,
    /// One per head (FA3's public code: per (batch, head)).
    Head,
    /// One per head and block of `BLOCK_ROWS` rows (the paper's).
    Block,
}

/// One emulated arithmetic.
struct Variant {
    name: &'static str,
    /// `None`: bf16 inputs and P, no scales.
    fp8: Option<Scales>,
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
        fp8: Some(Scales::Tensor),
        hadamard: false,
        p_shift: false,
    },
    Variant {
        name: "fp8 per head (FA3's code)",
        fp8: Some(Scales::Head),
        hadamard: false,
        p_shift: false,
    },
    Variant {
        name: "fp8 per block",
        fp8: Some(Scales::Block),
        hadamard: false,
        p_shift: false,
    },
    Variant {
        name: "fp8 per tensor + Hadamard",
        fp8: Some(Scales::Tensor),
        hadamard: true,
        p_shift: false,
    },
    Variant {
        name: "fp8 per block + Hadamard (paper)",
        fp8: Some(Scales::Block),
        hadamard: true,
        p_shift: false,
    },
    Variant {
        name: "fp8 per block + Hadamard + P·2^8",
        fp8: Some(Scales::Block),
        hadamard: true,
        p_shift: true,
    },
];

/// A (seqlen, heads, DIM) tensor of f32, batch 1.
#[derive(Clone)]
struct Heads {
    seqlen: usize,
    heads: usize,
    data: Vec<f32>,
}

impl Heads {
    fn row(&self, i: usize, h: usize) -> &[f32] {
        &self.data[(i * self.heads + h) * DIM..][..DIM]
    }
    fn row_mut(&mut self, i: usize, h: usize) -> &mut [f32] {
        &mut self.data[(i * self.heads + h) * DIM..][..DIM]
    }
}

/// The paper's inputs: N(0, 1) plus, with probability 0.001, N(0, 10²).
fn draw(rng: &mut StdRng, seqlen: usize, heads: usize) -> Heads {
    let len = seqlen * heads * DIM;
    let outliers = normal(rng, len);
    let data = normal(rng, len)
        .into_iter()
        .zip(outliers)
        .map(|(x, o)| {
            if rng.random::<f64>() < 0.001 {
                x + 10.0 * o
            } else {
                x
            }
        })
        .collect();
    Heads {
        seqlen,
        heads,
        data,
    }
}

/// `x · diag(signs) · H / √d` in place (fast Walsh–Hadamard transform).
fn rotate(x: &mut [f32], signs: &[f32]) {
    for (v, s) in x.iter_mut().zip(signs) {
        *v *= s;
    }
    let mut h = 1;
    while h < x.len() {
        for block in x.chunks_mut(2 * h) {
            let (a, b) = block.split_at_mut(h);
            for (u, w) in a.iter_mut().zip(b) {
                (*u, *w) = (*u + *w, *u - *w);
            }
        }
        h *= 2;
    }
    let norm = (x.len() as f32).sqrt().recip();
    x.iter_mut().for_each(|v| *v *= norm);
}

/// The tensor as the kernel reads it (each value its quantized value times
/// its scale), the per-row scale folded in.
fn quantize(x: &Heads, scales: Option<Scales>) -> Heads {
    let mut out = Heads {
        seqlen: x.seqlen,
        heads: x.heads,
        data: vec![0.0; x.data.len()],
    };
    let Some(scales) = scales else {
        for (o, v) in out.data.iter_mut().zip(&x.data) {
            *o = bf16::from_f32(*v).to_f32();
        }
        return out;
    };
    // Rows [r0, r1) of head h, or of every head, share a scale.
    let groups: Vec<(usize, usize, Option<usize>)> = match scales {
        Scales::Tensor => vec![(0, x.seqlen, None)],
        Scales::Head => (0..x.heads).map(|h| (0, x.seqlen, Some(h))).collect(),
        Scales::Block => (0..x.heads)
            .flat_map(|h| {
                (0..x.seqlen)
                    .step_by(BLOCK_ROWS)
                    .map(move |r| (r, (r + BLOCK_ROWS).min(x.seqlen), Some(h)))
            })
            .collect(),
    };
    for (r0, r1, head) in groups {
        let heads: Vec<usize> = head.map_or((0..x.heads).collect(), |h| vec![h]);
        let amax = (r0..r1)
            .flat_map(|i| heads.iter().flat_map(move |&h| x.row(i, h)))
            .fold(0.0f32, |a, v| a.max(v.abs()));
        let scale = if amax > 0.0 { amax / E4M3_MAX } else { 1.0 };
        for i in r0..r1 {
            for &h in &heads {
                let src: Vec<f32> = x.row(i, h).to_vec();
                for (o, v) in out.row_mut(i, h).iter_mut().zip(src) {
                    *o = F8E4M3::from_f32(v / scale).to_f32() * scale;
                }
            }
        }
    }
    out
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
    let wide = |x: &Heads| x.data.iter().map(|&v| v as f64).collect::<Vec<f64>>();
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
    // One sign vector per launch, shared by Q and K.
    let signs: Vec<f32> = (0..DIM)
        .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
        .collect();
    let rotated = |x: &Heads| {
        let mut r = x.clone();
        r.data.chunks_mut(DIM).for_each(|row| rotate(row, &signs));
        r
    };
    let (qr, kr) = (rotated(&q), rotated(&k));
    println!(
        "batch 1, seqlen {seqlen}, heads {heads}, head_dim {DIM}, not causal, {rounded} rounded; RMSE of O"
    );
    for variant in &VARIANTS {
        let (qs, ks) = if variant.hadamard {
            (&qr, &kr)
        } else {
            (&q, &k)
        };
        let input = |x: &Heads, name: char| {
            if rounded.contains(name) {
                quantize(x, variant.fp8)
            } else {
                x.clone()
            }
        };
        let out = attention(
            &input(qs, 'q'),
            &input(ks, 'k'),
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
