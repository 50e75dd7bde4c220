//! The attention forward on the GPU against the CPU reference: FA3's
//! accuracy rule on the whole matrix of head dims, element types, masks,
//! sequence lengths and head layouts; bitwise-repeatable launches.

use fa3::reference::{self, Precision};
use fa3::{
    AttentionElement, AttentionOptions, Device, ForwardInto, Qkv, Storage, Tensor, TensorMut, bf16,
    f16,
};
use fa3_kernels::attn::tiles::LONG_KEYS;
use fa3_tests::accuracy::assert_accurate;
use fa3_tests::matrix::{Case, cases};
use fa3_tests::{random_normal, reduced, repeats};

/// Runs `case` on the GPU with poisoned outputs and checks out and lse
/// against the fp32 reference by FA3's rule.
fn check<T: AttentionElement + Into<f64>>(device: &Device, case: &Case, from: fn(f32) -> T) {
    let gpu = device.as_gpu().expect("a GPU device");
    let (q_shape, k_shape, lse_shape) = (case.q_shape(), case.k_shape(), case.lse_shape());
    let host = |shape: [usize; 4]| -> Vec<T> {
        random_normal(shape.iter().product())
            .into_iter()
            .map(from)
            .collect()
    };
    let (q, k, v) = (host(q_shape), host(k_shape), host(k_shape));
    let (dq, dk, dv) = (
        gpu.upload(&q).unwrap(),
        gpu.upload(&k).unwrap(),
        gpu.upload(&v).unwrap(),
    );
    let n_out: usize = q_shape.iter().product();
    let mut out = gpu.upload(&vec![from(f32::NAN); n_out]).unwrap();
    let mut lse = gpu
        .upload(&vec![f32::NAN; lse_shape.iter().product()])
        .unwrap();
    device
        .forward_into(
            Qkv {
                q: Tensor::device(&dq, q_shape),
                k: Tensor::device(&dk, k_shape),
                v: Tensor::device(&dv, k_shape),
            },
            ForwardInto {
                out: TensorMut::device(&mut out, q_shape),
                lse: TensorMut::device(&mut lse, lse_shape),
            },
            &case.options,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.label()));
    let (out, lse) = (gpu.download(&out).unwrap(), gpu.download(&lse).unwrap());

    let host_qkv = Qkv {
        q: Tensor::host(&q, q_shape),
        k: Tensor::host(&k, k_shape),
        v: Tensor::host(&v, k_shape),
    };
    let exact = reference::forward(host_qkv, &case.options, Precision::F32).unwrap();
    let naive = reference::naive_forward(host_qkv, &case.options).unwrap();
    let name = case.label();
    assert_accurate(&format!("{name} out"), &out, &exact.out, &naive.out, false);
    assert_accurate(&format!("{name} lse"), &lse, &exact.lse, &naive.lse, false);
}

/// The matrix for one head dim and element type (or a reduced one
/// under the sanitizers).
fn matrix<T: AttentionElement + Into<f64>>(head_dim: usize, from: fn(f32) -> T) {
    let device = Device::gpu(0).expect("a Hopper GPU");
    for case in cases(head_dim, reduced()) {
        check(&device, &case, from);
    }
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn forward_hdim64_matches_the_reference() {
    matrix::<bf16>(64, bf16::from_f32);
    matrix::<f16>(64, f16::from_f32);
}

/// hdim 64 switches to its long-sequence kernel at `LONG_KEYS` keys: both
/// sides of the switch, both masks, GQA, both element types (the matrix
/// reaches it only through its 4224-key case).
#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn forward_hdim64_on_both_sides_of_the_long_kernel_switch() {
    let device = Device::gpu(0).expect("a Hopper GPU");
    let long = LONG_KEYS as usize;
    let seqlens: &[usize] = if reduced() {
        &[long]
    } else {
        &[long - 1, long, long + 77]
    };
    for &seqlen_k in seqlens {
        for causal in [false, true] {
            let case = Case {
                batch: 1,
                seqlen_q: 200,
                seqlen_k,
                heads_q: 6,
                heads_kv: 2,
                head_dim: 64,
                options: AttentionOptions::new().causal(causal),
            };
            check(&device, &case, bf16::from_f32);
            check(&device, &case, f16::from_f32);
        }
    }
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn forward_hdim128_matches_the_reference() {
    matrix::<bf16>(128, bf16::from_f32);
    matrix::<f16>(128, f16::from_f32);
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn forward_hdim256_matches_the_reference() {
    matrix::<bf16>(256, bf16::from_f32);
    matrix::<f16>(256, f16::from_f32);
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn forward_launches_are_bitwise_repeatable() {
    let device = Device::gpu(0).expect("a Hopper GPU");
    let gpu = device.as_gpu().unwrap();
    let shape = [2, 1000, 6, 128];
    let kv_shape = [2, 1000, 2, 128];
    let host = |s: [usize; 4]| -> Vec<bf16> {
        random_normal(s.iter().product())
            .into_iter()
            .map(bf16::from_f32)
            .collect()
    };
    let (q, k, v) = (
        gpu.upload(&host(shape)).unwrap(),
        gpu.upload(&host(kv_shape)).unwrap(),
        gpu.upload(&host(kv_shape)).unwrap(),
    );
    let qkv = Qkv {
        q: Tensor::device(&q, shape),
        k: Tensor::device(&k, kv_shape),
        v: Tensor::device(&v, kv_shape),
    };
    let options = AttentionOptions::new().causal(true);
    let run_once = || match device.forward(qkv, &options).unwrap().out.into_storage() {
        Storage::Device(buffer) => gpu.download(&buffer).unwrap(),
        Storage::Host(_) => panic!("a GPU forward returns device memory"),
    };
    let first_out = run_once();
    for run in 1..repeats() {
        let out = run_once();
        assert!(
            out.iter()
                .zip(&first_out)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "run {run} differs"
        );
    }
}
