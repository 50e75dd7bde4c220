//! The FP8 forward: inputs dequantized per (batch, kv head), attention in
//! high precision, output rounded to bf16; fed by `quantize_fp8_into`.

use fa3::reference::{self, Precision};
use fa3::{
    AttentionOptions, Device, F8E4M3, ForwardInto, Fp8Descale, Fp8Quantize, Fp8QuantizedInto,
    Fp8Scaling, Qkv, Real, Tensor, TensorMut, bf16,
};
use fa3_tests::materialized::{self, Problem};
use fa3_tests::seeded_f32;

#[test]
fn fp8_forward_dequantizes_per_batch_and_kv_head() {
    let (batch, sq, sk, hkv, group, d, dv) = (2, 7, 9, 2, 2, 16, 8);
    let hq = hkv * group;
    let fp8 = |seed, len| -> Vec<F8E4M3> {
        seeded_f32(seed, len)
            .into_iter()
            .map(|x| F8E4M3::from_f32(3.0 * x))
            .collect()
    };
    let (q, k, v) = (
        fp8(1, batch * sq * hq * d),
        fp8(2, batch * sk * hkv * d),
        fp8(3, batch * sk * hkv * dv),
    );
    let factors = |seed| -> Vec<f32> {
        seeded_f32(seed, batch * hkv)
            .iter()
            .map(|x| 1.0 + 0.5 * x)
            .collect()
    };
    let (dq, dk, dvs) = (factors(4), factors(5), factors(6));
    let options = AttentionOptions::new().causal(true).softcap(4.0);

    // The materialized attention of the dequantized inputs.
    let dequantize = |x: &[F8E4M3],
                      heads: usize,
                      dim: usize,
                      seqlen: usize,
                      f: &[f32],
                      per_group: usize|
     -> Vec<f64> {
        x.iter()
            .enumerate()
            .map(|(i, x)| {
                let (b, h) = (i / (seqlen * heads * dim), i / dim % heads);
                x.to_f64() * f64::from(f[b * hkv + h / per_group])
            })
            .collect()
    };
    let problem = Problem {
        batch,
        seqlen_q: sq,
        seqlen_k: sk,
        heads_q: hq,
        heads_kv: hkv,
        head_dim: d,
        head_dim_v: dv,
        scale: f64::from(options.effective_softmax_scale(d)),
        softcap: 4.0,
        left: None,
        right: Some(0),
    };
    let (want_out, want_lse) = materialized::forward(
        &problem,
        &dequantize(&q, hq, d, sq, &dq, group),
        &dequantize(&k, hkv, d, sk, &dk, 1),
        &dequantize(&v, hkv, dv, sk, &dvs, 1),
    );

    let qkv = Qkv {
        q: Tensor::host(&q, [batch, sq, hq, d]),
        k: Tensor::host(&k, [batch, sk, hkv, d]),
        v: Tensor::host(&v, [batch, sk, hkv, dv]),
    };
    let descale = Fp8Descale {
        q: &dq,
        k: &dk,
        v: &dvs,
    };
    let reference = reference::forward_fp8(qkv, &descale, &options, Precision::F64).unwrap();
    for (got, want) in reference
        .out
        .iter()
        .zip(&want_out)
        .chain(reference.lse.iter().zip(&want_lse))
    {
        assert!(
            got == want || (got - want).abs() <= 1e-12 * (1.0 + want.abs()),
            "{got} vs {want}"
        );
    }

    let mut out = vec![bf16::NAN; want_out.len()];
    let mut lse = vec![f32::NAN; want_lse.len()];
    Device::cpu_with(Precision::F64)
        .forward_fp8_into(
            qkv,
            &descale,
            ForwardInto {
                out: TensorMut::host(&mut out, [batch, sq, hq, dv]),
                lse: TensorMut::host(&mut lse, [batch, hq, sq]),
            },
            &options,
        )
        .unwrap();
    for (got, want) in out.iter().zip(&reference.out) {
        assert_eq!(got.to_bits(), <bf16 as Real>::from_f64(*want).to_bits());
    }
    for (got, want) in lse.iter().zip(&reference.lse) {
        assert_eq!(got.to_bits(), (*want as f32).to_bits());
    }
}

/// `quantize_fp8_into` feeds the FP8 forward: per-head scales are its
/// descale factors (heads_q = heads_kv), and Q and K rotated with one seed
/// give the attention of the unrotated inputs, within e4m3's rounding.
/// With different seeds for Q and K the scores are wrong, which the same
/// measure sees.
#[test]
fn quantized_inputs_feed_the_fp8_forward() {
    let (batch, seqlen, heads, dim) = (2, 96, 2, 64);
    let shape = [batch, seqlen, heads, dim];
    let mut rng = fa3_tests::fresh_rng();
    let draw = |rng: &mut rand::rngs::StdRng| -> Vec<bf16> {
        fa3_tests::normal(rng, batch * seqlen * heads * dim)
            .into_iter()
            .map(bf16::from_f32)
            .collect()
    };
    let (q, k, v) = (draw(&mut rng), draw(&mut rng), draw(&mut rng));
    let wide = |x: &[bf16]| x.iter().map(|v| v.to_f64()).collect::<Vec<f64>>();
    let (q64, k64, v64) = (wide(&q), wide(&k), wide(&v));
    let options = AttentionOptions::new().causal(true);
    let exact = reference::forward(
        Qkv {
            q: Tensor::host(&q64, shape),
            k: Tensor::host(&k64, shape),
            v: Tensor::host(&v64, shape),
        },
        &options,
        Precision::F64,
    )
    .unwrap();
    let scaling = Fp8Scaling::PerHead;
    let quantize = |x: &[bf16], seed: Option<u64>| {
        let mut data = vec![F8E4M3::from_f32(f32::NAN); x.len()];
        let mut scales = vec![f32::NAN; batch * heads];
        Device::cpu()
            .quantize_fp8_into(
                Tensor::host(x, shape),
                Fp8QuantizedInto {
                    data: TensorMut::host(&mut data, shape),
                    scales: TensorMut::host(&mut scales, scaling.scales_shape(shape)),
                },
                &Fp8Quantize {
                    scaling,
                    hadamard_seed: seed,
                },
            )
            .unwrap();
        (data, scales)
    };
    let rmse_with = |q_seed, k_seed| {
        let ((q8, sq), (k8, sk), (v8, sv)) = (
            quantize(&q, q_seed),
            quantize(&k, k_seed),
            quantize(&v, None),
        );
        let mut out = vec![bf16::from_f32(f32::NAN); q.len()];
        let mut lse = vec![f32::NAN; batch * heads * seqlen];
        Device::cpu()
            .forward_fp8_into(
                Qkv {
                    q: Tensor::host(&q8, shape),
                    k: Tensor::host(&k8, shape),
                    v: Tensor::host(&v8, shape),
                },
                &Fp8Descale {
                    q: &sq,
                    k: &sk,
                    v: &sv,
                },
                ForwardInto {
                    out: TensorMut::host(&mut out, shape),
                    lse: TensorMut::host(&mut lse, [batch, heads, seqlen]),
                },
                &options,
            )
            .unwrap();
        let mse = out
            .iter()
            .zip(&exact.out)
            .map(|(o, e)| (o.to_f64() - e).powi(2))
            .sum::<f64>()
            / out.len() as f64;
        mse.sqrt()
    };
    // e4m3 keeps 3 mantissa bits (relative rounding error up to 2^-4): on
    // unit-normal inputs O's RMSE is about 1e-2 (`examples/fp8_accuracy.rs`).
    for seeds in [(None, None), (Some(5), Some(5))] {
        let rmse = rmse_with(seeds.0, seeds.1);
        eprintln!("seeds {seeds:?}: RMSE of O {rmse:.2e}");
        assert!(rmse < 3e-2, "{seeds:?}: RMSE {rmse:.2e}");
    }
    let mismatched = rmse_with(Some(5), Some(6));
    eprintln!("Q and K rotated apart: RMSE of O {mismatched:.2e}");
    assert!(
        mismatched > 0.1,
        "Q and K rotated apart: RMSE {mismatched:.2e}"
    );
}
