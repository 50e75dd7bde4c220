//! The view model on the GPU: views that could overflow, overlap
//! themselves or reach outside their buffer are refused before any launch
//! (outputs poisoned, a guard region after each buffer, all checked
//! untouched), and the layouts that are accepted give, bit for bit, the
//! contiguous result with nothing written outside the views. They run on a
//! Hopper machine (`cargo xtask test --gpu`, the bundle's `run.sh test`).

use fa3::{
    AttentionOptions, BackwardInputs, Device, DeviceBuffer, Element, Error, ForwardInto, Gpu,
    GradientsInto, Qkv, Tensor, TensorMut, bf16,
};
use fa3_tests::strided::{padded, place, take};
use fa3_tests::{Bits, bits, random_bf16, random_f32};

/// Elements after each view's last one that must stay poisoned.
const GUARD: usize = 4096;

fn gpu_device() -> Device {
    Device::gpu(0).expect("a Hopper GPU")
}

/// A device buffer of `len` + [`GUARD`] poisoned elements.
struct Poisoned<T> {
    buffer: DeviceBuffer<T>,
    before: Vec<T>,
}

impl<T: Bits + Element> Poisoned<T> {
    fn new(gpu: &Gpu, poison: T, len: usize) -> Self {
        let before = vec![poison; len + GUARD];
        Self {
            buffer: gpu.upload(&before).unwrap(),
            before,
        }
    }

    fn untouched(&self, gpu: &Gpu) -> bool {
        bits(&gpu.download(&self.buffer).unwrap()) == bits(&self.before)
    }
}

/// Quiet NaNs with a payload of their own, so no computed value matches.
const POISON_BF16: bf16 = bf16::from_bits(0x7FC1);
const POISON_F32: f32 = f32::from_bits(0x7FC0_0001);

const SHAPE: [usize; 4] = [2, 200, 4, 64];
const LSE: [usize; 3] = [2, 4, 200];

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn defective_views_never_reach_the_kernel() {
    let device = gpu_device();
    let gpu = device.as_gpu().unwrap();
    let n = numel(&SHAPE);
    let (hq, hk, hv) = (random_bf16(n), random_bf16(n), random_bf16(n));
    let (q, k, v) = (
        gpu.upload(&hq).unwrap(),
        gpu.upload(&hk).unwrap(),
        gpu.upload(&hv).unwrap(),
    );
    let qkv = Qkv {
        q: Tensor::device(&q, SHAPE),
        k: Tensor::device(&k, SHAPE),
        v: Tensor::device(&v, SHAPE),
    };
    let contiguous = [200 * 256, 256, 64, 1];
    let wrap = [1 << 63, 0, (1 << 63) - 64, 1];
    let cases: [(&str, [usize; 4], [usize; 3]); 5] = [
        ("out", [0, 0, 0, 1], [800, 200, 1]),
        // head stride 32 < head_dim 64
        ("out", [200 * 256, 256, 32, 1], [800, 200, 1]),
        ("out", [200 * 256, 0, 64, 1], [800, 200, 1]),
        ("lse", contiguous, [0, 0, 1]),
        // Strides summing past usize::MAX (the extent wrapped to 0 before).
        ("out", wrap, [800, 200, 1]),
    ];
    for (bad, out_strides, lse_strides) in cases {
        let mut out = Poisoned::new(gpu, POISON_BF16, n);
        let mut lse = Poisoned::new(gpu, POISON_F32, numel(&LSE));
        let err = device
            .forward_into(
                qkv,
                ForwardInto {
                    out: TensorMut::device(&mut out.buffer, SHAPE).with_strides(out_strides),
                    lse: TensorMut::device(&mut lse.buffer, LSE).with_strides(lse_strides),
                },
                &AttentionOptions::new().causal(true),
            )
            .unwrap_err();
        let refused = match err {
            Error::SelfOverlap { tensor, .. } | Error::Overflow { tensor, .. } => tensor,
            ref other => panic!("{bad}: unexpected {other}"),
        };
        assert_eq!(refused, bad, "{err}");
        assert!(out.untouched(gpu), "out written despite {err}");
        assert!(lse.untouched(gpu), "lse written despite {err}");
    }
    // An input whose extent wraps, over a buffer of 8 elements.
    let tiny = gpu.upload(&random_bf16(8)).unwrap();
    let mut out = Poisoned::new(gpu, POISON_BF16, n);
    let mut lse = Poisoned::new(gpu, POISON_F32, numel(&LSE));
    let err = device
        .forward_into(
            Qkv {
                q: Tensor::device(&tiny, SHAPE).with_strides(wrap),
                ..qkv
            },
            ForwardInto {
                out: TensorMut::device(&mut out.buffer, SHAPE),
                lse: TensorMut::device(&mut lse.buffer, LSE),
            },
            &AttentionOptions::new(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Overflow { tensor: "q", .. }), "{err}");
    assert!(out.untouched(gpu) && lse.untouched(gpu));
    // dk with a zero seqlen stride (it lost the sums over keys): refused by
    // validation, before the backward's own answer.
    let lse_in = gpu.upload(&random_f32(numel(&LSE))).unwrap();
    let mut grads = [
        Poisoned::new(gpu, POISON_BF16, n),
        Poisoned::new(gpu, POISON_BF16, n),
        Poisoned::new(gpu, POISON_BF16, n),
    ];
    let [dq, dk, dv] = &mut grads;
    let err = device
        .backward_into(
            BackwardInputs {
                q: qkv.q,
                k: qkv.k,
                v: qkv.v,
                out: qkv.q,
                lse: Tensor::device(&lse_in, LSE),
                dout: qkv.v,
            },
            GradientsInto {
                dq: TensorMut::device(&mut dq.buffer, SHAPE),
                dk: TensorMut::device(&mut dk.buffer, SHAPE).with_strides([200 * 256, 0, 64, 1]),
                dv: TensorMut::device(&mut dv.buffer, SHAPE),
            },
            &AttentionOptions::new(),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::SelfOverlap { tensor: "dk", .. }),
        "{err}"
    );
    assert!(grads.iter().all(|g| g.untouched(gpu)));
}

/// Packed and padded inputs, padded outputs at an offset, and axes of
/// length 1 with strides TMA could not take (now normalized): each gives
/// the contiguous launch's result bit for bit, and writes nothing outside
/// its views.
#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn accepted_layouts_give_the_contiguous_result() {
    let device = gpu_device();
    let gpu = device.as_gpu().unwrap();
    for (shape, causal) in [([2, 300, 4, 64], true), ([1, 257, 2, 128], false)] {
        let [b, s, h, d] = shape;
        let lse_shape = [b, h, s];
        let n = numel(&shape);
        let options = AttentionOptions::new().causal(causal);
        // (batch, seqlen, 3, heads, dim) packed q, k, v.
        let packed_strides = [s * 3 * h * d, 3 * h * d, d, 1];
        let packed = random_bf16(b * s * 3 * h * d);
        let thirds: Vec<Vec<bf16>> = (0..3)
            .map(|i| take(&packed[i * h * d..], shape, packed_strides, 0))
            .collect();
        let up = |x: &[bf16]| gpu.upload(x).unwrap();
        let (cq, ck, cv) = (up(&thirds[0]), up(&thirds[1]), up(&thirds[2]));
        let (mut out0, mut lse0) = (
            Poisoned::new(gpu, POISON_BF16, n),
            Poisoned::new(gpu, POISON_F32, numel(&lse_shape)),
        );
        device
            .forward_into(
                Qkv {
                    q: Tensor::device(&cq, shape),
                    k: Tensor::device(&ck, shape),
                    v: Tensor::device(&cv, shape),
                },
                ForwardInto {
                    out: TensorMut::device(&mut out0.buffer, shape),
                    lse: TensorMut::device(&mut lse0.buffer, lse_shape),
                },
                &options,
            )
            .unwrap();
        let want_out = gpu.download(&out0.buffer).unwrap();
        let want_lse = gpu.download(&lse0.buffer).unwrap();
        assert!(want_out[..n].iter().all(|x| x.is_finite()), "unwritten out");
        assert!(
            bits(&want_out[n..]) == bits(&out0.before[n..]),
            "guard written"
        );
        let want_out = &want_out[..n];
        let want_lse = &want_lse[..numel(&lse_shape)];

        let packed_dev = up(&packed);
        let third = |i: usize| {
            Tensor::device(&packed_dev, shape)
                .with_strides(packed_strides)
                .with_offset(i * h * d)
        };
        // out padded (8 elements = 16 bytes per axis) and 8 elements in;
        // lse padded likewise.
        let (out_strides, out_len) = padded(shape, [8, 8, 8, 0], 8);
        let (lse_strides, lse_len) = padded(lse_shape, [8, 8, 0], 8);
        let (mut out, mut lse) = (
            Poisoned::new(gpu, POISON_BF16, out_len),
            Poisoned::new(gpu, POISON_F32, lse_len),
        );
        device
            .forward_into(
                Qkv {
                    q: third(0),
                    k: third(1),
                    v: third(2),
                },
                ForwardInto {
                    out: TensorMut::device(&mut out.buffer, shape)
                        .with_strides(out_strides)
                        .with_offset(8),
                    lse: TensorMut::device(&mut lse.buffer, lse_shape)
                        .with_strides(lse_strides)
                        .with_offset(8),
                },
                &options,
            )
            .unwrap();
        let got_out = gpu.download(&out.buffer).unwrap();
        let got_lse = gpu.download(&lse.buffer).unwrap();
        assert_eq!(bits(&take(&got_out, shape, out_strides, 8)), bits(want_out));
        assert_eq!(
            bits(&take(&got_lse, lse_shape, lse_strides, 8)),
            bits(want_lse)
        );
        // Nothing else in the buffers changed: put the views' values into
        // the poisoned images and compare whole.
        let image = place(
            want_out,
            POISON_BF16,
            out_len + GUARD,
            shape,
            out_strides,
            8,
        );
        assert_eq!(
            bits(&got_out),
            bits(&image),
            "out: written outside the view"
        );
        let image = place(
            want_lse,
            POISON_F32,
            lse_len + GUARD,
            lse_shape,
            lse_strides,
            8,
        );
        assert_eq!(
            bits(&got_lse),
            bits(&image),
            "lse: written outside the view"
        );

        // Batch 1 seen through a view whose batch stride is 3 elements (6
        // bytes: refused as misaligned before axes of length 1 were exempt).
        if b == 1 {
            let (mut out1, mut lse1) = (
                Poisoned::new(gpu, POISON_BF16, n),
                Poisoned::new(gpu, POISON_F32, numel(&lse_shape)),
            );
            let odd_strides = [3, h * d, d, 1];
            device
                .forward_into(
                    Qkv {
                        q: Tensor::device(&cq, shape).with_strides(odd_strides),
                        k: Tensor::device(&ck, shape).with_strides(odd_strides),
                        v: Tensor::device(&cv, shape).with_strides(odd_strides),
                    },
                    ForwardInto {
                        out: TensorMut::device(&mut out1.buffer, shape).with_strides(odd_strides),
                        lse: TensorMut::device(&mut lse1.buffer, lse_shape).with_strides([5, s, 1]),
                    },
                    &options,
                )
                .unwrap();
            let got = gpu.download(&out1.buffer).unwrap();
            assert_eq!(bits(&got[..n]), bits(want_out));
            assert!(bits(&got[n..]) == bits(&out1.before[n..]), "guard written");
            let got = gpu.download(&lse1.buffer).unwrap();
            assert_eq!(bits(&got[..numel(&lse_shape)]), bits(want_lse));
        }
    }
}
