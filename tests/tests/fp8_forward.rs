//! The FP8 forward: inputs dequantized per (batch, kv head), attention in
//! high precision, output rounded to bf16.

use fa3::reference::{self, Precision};
use fa3::{
    AttentionOptions, Device, F8E4M3, ForwardInto, Fp8Descale, Qkv, Real, Tensor, TensorMut, bf16,
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
