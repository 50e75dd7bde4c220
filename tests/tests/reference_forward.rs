//! The reference forward against an independent materialized-softmax `f64`
//! implementation, and the CPU backend's writes through any strides.

use fa3::reference::{self, Precision};
use fa3::{Device, ForwardInto, Qkv, Real, bf16};
use fa3_tests::cases::{self, Case, Limits, Padded, bits};
use fa3_tests::materialized;
use proptest::prelude::*;

const LIMITS: Limits = Limits {
    batch: 2,
    seqlen: 24,
    heads_kv: 2,
    group: 3,
    head_dim: 64,
};

/// `|got − want| ≤ tol · (1 + |want|)`, equal infinities allowed.
fn assert_close(name: &str, got: &[f64], want: &[f64], tol: f64) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len(), "{} length", name);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = g == w || (g - w).abs() <= tol * (1.0 + w.abs());
        prop_assert!(
            ok,
            "{}[{}]: got {}, want {} (tolerance {:e})",
            name,
            i,
            g,
            w,
            tol
        );
    }
    Ok(())
}

fn check_against_materialized(case: &Case) -> Result<(), TestCaseError> {
    let data = case.data::<bf16>();
    let wide = data.to_f64();
    let (out, lse) = materialized::forward(&case.materialized(), &wide.q, &wide.k, &wide.v);
    for (precision, tol) in [(Precision::F64, 1e-12), (Precision::F32, 2e-5)] {
        let got = reference::forward(cases::qkv(case, &data), &case.options(), precision).unwrap();
        assert_close("out", &got.out, &out, tol)?;
        assert_close("lse", &got.lse, &lse, tol)?;
        // The f64 reference reads f64 inputs too.
        let got = reference::forward(cases::qkv(case, &wide), &case.options(), precision).unwrap();
        assert_close("out (f64 inputs)", &got.out, &out, tol)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases::config(64))]

    #[test]
    fn reference_matches_the_materialized_softmax(case in cases::fixed(LIMITS)) {
        check_against_materialized(&case)?;
    }

    /// Device::cpu writes the reference, rounded once, through padded
    /// strides and offsets, and touches nothing else.
    #[test]
    fn cpu_backend_writes_the_reference_through_any_strides(case in cases::fixed(LIMITS)) {
        let data = case.data::<bf16>();
        let [pq, pk, pv, pout] = case.pads;
        let garbage = bf16::from_f32(1e4);
        let q = Padded::new(&data.q, garbage, case.q_shape(), pq, case.offset);
        let k = Padded::new(&data.k, garbage, case.k_shape(), pk, case.offset);
        let v = Padded::new(&data.v, garbage, case.v_shape(), pv, case.offset);
        let out_len: usize = case.out_shape().iter().product();
        let lse_len: usize = case.lse_shape().iter().product();
        for precision in [Precision::F32, Precision::F64] {
            let want = reference::forward(cases::qkv(&case, &data), &case.options(), precision).unwrap();
            let mut out = Padded::new(&vec![bf16::NAN; out_len], bf16::NAN, case.out_shape(), pout, case.offset);
            let lse_pads = [pout[0], pout[1], 0];
            let mut lse = Padded::new(&vec![f32::NAN; lse_len], f32::NAN, case.lse_shape(), lse_pads, case.offset);
            Device::cpu_with(precision)
                .forward_into(
                    Qkv { q: q.view(), k: k.view(), v: v.view() },
                    ForwardInto { out: out.view_mut(), lse: lse.view_mut() },
                    &case.options(),
                )
                .unwrap();
            let want_out: Vec<bf16> = want.out.iter().map(|&x| <bf16 as Real>::from_f64(x)).collect();
            prop_assert_eq!(bits(&out.values()), bits(&want_out));
            let want_lse: Vec<u32> = want.lse.iter().map(|&x| (x as f32).to_bits()).collect();
            let got_lse: Vec<u32> = lse.values().iter().map(|x| x.to_bits()).collect();
            prop_assert_eq!(got_lse, want_lse);
            prop_assert!(out.padding().iter().all(|x| x.is_nan()), "out padding written");
            prop_assert!(lse.padding().iter().all(|x| x.is_nan()), "lse padding written");
        }
    }
}

/// The owned forward returns what forward_into writes.
#[test]
fn owned_forward_equals_forward_into() {
    let case = Case {
        batch: 2,
        seqlen_q: 5,
        seqlen_k: 9,
        heads_kv: 2,
        group: 2,
        head_dim: 16,
        head_dim_v: 24,
        causal: true,
        window: (Some(3), None),
        softcap: 2.0,
        scale: None,
        pads: [[0; 4]; 4],
        offset: 0,
        seed: 7,
    };
    let data = case.data::<bf16>();
    let device = Device::cpu();
    let owned = device
        .forward(cases::qkv(&case, &data), &case.options())
        .unwrap();
    let mut out = vec![bf16::NAN; case.out_shape().iter().product()];
    let mut lse = vec![f32::NAN; case.lse_shape().iter().product()];
    device
        .forward_into(
            cases::qkv(&case, &data),
            ForwardInto {
                out: fa3::TensorMut::host(&mut out, case.out_shape()),
                lse: fa3::TensorMut::host(&mut lse, case.lse_shape()),
            },
            &case.options(),
        )
        .unwrap();
    assert_eq!(bits(owned.out.as_host().unwrap()), bits(&out));
    assert_eq!(owned.lse.as_host().unwrap(), &lse[..]);
    assert_eq!(owned.out.shape(), case.out_shape());
}
