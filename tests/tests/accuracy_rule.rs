//! FA3's accuracy rule applied to the CPU backend's bf16/f16 results: they
//! must be within 2× (3× with softcap) the naive same-precision error of
//! the f32 reference, plus f32 noise — what GPU results will be held to.

use fa3::reference::{self, Precision};
use fa3::{AttentionElement, Device, Real, Tensor, bf16, f16};
use fa3_tests::accuracy::{assert_accurate, check};
use fa3_tests::cases::{self, Case};
use fa3_tests::cpu_forward_backward;

fn case(
    seqlen_q: usize,
    seqlen_k: usize,
    group: usize,
    causal: bool,
    softcap: f32,
    seed: u64,
) -> Case {
    Case {
        batch: 2,
        seqlen_q,
        seqlen_k,
        heads_kv: 2,
        group,
        head_dim: 64,
        head_dim_v: 64,
        causal,
        window: (None, None),
        softcap,
        scale: None,
        pads: [[0; 4]; 4],
        offset: 0,
        seed,
    }
}

fn check_case<T: AttentionElement + Into<f64>>(case: &Case) {
    let data = case.data::<T>();
    let (qkv, options) = (cases::qkv(case, &data), case.options());
    let dout = Tensor::host(&data.dout, case.out_shape());
    let want = reference::backward(qkv, dout, &options, Precision::F32).unwrap();
    let naive = reference::naive_forward(qkv, &options).unwrap();
    let naive_grads = reference::naive_backward(qkv, dout, &options).unwrap();

    let (fwd, grads) = cpu_forward_backward(qkv, dout, &options);
    let softcap = case.softcap > 0.0;
    let host = |t: &fa3::OwnedTensor<T, 4>| t.as_host().unwrap().to_vec();
    let reports = [
        assert_accurate("out", &host(&fwd.out), &want.out, &naive.out, softcap),
        assert_accurate(
            "lse",
            fwd.lse.as_host().unwrap(),
            &want.lse,
            &naive.lse,
            softcap,
        ),
        assert_accurate("dq", &host(&grads.dq), &want.dq, &naive_grads.dq, softcap),
        assert_accurate("dk", &host(&grads.dk), &want.dk, &naive_grads.dk, softcap),
        assert_accurate("dv", &host(&grads.dv), &want.dv, &naive_grads.dv, softcap),
    ];
    for report in reports {
        // The naive implementation does lose precision: the rule is not vacuous.
        assert!(report.naive_error > 0.0, "{report}");
        eprintln!("{} {report}", T::NAME);
    }
}

#[test]
fn cpu_bf16_results_pass_fa3s_rule() {
    check_case::<bf16>(&case(64, 64, 1, false, 0.0, 1));
    check_case::<bf16>(&case(40, 72, 2, true, 0.0, 2));
    check_case::<bf16>(&case(72, 40, 2, true, 15.0, 3));
}

#[test]
fn cpu_f16_results_pass_fa3s_rule() {
    check_case::<f16>(&case(64, 64, 2, false, 0.0, 4));
    check_case::<f16>(&case(48, 80, 1, true, 2.0, 5));
}

/// A result that is off by more than the naive implementation fails.
#[test]
fn a_biased_result_fails_the_rule() {
    let case = case(32, 32, 1, false, 0.0, 6);
    let data = case.data::<bf16>();
    let qkv = cases::qkv(&case, &data);
    let want = reference::forward(qkv, &case.options(), Precision::F32).unwrap();
    let naive = reference::naive_forward(qkv, &case.options()).unwrap();
    // A kernel that forgot the scale: same shape, plausible values, wrong.
    let unscaled = case.options().softmax_scale(1.0);
    let wrong = Device::cpu().forward(qkv, &unscaled).unwrap();
    let message = check(
        "out",
        wrong.out.as_host().unwrap(),
        &want.out,
        &naive.out,
        false,
    )
    .unwrap_err();
    assert!(message.starts_with("out:"), "{message}");
    // Off by a few bf16 ulps everywhere also fails.
    let off: Vec<bf16> = want
        .out
        .iter()
        .map(|&x| <bf16 as Real>::from_f64(x * 1.03))
        .collect();
    assert!(check("out", &off, &want.out, &naive.out, false).is_err());
}
