//! The view model on the CPU backend: each defect of the "views that
//! cannot overflow or overlap" issue as a test (outputs poisoned and
//! compared bit for bit, no panic), and the layouts it must keep accepting.

use fa3::reference::Precision;
use fa3::{
    AttentionOptions, BackwardInputs, Device, Error, ForwardInto, GradientsInto, Qkv, Tensor,
    TensorMut, bf16,
};
use fa3_tests::strided::{padded, place, take};
use fa3_tests::{bits, random_bf16, random_f32};

/// A forward into `out`/`lse` views of poisoned buffers: the error, with
/// both buffers checked untouched.
fn forward_into_error(
    qkv: Qkv<'_, bf16, 4>,
    out: (usize, [usize; 4], [usize; 4]),
    lse: (usize, [usize; 3], [usize; 3]),
) -> Error {
    let (mut out_buf, mut lse_buf) = (vec![bf16::NAN; out.0], vec![f32::NAN; lse.0]);
    let (out_before, lse_before) = (bits(&out_buf), bits(&lse_buf));
    let err = Device::cpu()
        .forward_into(
            qkv,
            ForwardInto {
                out: TensorMut::host(&mut out_buf, out.1).with_strides(out.2),
                lse: TensorMut::host(&mut lse_buf, lse.1).with_strides(lse.2),
            },
            &AttentionOptions::new(),
        )
        .unwrap_err();
    assert_eq!(bits(&out_buf), out_before, "out written despite {err}");
    assert_eq!(bits(&lse_buf), lse_before, "lse written despite {err}");
    err
}

const SHAPE: [usize; 4] = [2, 3, 4, 8];
const CONTIGUOUS: [usize; 4] = [96, 32, 8, 1];
const LSE: [usize; 3] = [2, 4, 3];
const LSE_STRIDES: [usize; 3] = [12, 3, 1];

/// Strides summing to usize::MAX made the extent `last + 1` wrap to 0: a
/// view of any size passed over an empty buffer (a panic in the reference
/// as an input, `Ok` with nothing written as an output).
#[test]
fn an_extent_past_usize_max_is_an_overflow_error() {
    let wrap_shape = [2, 1, 2, 8];
    let wrap = [1 << 63, 0, (1 << 63) - 8, 1];
    let empty: [bf16; 0] = [];
    let x = random_bf16(32);
    let t = Tensor::host(&x, wrap_shape);
    let q = Tensor::host(&empty, wrap_shape).with_strides(wrap);
    for result in [
        fa3::reference::forward(
            Qkv { q, k: t, v: t },
            &AttentionOptions::new(),
            Precision::F32,
        )
        .map(drop),
        Device::cpu()
            .forward(Qkv { q, k: t, v: t }, &AttentionOptions::new())
            .map(drop),
    ] {
        assert!(
            matches!(result, Err(Error::Overflow { tensor: "q", .. })),
            "{result:?}"
        );
    }
    // As an output: refused, the lse buffer untouched.
    let mut out: [bf16; 0] = [];
    let mut lse = vec![f32::NAN; 4];
    let err = Device::cpu()
        .forward_into(
            Qkv { q: t, k: t, v: t },
            ForwardInto {
                out: TensorMut::host(&mut out, wrap_shape).with_strides(wrap),
                lse: TensorMut::host(&mut lse, [2, 2, 1]),
            },
            &AttentionOptions::new(),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Overflow { tensor: "out", .. }),
        "{err}"
    );
    assert!(lse.iter().all(|x| x.is_nan()));
}

/// Zero strides let a tiny buffer describe a huge problem: refused as an
/// overflow where the kernels could not index it, as an allocation error
/// where this machine cannot hold it, never a panic or a partial write.
#[test]
fn huge_broadcast_inputs_are_typed_errors() {
    let x = random_bf16(8);
    let broadcast = |shape: [usize; 4]| Tensor::host(&x, shape).with_strides([0, 0, 8, 1]);
    let device = Device::cpu();
    // The case: seqlen 2^59 (beyond i32, which the kernels index with).
    let t = broadcast([1, 1 << 59, 1, 8]);
    let err = device
        .forward(Qkv { q: t, k: t, v: t }, &AttentionOptions::new())
        .unwrap_err();
    assert!(matches!(err, Error::Overflow { tensor: "q", .. }), "{err}");
    // Axes within i32 but 2^67 elements in all (beyond i64).
    let t = Tensor::host(&x, [1 << 30, 1 << 30, 16, 8]).with_strides([0, 0, 0, 1]);
    let err = device
        .forward(Qkv { q: t, k: t, v: t }, &AttentionOptions::new())
        .unwrap_err();
    assert!(matches!(err, Error::Overflow { tensor: "q", .. }), "{err}");
    // Indexable, but 2^43 elements: more than this machine holds.
    let t = broadcast([1 << 20, 1 << 23, 1, 8]);
    let qkv = Qkv { q: t, k: t, v: t };
    let err = device.forward(qkv, &AttentionOptions::new()).unwrap_err();
    assert!(matches!(err, Error::Allocation { .. }), "{err}");
    let err = fa3::reference::forward(qkv, &AttentionOptions::new(), Precision::F32).unwrap_err();
    assert!(matches!(err, Error::Allocation { .. }), "{err}");
    let lse = vec![0.0f32; 1 << 23];
    let lse = Tensor::host(&lse, [1 << 20, 1, 1 << 23]).with_strides([0, 0, 1]);
    let err = device
        .backward(
            BackwardInputs {
                q: t,
                k: t,
                v: t,
                out: t,
                lse,
                dout: t,
            },
            &AttentionOptions::new(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Allocation { .. }), "{err}");
}

/// Outputs whose strides give two elements one address were written in an
/// order-dependent way; now refused.
#[test]
fn self_overlapping_outputs_are_refused() {
    let (q, k, v) = (random_bf16(192), random_bf16(192), random_bf16(192));
    let qkv = Qkv {
        q: Tensor::host(&q, SHAPE),
        k: Tensor::host(&k, SHAPE),
        v: Tensor::host(&v, SHAPE),
    };
    for (strides, axis) in [
        ([0, 0, 0, 1], "axis 0"),
        // head stride 4 < head_dim 8
        ([96, 32, 4, 1], "axis 2"),
        ([96, 0, 8, 1], "axis 1"),
    ] {
        let err = forward_into_error(qkv, (192, SHAPE, strides), (24, LSE, LSE_STRIDES));
        assert!(
            matches!(&err, Error::SelfOverlap { tensor: "out", problem } if problem.contains(axis)),
            "{strides:?}: {err}"
        );
    }
    let err = forward_into_error(qkv, (192, SHAPE, CONTIGUOUS), (24, LSE, [0, 0, 1]));
    assert!(
        matches!(err, Error::SelfOverlap { tensor: "lse", .. }),
        "{err}"
    );
    // dk with a zero seqlen stride silently lost the sums over keys.
    let fwd = Device::cpu()
        .forward(qkv, &AttentionOptions::new())
        .unwrap();
    let dout = random_bf16(192);
    let mut grads = [
        vec![bf16::NAN; 192],
        vec![bf16::NAN; 192],
        vec![bf16::NAN; 192],
    ];
    let before: Vec<Vec<u32>> = grads.iter().map(|g| bits(g)).collect();
    let [dq, dk, dv] = &mut grads;
    let err = Device::cpu()
        .backward_into(
            BackwardInputs {
                q: qkv.q,
                k: qkv.k,
                v: qkv.v,
                out: fwd.out.view(),
                lse: fwd.lse.view(),
                dout: Tensor::host(&dout, SHAPE),
            },
            GradientsInto {
                dq: TensorMut::host(dq, SHAPE),
                dk: TensorMut::host(dk, SHAPE).with_strides([96, 0, 8, 1]),
                dv: TensorMut::host(dv, SHAPE),
            },
            &AttentionOptions::new(),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::SelfOverlap { tensor: "dk", .. }),
        "{err}"
    );
    let after: Vec<Vec<u32>> = grads.iter().map(|g| bits(g)).collect();
    assert_eq!(after, before);
}

/// Scores beyond f32's range gave NaN in the f32 reference although the
/// answer is finite: the f32 reference now agrees with the f64 one.
#[test]
fn scores_beyond_f32_give_the_finite_answer() {
    let shape = [1, 4, 1, 8];
    let (q, k, v) = (random_f32(32), random_f32(32), random_f32(32));
    let qkv = Qkv {
        q: Tensor::host(&q, shape),
        k: Tensor::host(&k, shape),
        v: Tensor::host(&v, shape),
    };
    let options = AttentionOptions::new().softmax_scale(3e38);
    let f32_ref = fa3::reference::forward(qkv, &options, Precision::F32).unwrap();
    let f64_ref = fa3::reference::forward(qkv, &options, Precision::F64).unwrap();
    for (a, b) in f32_ref.out.iter().zip(&f64_ref.out) {
        assert!(a.is_finite(), "{:?}", f32_ref.out);
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
    }
    // bf16 inputs near f32::MAX, through the CPU backend.
    let big: Vec<bf16> = q.iter().map(|x| bf16::from_f32(x * 1e38)).collect();
    let small: Vec<bf16> = k.iter().map(|&x| bf16::from_f32(x)).collect();
    let (kb, vb) = (Tensor::host(&small, shape), Tensor::host(&small, shape));
    let qkv = Qkv {
        q: Tensor::host(&big, shape),
        k: kb,
        v: vb,
    };
    let out = Device::cpu()
        .forward(qkv, &AttentionOptions::new())
        .unwrap();
    assert!(
        out.out.as_host().unwrap().iter().all(|x| x.is_finite()),
        "{:?}",
        out.out.as_host()
    );
}

/// An empty tensor with huge axes was refused when contiguous (its
/// row-major strides overflow) but accepted with explicit strides: both are
/// accepted now, and nothing is computed.
#[test]
fn empty_tensors_do_not_depend_on_their_strides() {
    let empty: [bf16; 0] = [];
    let shape = [0, 1 << 40, 1 << 40, 8];
    let k = Tensor::host(&empty, [0, 4, 1 << 40, 8]);
    for q in [
        Tensor::host(&empty, shape),
        Tensor::host(&empty, shape).with_strides([3, 2, 1, 1]),
    ] {
        let result = Device::cpu()
            .forward(Qkv { q, k, v: k }, &AttentionOptions::new())
            .unwrap();
        assert_eq!(result.out.shape(), shape);
        assert!(result.out.as_host().unwrap().is_empty());
    }
}

/// The innermost-stride rule does not apply where that axis has length 1
/// (an lse of one query per row, say).
#[test]
fn length_1_axes_take_any_stride() {
    let shape = [2, 1, 4, 8];
    let (q, k, v) = (
        random_bf16(64),
        random_bf16(2 * 3 * 4 * 8),
        random_bf16(2 * 3 * 4 * 8),
    );
    let qkv = Qkv {
        q: Tensor::host(&q, shape),
        k: Tensor::host(&k, [2, 3, 4, 8]),
        v: Tensor::host(&v, [2, 3, 4, 8]),
    };
    let want = Device::cpu()
        .forward(qkv, &AttentionOptions::new())
        .unwrap();
    let (mut out, mut lse) = (vec![bf16::NAN; 64], vec![f32::NAN; 64]);
    Device::cpu()
        .forward_into(
            qkv,
            ForwardInto {
                // seqlen axis of length 1 with a stride of 0; lse innermost
                // (seqlen_q = 1) with a stride of 7.
                out: TensorMut::host(&mut out, shape).with_strides([32, 0, 8, 1]),
                lse: TensorMut::host(&mut lse, [2, 4, 1]).with_strides([8, 2, 7]),
            },
            &AttentionOptions::new(),
        )
        .unwrap();
    assert_eq!(bits(&out), bits(want.out.as_host().unwrap()));
    let got_lse: Vec<f32> = (0..8).map(|i| lse[2 * i]).collect();
    assert_eq!(bits(&got_lse), bits(want.lse.as_host().unwrap()));
}

/// FA3's packed layouts: `dq`, `dk`, `dv` as thirds of one `(batch, seqlen,
/// 3, heads, dim)` buffer, interleaved by head blocks, and `q`, `k`, `v`
/// likewise: accepted, and equal bit for bit to the contiguous result.
#[test]
fn interleaved_packed_views_are_exact() {
    let [b, s, h, d] = SHAPE;
    let packed_len = b * s * 3 * h * d;
    let strides = [s * 3 * h * d, 3 * h * d, d, 1];
    let qkv_buf = random_bf16(packed_len);
    let third = |i: usize| {
        Tensor::host(&qkv_buf, SHAPE)
            .with_strides(strides)
            .with_offset(i * h * d)
    };
    let packed = Qkv {
        q: third(0),
        k: third(1),
        v: third(2),
    };
    let logical: Vec<Vec<bf16>> = (0..3)
        .map(|i| take(&qkv_buf[i * h * d..], SHAPE, strides, 0))
        .collect();
    let contiguous = Qkv {
        q: Tensor::host(&logical[0], SHAPE),
        k: Tensor::host(&logical[1], SHAPE),
        v: Tensor::host(&logical[2], SHAPE),
    };
    let dout = random_bf16(192);
    let dout = Tensor::host(&dout, SHAPE);
    let options = AttentionOptions::new().causal(true);
    let (fwd, want) = fa3_tests::cpu_forward_backward(contiguous, dout, &options);
    let mut grads = vec![bf16::NAN; packed_len + 16];
    let base = grads.as_mut_ptr();
    // SAFETY: the three views lie within `grads` (offsets below h·d, extent
    // at most packed_len − 2·h·d), which nothing else touches during the call.
    let (dq, dk, dv) = unsafe {
        let view = |i: usize| {
            TensorMut::from_raw_parts(base, packed_len, SHAPE)
                .with_strides(strides)
                .with_offset(i * h * d)
        };
        (view(0), view(1), view(2))
    };
    Device::cpu()
        .backward_into(
            BackwardInputs {
                q: packed.q,
                k: packed.k,
                v: packed.v,
                out: fwd.out.view(),
                lse: fwd.lse.view(),
                dout,
            },
            GradientsInto { dq, dk, dv },
            &options,
        )
        .unwrap();
    for (i, want) in [&want.dq, &want.dk, &want.dv].into_iter().enumerate() {
        let got = take(&grads[i * h * d..], SHAPE, strides, 0);
        assert_eq!(bits(&got), bits(want.as_host().unwrap()), "gradient {i}");
    }
    assert!(
        grads[packed_len..].iter().all(|x| x.is_nan()),
        "guard written"
    );
    // And the padded layout helper's views agree with contiguous ones too.
    let (pstrides, plen) = padded(SHAPE, [5, 3, 8, 0], 7);
    let buffer = place(&logical[0], bf16::NAN, plen, SHAPE, pstrides, 7);
    let padded_q = Tensor::host(&buffer, SHAPE)
        .with_strides(pstrides)
        .with_offset(7);
    let a = Device::cpu()
        .forward(
            Qkv {
                q: padded_q,
                ..contiguous
            },
            &options,
        )
        .unwrap();
    assert_eq!(
        bits(a.out.as_host().unwrap()),
        bits(fwd.out.as_host().unwrap())
    );
}
