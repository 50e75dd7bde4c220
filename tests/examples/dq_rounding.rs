//! How often FA3's accuracy rule (`fa3_tests::accuracy`) fails dq of the
//! tiny backward case that failed it once on the GPU, with the split-keys
//! kernel's arithmetic and with FA3's, on fresh inputs (kernels-gpu/PERF.md,
//! backward v3, accuracy note).
//!
//! The case: batch 2, 799 queries, 3 keys, 6 query heads on 1 kv head,
//! bottom-right causal, head_dim 64. Only the last 3 query rows see keys.
//! The references are the library's (`reference::backward` in f64, the
//! naive same-precision `reference::naive_backward`); only the kernel is
//! emulated here, all arithmetic f32, `r()` rounding to the element type:
//! - forward as the GPU gives it: O = r(softmax(S)·V), LSE in f32;
//! - D = rowsum(dO·O); P = exp2(S·scale·log2e − LSE·log2e);
//! - `16-bit P`: dS = r(r(P)·(dP − D)) (dSᵀ from dV's 16-bit fragments,
//!   the split-keys kernel at hdim 128; at hdim 64 until f41d7bf); `rest`: dS = r((r(P) + b(P − r(P)))·(dP
//!   − D)) with b() rounding to bf16 (v5, not landed); `fa3`: dS =
//!   r(P·(dP − D)) (FA3's mainloop, from the f32 P); `fa3 + FFMA`: the
//!   same with P's exponent S·(scale·log2e) − LSE·log2e in one fused
//!   multiply-add, as FA3's FFMA and our kernels since 24d4a61 do;
//! - dq = r(scale · dS·K).
//!
//! `cargo run --release -p fa3-tests --example dq_rounding -- [f16|bf16] [trials]`

use fa3::reference::{self, Precision};
use fa3::{AttentionElement, AttentionOptions, Qkv, Tensor, bf16, f16};
use fa3_tests::{accuracy, random_normal};

const BATCH: usize = 2;
const SEQLEN_Q: usize = 799;
const SEQLEN_K: usize = 3;
const HEADS: usize = 6;
const DIM: usize = 64;
/// The arithmetics compared (module doc).
const ARITHMETICS: usize = 4;

/// Whether each emulated arithmetic passes the rule on one fresh draw, and
/// its error / bound.
fn trial<T: AttentionElement + Into<f64>>() -> [(bool, f64); ARITHMETICS] {
    let r = |x: f32| T::from_f32(x).to_f32();
    let draw = |len: usize| -> Vec<T> { random_normal(len).into_iter().map(T::from_f32).collect() };
    let (q_shape, k_shape) = ([BATCH, SEQLEN_Q, HEADS, DIM], [BATCH, SEQLEN_K, 1, DIM]);
    let (q, k, v, dout) = (
        draw(q_shape.iter().product()),
        draw(k_shape.iter().product()),
        draw(k_shape.iter().product()),
        draw(q_shape.iter().product()),
    );
    let options = AttentionOptions::new().causal(true);
    let qkv = Qkv {
        q: Tensor::host(&q, q_shape),
        k: Tensor::host(&k, k_shape),
        v: Tensor::host(&v, k_shape),
    };
    let dout_t = Tensor::host(&dout, q_shape);
    let exact = reference::backward(qkv, dout_t, &options, Precision::F64).unwrap();
    let naive = reference::naive_backward(qkv, dout_t, &options).unwrap();
    let scale = options.effective_softmax_scale(DIM);
    let f = |x: &[T]| x.iter().map(|v| v.to_f32()).collect::<Vec<f32>>();
    let (q, k, v, dout) = (f(&q), f(&k), f(&v), f(&dout));
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let mut dq: [Vec<T>; ARITHMETICS] = std::array::from_fn(|_| vec![T::from_f32(0.0); q.len()]);
    for b in 0..BATCH {
        let key = |j: usize| &k[(b * SEQLEN_K + j) * DIM..][..DIM];
        let value = |j: usize| &v[(b * SEQLEN_K + j) * DIM..][..DIM];
        for i in SEQLEN_Q - SEQLEN_K..SEQLEN_Q {
            let keys = i + SEQLEN_K + 1 - SEQLEN_Q;
            for h in 0..HEADS {
                let row = ((b * SEQLEN_Q + i) * HEADS + h) * DIM;
                let (qi, doi) = (&q[row..][..DIM], &dout[row..][..DIM]);
                let s: Vec<f32> = (0..keys).map(|j| dot(qi, key(j))).collect();
                let m = s.iter().fold(f32::MIN, |a, &x| a.max(x)) * scale;
                let lse = m + s.iter().map(|x| (x * scale - m).exp()).sum::<f32>().ln();
                let out: Vec<f32> = (0..DIM)
                    .map(|d| {
                        r((0..keys)
                            .map(|j| (s[j] * scale - lse).exp() * value(j)[d])
                            .sum())
                    })
                    .collect();
                let dsum = dot(doi, &out);
                let log2e = std::f32::consts::LOG2_E;
                for (arith, dq) in dq.iter_mut().enumerate() {
                    let ds: Vec<f32> = (0..keys)
                        .map(|j| {
                            let p = (s[j] * scale * log2e - lse * log2e).exp2();
                            let rest = bf16::from_f32(p - r(p)).to_f32();
                            let p = match arith {
                                0 => r(p),
                                1 => r(p) + rest,
                                2 => p,
                                _ => s[j].mul_add(scale * log2e, -(lse * log2e)).exp2(),
                            };
                            r(p * (dot(value(j), doi) - dsum))
                        })
                        .collect();
                    for d in 0..DIM {
                        let x = (0..keys).map(|j| ds[j] * key(j)[d]).sum::<f32>();
                        dq[row + d] = T::from_f32(x * scale);
                    }
                }
            }
        }
    }
    dq.map(
        |got| match accuracy::check("dq", &got, &exact.dq, &naive.dq, false) {
            Ok(report) => (true, report.error / report.bound()),
            Err(_) => {
                let worst = got
                    .iter()
                    .zip(&exact.dq)
                    .map(|(&g, &e)| (g.into() - e).abs())
                    .fold(0.0, f64::max);
                let naive_worst = naive
                    .dq
                    .iter()
                    .zip(&exact.dq)
                    .map(|(&n, &e)| (n.into() - e).abs())
                    .fold(0.0, f64::max);
                (
                    false,
                    worst / (2.0 * naive_worst + accuracy::f32_noise(&exact.dq)),
                )
            }
        },
    )
}

fn run<T: AttentionElement + Into<f64>>(name: &str, trials: usize) {
    let mut fails = [0usize; ARITHMETICS];
    let mut worst = [0.0f64; ARITHMETICS];
    for _ in 0..trials {
        for (i, (passed, ratio)) in trial::<T>().into_iter().enumerate() {
            fails[i] += usize::from(!passed);
            worst[i] = worst[i].max(ratio);
        }
    }
    for (i, arith) in [
        "16-bit P in dS",
        "rest (16-bit P + bf16 rest)",
        "fa3 (f32 P)",
        "fa3 + FFMA (f32 P, fused exponent)",
    ]
    .iter()
    .enumerate()
    {
        println!(
            "{name} {arith}: {} of {trials} draws fail ({:.2}%), worst {:.2}x the bound",
            fails[i],
            100.0 * fails[i] as f64 / trials as f64,
            worst[i]
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dtype = args.next().unwrap_or_else(|| "f16".into());
    let trials = args.next().and_then(|t| t.parse().ok()).unwrap_or(2000);
    match dtype.as_str() {
        "f16" => run::<f16>("f16", trials),
        "bf16" => run::<bf16>("bf16", trials),
        other => eprintln!("dq_rounding: element type f16 or bf16, not {other}"),
    }
}
