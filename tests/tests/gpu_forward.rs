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
use fa3_tests::{random_normal, reduced, repeats};

/// (seqlen_q, seqlen_k) pairs of the issue: tails, seqlen_q != seqlen_k,
/// fully masked rows (799 queries, 3 keys, causal).
const SEQLENS: [(usize, usize); 9] = [
    (1, 1),
    (1, 239),
    (113, 203),
    (128, 217),
    (256, 512),
    (799, 3),
    (1000, 1000),
    (1024, 1023),
    (4224, 4224),
];
const HEADS: [(usize, usize); 3] = [(6, 6), (6, 2), (6, 1)];

struct Case {
    batch: usize,
    seqlen_q: usize,
    seqlen_k: usize,
    heads_q: usize,
    heads_kv: usize,
    head_dim: usize,
    options: AttentionOptions,
}

/// Runs `case` on the GPU with poisoned outputs and checks out and lse
/// against the fp32 reference by FA3's rule.
fn check<T: AttentionElement + Into<f64>>(device: &Device, case: &Case, from: fn(f32) -> T) {
    let gpu = device.as_gpu().expect("a GPU device");
    let q_shape = [case.batch, case.seqlen_q, case.heads_q, case.head_dim];
    let k_shape = [case.batch, case.seqlen_k, case.heads_kv, case.head_dim];
    let lse_shape = [case.batch, case.heads_q, case.seqlen_q];
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
        .unwrap_or_else(|e| panic!("{}: {e}", label(case)));
    let (out, lse) = (gpu.download(&out).unwrap(), gpu.download(&lse).unwrap());

    let host_qkv = Qkv {
        q: Tensor::host(&q, q_shape),
        k: Tensor::host(&k, k_shape),
        v: Tensor::host(&v, k_shape),
    };
    let exact = reference::forward(host_qkv, &case.options, Precision::F32).unwrap();
    let naive = reference::naive_forward(host_qkv, &case.options).unwrap();
    let name = label(case);
    assert_accurate(&format!("{name} out"), &out, &exact.out, &naive.out, false);
    assert_accurate(&format!("{name} lse"), &lse, &exact.lse, &naive.lse, false);
}

fn label(c: &Case) -> String {
    format!(
        "b{} sq{} sk{} h{}/{} d{} {:?}",
        c.batch, c.seqlen_q, c.seqlen_k, c.heads_q, c.heads_kv, c.head_dim, c.options
    )
}

/// The matrix for one head dim and element type (or a reduced one
/// under the sanitizers).
fn matrix<T: AttentionElement + Into<f64>>(head_dim: usize, from: fn(f32) -> T) {
    let device = Device::gpu(0).expect("a Hopper GPU");
    let seqlens: &[(usize, usize)] = if reduced() {
        &[(1, 239), (113, 203), (799, 3)]
    } else {
        &SEQLENS
    };
    for causal in [false, true] {
        for &(seqlen_q, seqlen_k) in seqlens {
            for (heads_q, heads_kv) in HEADS {
                let case = Case {
                    batch: if seqlen_q * seqlen_k > 1 << 20 { 1 } else { 2 },
                    seqlen_q,
                    seqlen_k,
                    heads_q,
                    heads_kv,
                    head_dim,
                    options: AttentionOptions::new().causal(causal),
                };
                check(&device, &case, from);
            }
        }
    }
    // Sliding windows, and a custom softmax scale.
    for (left, right, scale) in [
        (Some(17), Some(3), 0.3),
        (Some(0), Some(0), 0.125),
        (None, Some(40), 1.0),
    ] {
        let case = Case {
            batch: 2,
            seqlen_q: 300,
            seqlen_k: 333,
            heads_q: 6,
            heads_kv: 2,
            head_dim,
            options: AttentionOptions::new()
                .window(left, right)
                .softmax_scale(scale),
        };
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
