//! The FP8 forward: inputs dequantized per (batch, kv head), attention in
//! high precision, output rounded to bf16; fed by `quantize_fp8_into`.

use fa3::reference::{self, Precision};
use fa3::{
    AttentionOptions, Device, F8E4M3, ForwardInto, Fp8BlockDescale, Fp8Descale, Fp8Quantize,
    Fp8QuantizedInto, Fp8Scales, Fp8Scaling, Qkv, Real, Tensor, TensorMut, bf16,
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
/// descale factors (heads_q = heads_kv), per-block scales its block
/// factors, and Q and K rotated with one seed give the attention of the
/// unrotated inputs, within e4m3's rounding. With different seeds for Q and
/// K the scores are wrong, which the same measure sees.
#[test]
fn quantized_inputs_feed_the_fp8_forward() {
    let (batch, seqlen, heads, dim) = (2, 96, 2, 64);
    let shape = [batch, seqlen, heads, dim];
    let draw = || -> Vec<bf16> {
        fa3_tests::random_normal(batch * seqlen * heads * dim)
            .into_iter()
            .map(bf16::from_f32)
            .collect()
    };
    let (q, k, v) = (draw(), draw(), draw());
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
    let quantize = |x: &[bf16], scaling: Fp8Scaling, seed: Option<u64>| {
        let mut data = vec![F8E4M3::from_f32(f32::NAN); x.len()];
        let mut scales = vec![f32::NAN; scaling.scales_shape(shape).iter().product()];
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
    // Q in blocks of 32 queries, K and V of 40 keys (the last one shorter).
    let (q_rows, k_rows) = (32, 40);
    let rmse = |q_seed, k_seed, blocks: bool| {
        let (q_scaling, k_scaling) = if blocks {
            (
                Fp8Scaling::PerBlock { rows: q_rows },
                Fp8Scaling::PerBlock { rows: k_rows },
            )
        } else {
            (Fp8Scaling::PerHead, Fp8Scaling::PerHead)
        };
        let (q8, sq) = quantize(&q, q_scaling, q_seed);
        let (k8, sk) = quantize(&k, k_scaling, k_seed);
        let (v8, sv) = quantize(&v, k_scaling, None);
        let per_head = Fp8Descale {
            q: &sq,
            k: &sk,
            v: &sv,
        };
        let per_block = Fp8BlockDescale {
            q: &sq,
            k: &sk,
            v: &sv,
            q_rows,
            k_rows,
        };
        let scales: Fp8Scales<'_> = if blocks {
            (&per_block).into()
        } else {
            (&per_head).into()
        };
        let mut out = vec![bf16::from_f32(f32::NAN); q.len()];
        let mut lse = vec![f32::NAN; batch * heads * seqlen];
        Device::cpu()
            .forward_fp8_into(
                Qkv {
                    q: Tensor::host(&q8, shape),
                    k: Tensor::host(&k8, shape),
                    v: Tensor::host(&v8, shape),
                },
                scales,
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
    for blocks in [false, true] {
        for seeds in [(None, None), (Some(5), Some(5))] {
            let error = rmse(seeds.0, seeds.1, blocks);
            eprintln!("blocks {blocks}, seeds {seeds:?}: RMSE of O {error:.2e}");
            assert!(error < 3e-2, "blocks {blocks}, {seeds:?}: RMSE {error:.2e}");
        }
    }
    let mismatched = rmse(Some(5), Some(6), true);
    eprintln!("Q and K rotated apart: RMSE of O {mismatched:.2e}");
    assert!(
        mismatched > 0.1,
        "Q and K rotated apart: RMSE {mismatched:.2e}"
    );
}

/// Block factors with blocks as long as the sequences are the per-head
/// factors (heads_q = heads_kv): both conventions give the same output
/// bit for bit. Bad block factors are typed errors.
#[test]
fn block_factors_of_whole_sequences_are_per_head_factors() {
    let (batch, seqlen, heads, dim) = (2, 9, 2, 16);
    let shape = [batch, seqlen, heads, dim];
    let x: Vec<F8E4M3> = seeded_f32(7, batch * seqlen * heads * dim)
        .into_iter()
        .map(|v| F8E4M3::from_f32(4.0 * v))
        .collect();
    let t = Tensor::host(&x, shape);
    let qkv = Qkv { q: t, k: t, v: t };
    let (f, g, h) = (
        [0.5, 1.5, 2.0, 0.25],
        [1.0, 0.75, 3.0, 2.0],
        [2.0, 1.0, 0.5, 1.25],
    );
    let options = AttentionOptions::new().causal(true);
    let run = |scales: Fp8Scales<'_>| {
        let mut out = vec![bf16::from_f32(f32::NAN); x.len()];
        let mut lse = vec![f32::NAN; batch * heads * seqlen];
        Device::cpu()
            .forward_fp8_into(
                qkv,
                scales,
                ForwardInto {
                    out: TensorMut::host(&mut out, shape),
                    lse: TensorMut::host(&mut lse, [batch, heads, seqlen]),
                },
                &options,
            )
            .map(|()| (out, lse))
    };
    let per_head = run((&Fp8Descale {
        q: &f,
        k: &g,
        v: &h,
    })
        .into())
    .unwrap();
    for rows in [seqlen, 100] {
        let block = Fp8BlockDescale {
            q: &f,
            k: &g,
            v: &h,
            q_rows: rows,
            k_rows: rows,
        };
        let per_block = run((&block).into()).unwrap();
        assert_eq!(per_block.0, per_head.0, "rows {rows}");
        assert_eq!(per_block.1, per_head.1, "rows {rows}");
    }
    // Two blocks of 5 and 4 rows need twice the factors.
    let short = Fp8BlockDescale {
        q: &f,
        k: &g,
        v: &h,
        q_rows: 5,
        k_rows: 5,
    };
    let err = run((&short).into()).unwrap_err();
    assert!(
        matches!(&err, fa3::Error::InvalidArgument { argument: "descale_q", problem } if problem.contains("ceil(9 / 5)")),
        "{err}"
    );
    let zero = Fp8BlockDescale { k_rows: 0, ..short };
    let err = run((&zero).into()).unwrap_err();
    assert!(
        matches!(
            err,
            fa3::Error::InvalidArgument {
                argument: "descale.k_rows",
                ..
            }
        ),
        "{err}"
    );
}
