//! One test per validation error class: the exact error variant, and the
//! (poisoned) outputs untouched, bit for bit.

use fa3::{
    AttentionOptions, BackwardInputs, Device, Error, F8E4M3, ForwardInto, Fp8Descale,
    GradientsInto, Qkv, Tensor, TensorMut, Varlen, bf16,
};

const Q: [usize; 4] = [2, 4, 4, 8];
const KV: [usize; 4] = [2, 6, 2, 8];

fn len(shape: &[usize]) -> usize {
    shape.iter().product()
}

fn ones(shape: &[usize]) -> Vec<bf16> {
    vec![bf16::ONE; len(shape)]
}

/// Poisoned output buffers, remembered bit for bit.
struct Outputs {
    out: Vec<bf16>,
    lse: Vec<f32>,
}

impl Outputs {
    fn new(out_len: usize, lse_len: usize) -> Self {
        Self {
            out: vec![bf16::from_bits(0x7FC1); out_len],
            lse: (0..lse_len)
                .map(|i| f32::from_bits(0x7FC0_0001 + i as u32))
                .collect(),
        }
    }

    fn bits(&self) -> (Vec<u16>, Vec<u32>) {
        (
            self.out.iter().map(|x| x.to_bits()).collect(),
            self.lse.iter().map(|x| x.to_bits()).collect(),
        )
    }
}

/// Runs a fixed-length forward_into with the given views and options,
/// asserts the outputs are untouched and returns the error.
fn forward_error(
    q: Tensor<'_, bf16, 4>,
    k: Tensor<'_, bf16, 4>,
    v: Tensor<'_, bf16, 4>,
    out_shape: [usize; 4],
    lse_shape: [usize; 3],
    options: &AttentionOptions,
) -> Error {
    let mut o = Outputs::new(len(&out_shape), len(&lse_shape));
    let before = o.bits();
    let err = Device::cpu()
        .forward_into(
            Qkv { q, k, v },
            ForwardInto {
                out: TensorMut::host(&mut o.out, out_shape),
                lse: TensorMut::host(&mut o.lse, lse_shape),
            },
            options,
        )
        .unwrap_err();
    assert_eq!(o.bits(), before, "outputs written despite {err}");
    // Every message says what is wrong and what is accepted.
    assert!(!err.to_string().is_empty());
    err
}

fn default_forward_error(
    q_shape: [usize; 4],
    k_shape: [usize; 4],
    v_shape: [usize; 4],
    options: &AttentionOptions,
) -> Error {
    let (q, k, v) = (ones(&q_shape), ones(&k_shape), ones(&v_shape));
    let out = [q_shape[0], q_shape[1], q_shape[2], v_shape[3]];
    let lse = [q_shape[0], q_shape[2], q_shape[1]];
    forward_error(
        Tensor::host(&q, q_shape),
        Tensor::host(&k, k_shape),
        Tensor::host(&v, v_shape),
        out,
        lse,
        options,
    )
}

#[test]
fn shape_mismatch_names_the_tensor_and_dimension() {
    let err = default_forward_error(Q, [2, 6, 2, 16], [2, 6, 2, 8], &AttentionOptions::new());
    assert!(
        matches!(
            err,
            Error::ShapeMismatch {
                tensor: "k",
                axis: 3,
                dim: "head_dim",
                got: 16,
                expected: 8,
                set_by: "q"
            }
        ),
        "{err}"
    );
    let err = default_forward_error(Q, KV, [2, 5, 2, 8], &AttentionOptions::new());
    assert!(
        matches!(
            err,
            Error::ShapeMismatch {
                tensor: "v",
                axis: 1,
                dim: "seqlen_k",
                got: 5,
                expected: 6,
                set_by: "k"
            }
        ),
        "{err}"
    );
    let err = default_forward_error(Q, [3, 6, 2, 8], KV, &AttentionOptions::new());
    assert!(
        matches!(
            err,
            Error::ShapeMismatch {
                tensor: "k",
                dim: "batch",
                ..
            }
        ),
        "{err}"
    );

    // Outputs too: lse transposed, out with the wrong head_dim_v.
    let (q, k, v) = (ones(&Q), ones(&KV), ones(&KV));
    let t = |x, s| Tensor::host(x, s);
    let err = forward_error(
        t(&q, Q),
        t(&k, KV),
        t(&v, KV),
        [2, 4, 4, 8],
        [2, 4, 4 + 1],
        &AttentionOptions::new(),
    );
    assert!(
        matches!(
            err,
            Error::ShapeMismatch {
                tensor: "lse",
                axis: 2,
                dim: "seqlen_q",
                got: 5,
                expected: 4,
                ..
            }
        ),
        "{err}"
    );
    let err = forward_error(
        t(&q, Q),
        t(&k, KV),
        t(&v, KV),
        [2, 4, 4, 16],
        [2, 4, 4],
        &AttentionOptions::new(),
    );
    assert!(
        matches!(
            err,
            Error::ShapeMismatch {
                tensor: "out",
                axis: 3,
                dim: "head_dim_v",
                set_by: "v",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn heads_q_must_be_a_multiple_of_heads_kv() {
    let err = default_forward_error([2, 4, 3, 8], KV, KV, &AttentionOptions::new());
    assert!(
        matches!(
            err,
            Error::HeadsNotDivisible {
                heads_q: 3,
                heads_kv: 2
            }
        ),
        "{err}"
    );
    let err = default_forward_error(
        [2, 4, 0, 8],
        [2, 6, 0, 8],
        [2, 6, 0, 8],
        &AttentionOptions::new(),
    );
    assert!(
        matches!(
            err,
            Error::HeadsNotDivisible {
                heads_q: 0,
                heads_kv: 0
            }
        ),
        "{err}"
    );
}

#[test]
fn unsupported_head_dims_are_rejected_with_the_accepted_ones() {
    let err = default_forward_error([2, 4, 4, 12], [2, 6, 2, 12], KV, &AttentionOptions::new());
    assert!(
        matches!(
            err,
            Error::UnsupportedHeadDim {
                dim: "head_dim",
                got: 12
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("multiples of 8 from 8 to 256"),
        "{err}"
    );
    let err = default_forward_error(Q, KV, [2, 6, 2, 264], &AttentionOptions::new());
    assert!(
        matches!(
            err,
            Error::UnsupportedHeadDim {
                dim: "head_dim_v",
                got: 264
            }
        ),
        "{err}"
    );
}

#[test]
fn innermost_stride_must_be_one() {
    let (q, k, v) = (vec![bf16::ONE; 2 * len(&Q)], ones(&KV), ones(&KV));
    let strided = Tensor::host(&q, Q).with_strides([256, 64, 16, 2]);
    let err = forward_error(
        strided,
        Tensor::host(&k, KV),
        Tensor::host(&v, KV),
        Q,
        [2, 4, 4],
        &AttentionOptions::new(),
    );
    assert!(
        matches!(
            err,
            Error::InnermostStride {
                tensor: "q",
                stride: 2
            }
        ),
        "{err}"
    );
}

#[test]
fn output_too_small_is_rejected() {
    let (q, k, v) = (ones(&Q), ones(&KV), ones(&KV));
    let mut o = Outputs::new(len(&Q) - 1, 2 * 4 * 4);
    let before = o.bits();
    let err = Device::cpu()
        .forward_into(
            Qkv {
                q: Tensor::host(&q, Q),
                k: Tensor::host(&k, KV),
                v: Tensor::host(&v, KV),
            },
            ForwardInto {
                out: TensorMut::host(&mut o.out, Q),
                lse: TensorMut::host(&mut o.lse, [2, 4, 4]),
            },
            &AttentionOptions::new(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BufferTooSmall {
                tensor: "out",
                needed: 256,
                len: 255
            }
        ),
        "{err}"
    );
    assert_eq!(o.bits(), before);
    // An offset counts too, for inputs as well.
    let err = forward_error(
        Tensor::host(&q, Q).with_offset(1),
        Tensor::host(&k, KV),
        Tensor::host(&v, KV),
        Q,
        [2, 4, 4],
        &AttentionOptions::new(),
    );
    assert!(
        matches!(
            err,
            Error::BufferTooSmall {
                tensor: "q",
                needed: 257,
                len: 256
            }
        ),
        "{err}"
    );
}

#[test]
fn an_output_aliasing_an_input_is_rejected() {
    // One buffer holds q and, overlapping its end, out (raw-pointer views,
    // as FFI callers would build them).
    let mut buffer = vec![bf16::ONE; len(&Q) + 100];
    let (k, v) = (ones(&KV), ones(&KV));
    let mut lse = vec![f32::NAN; 32];
    let before: Vec<u16> = buffer.iter().map(|x| x.to_bits()).collect();
    let base = buffer.as_mut_ptr();
    // SAFETY: both views lie within `buffer`, which outlives the call and is
    // not otherwise accessed during it.
    let (q, out) = unsafe {
        (
            Tensor::from_raw_parts(base.cast_const(), len(&Q), Q),
            TensorMut::from_raw_parts(base.add(100), len(&Q), Q),
        )
    };
    let err = Device::cpu()
        .forward_into(
            Qkv {
                q,
                k: Tensor::host(&k, KV),
                v: Tensor::host(&v, KV),
            },
            ForwardInto {
                out,
                lse: TensorMut::host(&mut lse, [2, 4, 4]),
            },
            &AttentionOptions::new(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Aliasing {
                output: "out",
                other: "q"
            }
        ),
        "{err}"
    );
    assert_eq!(
        buffer.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        before
    );
    assert!(lse.iter().all(|x| x.is_nan()));

    // Two outputs sharing bytes: dk overlapping dq.
    let shape = [1, 2, 1, 8];
    let x = ones(&shape);
    let lse = vec![0.0f32; 2];
    let mut grads = vec![bf16::NAN; 40];
    let g = grads.as_mut_ptr();
    // SAFETY: all three views lie within `grads`, untouched otherwise.
    let (dq, dk, dv) = unsafe {
        (
            TensorMut::from_raw_parts(g, 16, shape),
            TensorMut::from_raw_parts(g.add(8), 16, shape),
            TensorMut::from_raw_parts(g.add(24), 16, shape),
        )
    };
    let t = Tensor::host(&x, shape);
    let err = Device::cpu()
        .backward_into(
            BackwardInputs {
                q: t,
                k: t,
                v: t,
                out: t,
                lse: Tensor::host(&lse, [1, 1, 2]),
                dout: t,
            },
            GradientsInto { dq, dk, dv },
            &AttentionOptions::new(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Aliasing {
                output: "dk",
                other: "dq"
            }
        ),
        "{err}"
    );
    assert!(grads.iter().all(|x| x.is_nan()));
}

#[test]
fn invalid_options_are_rejected() {
    let bad = [
        (
            AttentionOptions::new().softmax_scale(f32::NAN),
            "softmax_scale",
        ),
        (AttentionOptions::new().softmax_scale(-0.5), "softmax_scale"),
        (
            AttentionOptions::new().softmax_scale(f32::INFINITY),
            "softmax_scale",
        ),
        (AttentionOptions::new().softcap(f32::NAN), "softcap"),
        (AttentionOptions::new().softcap(-1.0), "softcap"),
        (AttentionOptions::new().softcap(f32::INFINITY), "softcap"),
        // Negative windows cannot be written; causal fixes the right bound at 0.
        (
            AttentionOptions::new()
                .causal(true)
                .window(Some(4), Some(2)),
            "window",
        ),
    ];
    for (options, name) in bad {
        let err = default_forward_error(Q, KV, KV, &options);
        assert!(
            matches!(err, Error::InvalidOption { option, .. } if option == name),
            "{options:?}: {err}"
        );
    }
    // Accepted: causal with a left window and right bound 0.
    let (q, k) = (ones(&Q), ones(&KV));
    let t = Tensor::host(&q, Q);
    let kt = Tensor::host(&k, KV);
    let options = AttentionOptions::new()
        .causal(true)
        .window(Some(2), Some(0));
    Device::cpu()
        .forward(Qkv { q: t, k: kt, v: kt }, &options)
        .unwrap();
}

/// A varlen forward on packed (total, 2, 8) tensors with the given
/// sequences; outputs untouched.
fn varlen_error(total_q: usize, total_k: usize, varlen: Varlen<'_>) -> Error {
    let (q, kv) = (ones(&[total_q, 2, 8]), ones(&[total_k, 2, 8]));
    let mut o = Outputs::new(total_q * 16, 2 * total_q);
    let before = o.bits();
    let err = Device::cpu()
        .forward_varlen_into(
            Qkv {
                q: Tensor::host(&q, [total_q, 2, 8]),
                k: Tensor::host(&kv, [total_k, 2, 8]),
                v: Tensor::host(&kv, [total_k, 2, 8]),
            },
            &varlen,
            ForwardInto {
                out: TensorMut::host(&mut o.out, [total_q, 2, 8]),
                lse: TensorMut::host(&mut o.lse, [2, total_q]),
            },
            &AttentionOptions::new(),
        )
        .unwrap_err();
    assert_eq!(o.bits(), before, "outputs written despite {err}");
    err
}

#[test]
fn inconsistent_cu_seqlens_are_rejected() {
    let v = |cu_q: &'static [i32], cu_k: &'static [i32], max_q, max_k| Varlen {
        cu_seqlens_q: cu_q,
        cu_seqlens_k: cu_k,
        max_seqlen_q: max_q,
        max_seqlen_k: max_k,
    };
    let cases = [
        (
            v(&[0, 3, 2, 5], &[0, 2, 4, 6], 3, 2),
            "cu_seqlens_q",
            "decreases",
        ),
        (
            v(&[0, 2, 5], &[0, 2, 4, 6], 3, 2),
            "cu_seqlens_k",
            "entries",
        ),
        (v(&[0, 2, 5], &[0, 2, 4], 3, 2), "cu_seqlens_k", "ends at 4"),
        (v(&[0, 2, 4], &[0, 2, 6], 2, 4), "cu_seqlens_q", "ends at 4"),
        (
            v(&[1, 2, 5], &[0, 3, 6], 3, 3),
            "cu_seqlens_q",
            "starts at 1",
        ),
        (v(&[], &[], 0, 0), "cu_seqlens_q", "no entries"),
        (
            v(&[0, 2, 5, 4], &[0, 2, 4, 6], 3, 2),
            "cu_seqlens_q",
            "decreases",
        ),
    ];
    for (varlen, name, says) in cases {
        let err = varlen_error(5, 6, varlen);
        assert!(
            matches!(&err, Error::InvalidCuSeqlens { argument, problem } if *argument == name && problem.contains(says)),
            "{varlen:?}: {err}"
        );
    }
}

#[test]
fn max_seqlen_below_the_longest_sequence_is_rejected() {
    let varlen = Varlen {
        cu_seqlens_q: &[0, 2, 5],
        cu_seqlens_k: &[0, 4, 6],
        max_seqlen_q: 2,
        max_seqlen_k: 4,
    };
    let err = varlen_error(5, 6, varlen);
    assert!(
        matches!(
            err,
            Error::MaxSeqlenTooSmall {
                argument: "max_seqlen_q",
                given: 2,
                needed: 3
            }
        ),
        "{err}"
    );
    let varlen = Varlen {
        max_seqlen_q: 3,
        max_seqlen_k: 3,
        ..varlen
    };
    let err = varlen_error(5, 6, varlen);
    assert!(
        matches!(
            err,
            Error::MaxSeqlenTooSmall {
                argument: "max_seqlen_k",
                given: 3,
                needed: 4
            }
        ),
        "{err}"
    );
}

#[test]
fn index_arithmetic_overflow_is_rejected() {
    let (q, k, v) = (ones(&Q), ones(&KV), ones(&KV));
    // Element offsets past i64::MAX (the kernels index with i64).
    let huge = Tensor::host(&q, Q).with_strides([1 << 62, 64, 16, 1]);
    let err = forward_error(
        huge,
        Tensor::host(&k, KV),
        Tensor::host(&v, KV),
        Q,
        [2, 4, 4],
        &AttentionOptions::new(),
    );
    assert!(matches!(err, Error::Overflow { tensor: "q", .. }), "{err}");
    // Offsets past usize.
    let wrapping = Tensor::host(&k, KV).with_strides([usize::MAX / 2, usize::MAX / 4, 8, 1]);
    let err = forward_error(
        Tensor::host(&q, Q),
        wrapping,
        Tensor::host(&v, KV),
        Q,
        [2, 4, 4],
        &AttentionOptions::new(),
    );
    assert!(matches!(err, Error::Overflow { tensor: "k", .. }), "{err}");
    // A shape whose row-major strides overflow (checked before the outputs,
    // whose small buffers stay untouched).
    let big = [1 << 40, 1 << 40, 4, 8];
    let mut o = Outputs::new(8, 8);
    let before = o.bits();
    let err = Device::cpu()
        .forward_into(
            Qkv {
                q: Tensor::host(&q, big),
                k: Tensor::host(&k, [1 << 40, 6, 2, 8]),
                v: Tensor::host(&v, [1 << 40, 6, 2, 8]),
            },
            ForwardInto {
                out: TensorMut::host(&mut o.out, big),
                lse: TensorMut::host(&mut o.lse, [1 << 40, 4, 1 << 40]),
            },
            &AttentionOptions::new(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Overflow { tensor: "q", .. }), "{err}");
    assert_eq!(o.bits(), before);
}

#[test]
fn zero_batch_or_sequence_length_is_an_empty_success() {
    let device = Device::cpu();
    let huge = 1 << 62;
    for (q_shape, kv_shape) in [
        ([0, 4, 4, 8], [0, 6, 2, 8]),
        ([2, 0, 4, 8], [2, 6, 2, 8]),
        // A huge batch of empty sequences costs nothing.
        ([huge, 0, 4, 8], [huge, 0, 2, 8]),
    ] {
        let (q, kv) = (ones(&q_shape), ones(&kv_shape));
        // Buffers larger than the (empty) views: nothing may be written.
        let mut o = Outputs::new(16, 16);
        let before = o.bits();
        let qkv = Qkv {
            q: Tensor::host(&q, q_shape),
            k: Tensor::host(&kv, kv_shape),
            v: Tensor::host(&kv, kv_shape),
        };
        let out_shape = q_shape;
        let lse_shape = [q_shape[0], q_shape[2], q_shape[1]];
        device
            .forward_into(
                qkv,
                ForwardInto {
                    out: TensorMut::host(&mut o.out, out_shape),
                    lse: TensorMut::host(&mut o.lse, lse_shape),
                },
                &AttentionOptions::new().causal(true),
            )
            .unwrap();
        assert_eq!(o.bits(), before);
        let owned = device.forward(qkv, &AttentionOptions::new()).unwrap();
        assert!(owned.out.as_host().unwrap().is_empty() && owned.out.shape() == out_shape);
        let reference =
            fa3::reference::forward(qkv, &AttentionOptions::new(), fa3::Precision::F64).unwrap();
        assert!(reference.out.is_empty() && reference.lse.is_empty());
    }
    // Varlen with no sequences at all.
    let mut o = Outputs::new(4, 4);
    let before = o.bits();
    let empty: [bf16; 0] = [];
    device
        .forward_varlen_into(
            Qkv {
                q: Tensor::host(&empty, [0, 2, 8]),
                k: Tensor::host(&empty, [0, 2, 8]),
                v: Tensor::host(&empty, [0, 2, 8]),
            },
            &Varlen {
                cu_seqlens_q: &[0],
                cu_seqlens_k: &[0],
                max_seqlen_q: 0,
                max_seqlen_k: 0,
            },
            ForwardInto {
                out: TensorMut::host(&mut o.out, [0, 2, 8]),
                lse: TensorMut::host(&mut o.lse, [2, 0]),
            },
            &AttentionOptions::new(),
        )
        .unwrap();
    assert_eq!(o.bits(), before);
}

#[test]
fn backward_validates_every_tensor_before_writing() {
    let shape = [1, 3, 2, 8];
    let x = ones(&shape);
    let lse = vec![0.0f32; 6];
    let t = Tensor::host(&x, shape);
    let mut grads = [
        vec![bf16::NAN; 48],
        vec![bf16::NAN; 48],
        vec![bf16::NAN; 48],
    ];
    let [dq, dk, dv] = &mut grads;
    let err = Device::cpu()
        .backward_into(
            BackwardInputs {
                q: t,
                k: t,
                v: t,
                out: t,
                lse: Tensor::host(&lse, [1, 3, 2]),
                dout: t,
            },
            GradientsInto {
                dq: TensorMut::host(dq, shape),
                dk: TensorMut::host(dk, shape),
                dv: TensorMut::host(dv, shape),
            },
            &AttentionOptions::new(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ShapeMismatch {
                tensor: "lse",
                axis: 1,
                dim: "heads_q",
                ..
            }
        ),
        "{err}"
    );
    assert!(grads.iter().flatten().all(|g| g.is_nan()));
}

#[test]
fn fp8_descale_factors_are_checked() {
    let shape = [2, 3, 2, 8];
    let x = vec![F8E4M3::from_f32(1.0); len(&shape)];
    let t = Tensor::host(&x, shape);
    let mut o = Outputs::new(len(&shape), 12);
    let before = o.bits();
    let good = [1.0f32; 4];
    for (descale, argument) in [
        (
            Fp8Descale {
                q: &good[..3],
                k: &good,
                v: &good,
            },
            "descale_q",
        ),
        (
            Fp8Descale {
                q: &good,
                k: &[1.0, f32::NAN, 1.0, 1.0],
                v: &good,
            },
            "descale_k",
        ),
        (
            Fp8Descale {
                q: &good,
                k: &good,
                v: &[1.0, 1.0, -1.0, 1.0],
            },
            "descale_v",
        ),
    ] {
        let err = Device::cpu()
            .forward_fp8_into(
                Qkv { q: t, k: t, v: t },
                &descale,
                ForwardInto {
                    out: TensorMut::host(&mut o.out, shape),
                    lse: TensorMut::host(&mut o.lse, [2, 2, 3]),
                },
                &AttentionOptions::new(),
            )
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { argument: a, .. } if a == argument),
            "{err}"
        );
        assert_eq!(o.bits(), before);
    }
}
