//! The reference backward against central finite differences in `f64`, and
//! the CPU backend's backward through any strides.

use fa3::reference::{self, Precision};
use fa3::{BackwardInputs, Device, GradientsInto, Qkv, Tensor, bf16};
use fa3_tests::cases::{self, Case, Data, Limits, Padded, bits};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

const SMALL: Limits = Limits {
    batch: 2,
    seqlen: 8,
    heads_kv: 2,
    group: 2,
    head_dim: 16,
};

/// `sum(out ⊙ dout)` of the f64 reference.
fn loss(case: &Case, data: &Data<f64>) -> f64 {
    let out = reference::forward(cases::qkv(case, data), &case.options(), Precision::F64)
        .unwrap()
        .out;
    out.iter().zip(&data.dout).map(|(o, g)| o * g).sum()
}

proptest! {
    #![proptest_config(cases::config(32))]

    #[test]
    fn gradients_match_central_finite_differences(case in cases::fixed(SMALL)) {
        let data = case.data::<f64>();
        let grads = reference::backward(
            cases::qkv(&case, &data),
            Tensor::host(&data.dout, case.out_shape()),
            &case.options(),
            Precision::F64,
        )
        .unwrap();
        prop_assert!(grads.dq.iter().chain(&grads.dk).chain(&grads.dv).all(|g| g.is_finite()));
        let mut rng = rand::rngs::StdRng::seed_from_u64(case.seed);
        let h = 1e-5;
        for (name, which) in [("dq", 0usize), ("dk", 1), ("dv", 2)] {
            let analytic = [&grads.dq, &grads.dk, &grads.dv][which];
            // A few sampled entries of each input.
            for _ in 0..5 {
                let at = rng.random_range(0..analytic.len());
                let shifted = |delta: f64| {
                    let mut data = data.clone();
                    [&mut data.q, &mut data.k, &mut data.v][which][at] += delta;
                    loss(&case, &data)
                };
                let numeric = (shifted(h) - shifted(-h)) / (2.0 * h);
                let g = analytic[at];
                prop_assert!(
                    (numeric - g).abs() <= 1e-6 * (1.0 + g.abs()),
                    "{}[{}]: analytic {}, finite difference {}", name, at, g, numeric
                );
            }
        }
    }

    #[test]
    fn f32_gradients_are_close_to_f64(case in cases::fixed(SMALL)) {
        let data = case.data::<bf16>();
        let dout = Tensor::host(&data.dout, case.out_shape());
        let run = |precision| reference::backward(cases::qkv(&case, &data), dout, &case.options(), precision).unwrap();
        let (wide, narrow) = (run(Precision::F64), run(Precision::F32));
        for (name, w, n) in [("dq", &wide.dq, &narrow.dq), ("dk", &wide.dk, &narrow.dk), ("dv", &wide.dv, &narrow.dv)] {
            for (i, (w, n)) in w.iter().zip(n).enumerate() {
                prop_assert!((w - n).abs() <= 1e-4 * (1.0 + w.abs()), "{}[{}]: f64 {}, f32 {}", name, i, w, n);
            }
        }
    }

    /// Device::cpu's backward reads and writes through padded strides
    /// exactly as through contiguous views, and touches no padding.
    #[test]
    fn cpu_backward_is_layout_independent(case in cases::fixed(SMALL)) {
        let data = case.data::<bf16>();
        let device = Device::cpu();
        let options = case.options();
        let fwd = device.forward(cases::qkv(&case, &data), &options).unwrap();
        let inputs = BackwardInputs {
            q: Tensor::host(&data.q, case.q_shape()),
            k: Tensor::host(&data.k, case.k_shape()),
            v: Tensor::host(&data.v, case.v_shape()),
            out: fwd.out.view(),
            lse: fwd.lse.view(),
            dout: Tensor::host(&data.dout, case.out_shape()),
        };
        let want = device.backward(inputs, &options).unwrap();

        let [pq, pk, pv, pout] = case.pads;
        let fill = bf16::from_f32(-7.0);
        let q = Padded::new(&data.q, fill, case.q_shape(), pq, case.offset);
        let k = Padded::new(&data.k, fill, case.k_shape(), pk, case.offset);
        let v = Padded::new(&data.v, fill, case.v_shape(), pv, case.offset);
        let out = Padded::new(fwd.out.as_host().unwrap(), fill, case.out_shape(), pout, case.offset);
        let lse = Padded::new(fwd.lse.as_host().unwrap(), 9.0, case.lse_shape(), [1, 2, 0], case.offset);
        let dout = Padded::new(&data.dout, fill, case.out_shape(), pq, case.offset + 1);
        let poison = |shape: [usize; 4], pads| Padded::new(&vec![bf16::NAN; shape.iter().product()], bf16::NAN, shape, pads, case.offset);
        let (mut dq, mut dk, mut dv) = (poison(case.q_shape(), pv), poison(case.k_shape(), pq), poison(case.v_shape(), pk));
        device
            .backward_into(
                BackwardInputs { q: q.view(), k: k.view(), v: v.view(), out: out.view(), lse: lse.view(), dout: dout.view() },
                GradientsInto { dq: dq.view_mut(), dk: dk.view_mut(), dv: dv.view_mut() },
                &options,
            )
            .unwrap();
        prop_assert_eq!(bits(&dq.values()), bits(want.dq.as_host().unwrap()));
        prop_assert_eq!(bits(&dk.values()), bits(want.dk.as_host().unwrap()));
        prop_assert_eq!(bits(&dv.values()), bits(want.dv.as_host().unwrap()));
        for grad in [&dq, &dk, &dv] {
            prop_assert!(grad.padding().iter().all(|x| x.is_nan()), "padding written");
        }
    }
}

/// The reference backward's forward is the reference forward.
#[test]
fn backward_recomputes_the_forward_exactly() {
    let case = Case {
        batch: 1,
        seqlen_q: 7,
        seqlen_k: 4,
        heads_kv: 1,
        group: 3,
        head_dim: 8,
        head_dim_v: 16,
        causal: false,
        window: (Some(1), Some(2)),
        softcap: 1.5,
        scale: Some(0.3),
        pads: [[0; 4]; 4],
        offset: 0,
        seed: 11,
    };
    let data = case.data::<f64>();
    let qkv: Qkv<'_, f64, 4> = cases::qkv(&case, &data);
    let fwd = reference::forward(qkv, &case.options(), Precision::F64).unwrap();
    let bwd = reference::backward(
        qkv,
        Tensor::host(&data.dout, case.out_shape()),
        &case.options(),
        Precision::F64,
    )
    .unwrap();
    assert_eq!(fwd.out, bwd.out);
    assert_eq!(fwd.lse, bwd.lse);
}
