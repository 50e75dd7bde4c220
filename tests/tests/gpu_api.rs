//! Validation that needs device memory, and the GPU entry points that have
//! no kernel yet: typed errors, outputs untouched. They run on a Hopper
//! machine (`cargo xtask test --gpu`).

use fa3::{
    AttentionOptions, BackwardInputs, Device, DeviceBuffer, Error, F8E4M3, ForwardInto, Fp8Descale,
    Gpu, GradientsInto, Qkv, Tensor, TensorMut, Varlen, bf16,
};

const SHAPE: [usize; 4] = [1, 4, 2, 64];
const LSE: [usize; 3] = [1, 2, 4];

fn gpu_device() -> Device {
    Device::gpu(0).expect("a Hopper GPU")
}

fn gpu(device: &Device) -> &Gpu {
    device.as_gpu().expect("a GPU device")
}

fn ones(len: usize) -> Vec<bf16> {
    vec![bf16::ONE; len]
}

fn poisoned(gpu: &Gpu, len: usize) -> DeviceBuffer<bf16> {
    gpu.upload(&vec![bf16::NAN; len]).unwrap()
}

fn untouched(gpu: &Gpu, buffer: &DeviceBuffer<bf16>) -> bool {
    gpu.download(buffer).unwrap().iter().all(|x| x.is_nan())
}

/// The error of a forward into device `out` and `lse` that must fail.
fn forward_error(
    device: &Device,
    qkv: Qkv<'_, bf16, 4>,
    out: &mut DeviceBuffer<bf16>,
    lse: &mut DeviceBuffer<f32>,
    options: &AttentionOptions,
) -> Error {
    device
        .forward_into(
            qkv,
            ForwardInto {
                out: TensorMut::device(out, SHAPE),
                lse: TensorMut::device(lse, LSE),
            },
            options,
        )
        .unwrap_err()
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn misaligned_device_tensors_are_rejected() {
    let device = gpu_device();
    let gpu = gpu(&device);
    let n: usize = SHAPE.iter().product();
    let x = gpu.upload(&ones(n + 8)).unwrap();
    let mut out = poisoned(gpu, n);
    let mut lse = gpu.upload(&[f32::NAN; 8]).unwrap();
    let good = Tensor::device(&x, SHAPE);
    // One bf16 in: a 2-byte aligned base.
    let shifted = Tensor::device(&x, SHAPE).with_offset(1);
    let err = forward_error(
        &device,
        Qkv {
            q: shifted,
            k: good,
            v: good,
        },
        &mut out,
        &mut lse,
        &AttentionOptions::new(),
    );
    assert!(
        matches!(err, Error::Misaligned { tensor: "q", .. }),
        "{err}"
    );
    // A head stride of 65 elements: 130 bytes.
    let y = gpu.upload(&ones(4 * 2 * 65 + 8)).unwrap();
    let odd = Tensor::device(&y, SHAPE).with_strides([4 * 2 * 65, 2 * 65, 65, 1]);
    let err = forward_error(
        &device,
        Qkv {
            q: good,
            k: odd,
            v: good,
        },
        &mut out,
        &mut lse,
        &AttentionOptions::new(),
    );
    assert!(
        matches!(err, Error::Misaligned { tensor: "k", .. }),
        "{err}"
    );
    assert!(untouched(gpu, &out));
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn the_cpu_backend_rejects_device_tensors() {
    let device = gpu_device();
    let gpu = gpu(&device);
    let n: usize = SHAPE.iter().product();
    let on_gpu = gpu.upload(&ones(n)).unwrap();
    let host = ones(n);
    let (mut out, mut lse) = (vec![bf16::NAN; n], vec![f32::NAN; 8]);
    let err = Device::cpu()
        .forward_into(
            Qkv {
                q: Tensor::device(&on_gpu, SHAPE),
                k: Tensor::host(&host, SHAPE),
                v: Tensor::host(&host, SHAPE),
            },
            ForwardInto {
                out: TensorMut::host(&mut out, SHAPE),
                lse: TensorMut::host(&mut lse, LSE),
            },
            &AttentionOptions::new(),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::WrongMemory { tensor: "q", .. }),
        "{err}"
    );
    assert!(out.iter().all(|x| x.is_nan()) && lse.iter().all(|x| x.is_nan()));
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn a_gpu_backend_rejects_host_tensors() {
    let device = gpu_device();
    let gpu = gpu(&device);
    let n: usize = SHAPE.iter().product();
    let x = gpu.upload(&ones(n)).unwrap();
    let host = ones(n);
    let mut out = poisoned(gpu, n);
    let mut lse = gpu.upload(&[f32::NAN; 8]).unwrap();
    let t = Tensor::device(&x, SHAPE);
    let err = forward_error(
        &device,
        Qkv {
            q: t,
            k: t,
            v: Tensor::host(&host, SHAPE),
        },
        &mut out,
        &mut lse,
        &AttentionOptions::new(),
    );
    assert!(
        matches!(err, Error::WrongMemory { tensor: "v", .. }),
        "{err}"
    );
    assert!(untouched(gpu, &out));
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn gpu_entry_points_without_a_kernel_say_so() {
    let device = gpu_device();
    let gpu = gpu(&device);
    let n: usize = SHAPE.iter().product();
    let x = gpu.upload(&ones(n)).unwrap();
    let lse_in = gpu.upload(&[0.0f32; 8]).unwrap();
    let t = Tensor::device(&x, SHAPE);
    let options = AttentionOptions::new().causal(true);
    let unsupported = |err: Error, feature: &str| {
        assert!(
            matches!(err, Error::Unsupported { feature: f } if f == feature),
            "{err}"
        );
    };

    let mut out = poisoned(gpu, n);
    let mut lse = gpu.upload(&[f32::NAN; 8]).unwrap();
    // The forward has its kernel (gpu_forward.rs checks its results); a
    // softcap is the one option it does not take yet.
    let err = forward_error(
        &device,
        Qkv { q: t, k: t, v: t },
        &mut out,
        &mut lse,
        &options.softcap(30.0),
    );
    unsupported(err, "GPU forward with softcap");
    assert!(untouched(gpu, &out));

    let inputs = BackwardInputs {
        q: t,
        k: t,
        v: t,
        out: t,
        lse: Tensor::device(&lse_in, LSE),
        dout: t,
    };
    let (mut dq, mut dk, mut dv) = (poisoned(gpu, n), poisoned(gpu, n), poisoned(gpu, n));
    // The backward has its kernels too (gpu_backward.rs); softcap is not
    // taken yet there either.
    let err = device
        .backward_into(
            inputs,
            GradientsInto {
                dq: TensorMut::device(&mut dq, SHAPE),
                dk: TensorMut::device(&mut dk, SHAPE),
                dv: TensorMut::device(&mut dv, SHAPE),
            },
            &options.softcap(30.0),
        )
        .unwrap_err();
    unsupported(err, "GPU backward with softcap");
    for g in [&dq, &dk, &dv] {
        assert!(untouched(gpu, g));
    }
    unsupported(
        device.backward(inputs, &options.softcap(30.0)).unwrap_err(),
        "GPU backward with softcap",
    );

    let packed = [4, 2, 64];
    let p = Tensor::device(&x, packed);
    let varlen = Varlen {
        cu_seqlens_q: &[0, 1, 4],
        cu_seqlens_k: &[0, 3, 4],
        max_seqlen_q: 3,
        max_seqlen_k: 3,
    };
    let err = device
        .forward_varlen_into(
            Qkv { q: p, k: p, v: p },
            &varlen,
            ForwardInto {
                out: TensorMut::device(&mut out, packed),
                lse: TensorMut::device(&mut lse, [2, 4]),
            },
            &options,
        )
        .unwrap_err();
    unsupported(err, "GPU varlen forward");
    let err = device
        .backward_varlen_into(
            BackwardInputs {
                q: p,
                k: p,
                v: p,
                out: p,
                lse: Tensor::device(&lse_in, [2, 4]),
                dout: p,
            },
            &varlen,
            GradientsInto {
                dq: TensorMut::device(&mut dq, packed),
                dk: TensorMut::device(&mut dk, packed),
                dv: TensorMut::device(&mut dv, packed),
            },
            &options,
        )
        .unwrap_err();
    unsupported(err, "GPU varlen backward");

    // The FP8 forward has kernels for head_dim 64, 128 and 256
    // (gpu_fp8_forward.rs); 32 has none.
    let shape = [1, 4, 2, 32];
    let f8 = gpu.upload(&vec![F8E4M3::from_f32(1.0); n]).unwrap();
    let t8 = Tensor::device(&f8, shape);
    let err = device
        .forward_fp8_into(
            Qkv {
                q: t8,
                k: t8,
                v: t8,
            },
            &Fp8Descale {
                q: &[1.0, 1.0],
                k: &[1.0, 1.0],
                v: &[1.0, 1.0],
            },
            ForwardInto {
                out: TensorMut::device(&mut out, shape),
                lse: TensorMut::device(&mut lse, LSE),
            },
            &options,
        )
        .unwrap_err();
    unsupported(
        err,
        "GPU FP8 forward for this head dim (the FP8 kernels take head_dim = head_dim_v = 64, 128 or 256)",
    );

    for buffer in [&out, &dq, &dk, &dv] {
        assert!(untouched(gpu, buffer));
    }
    assert!(gpu.download(&lse).unwrap().iter().all(|x| x.is_nan()));
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn an_empty_problem_succeeds_on_the_gpu_without_launching() {
    let device = gpu_device();
    let gpu = gpu(&device);
    let x = gpu.upload(&ones(64)).unwrap();
    let t = Tensor::device(&x, [0, 4, 2, 64]);
    let mut out = poisoned(gpu, 64);
    let mut lse = gpu.upload(&[f32::NAN; 8]).unwrap();
    device
        .forward_into(
            Qkv { q: t, k: t, v: t },
            ForwardInto {
                out: TensorMut::device(&mut out, [0, 4, 2, 64]),
                lse: TensorMut::device(&mut lse, [0, 2, 4]),
            },
            &AttentionOptions::new(),
        )
        .unwrap();
    assert!(untouched(gpu, &out));
}
