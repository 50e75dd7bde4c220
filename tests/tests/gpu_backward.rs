//! The attention backward on the GPU against the f64 reference backward:
//! FA3's accuracy rule for dq, dk and dv (whole tensors) on the forward's
//! matrix of head dims, element types, masks, lengths and head layouts;
//! deterministic launches bitwise repeatable.

use fa3::reference::{self, Precision};
use fa3::{
    AttentionElement, AttentionOptions, BackwardInputs, Device, ForwardInto, GradientsInto, Qkv,
    Tensor, TensorMut, bf16, f16,
};
use fa3_tests::accuracy;
use fa3_tests::matrix::{Case, cases};
use fa3_tests::{random_normal, reduced, repeats};

fn random<T>(shape: [usize; 4], from: fn(f32) -> T) -> Vec<T> {
    random_normal(shape.iter().product())
        .into_iter()
        .map(from)
        .collect()
}

/// Fresh inputs of `case` on the GPU: q, k, v, dout and the GPU forward's
/// out and lse.
struct Inputs<T> {
    host: [Vec<T>; 4],
    device: [fa3::DeviceBuffer<T>; 4],
    out: fa3::DeviceBuffer<T>,
    lse: fa3::DeviceBuffer<f32>,
}

impl<T: AttentionElement> Inputs<T> {
    fn new(device: &Device, case: &Case, from: fn(f32) -> T) -> Self {
        let gpu = device.as_gpu().expect("a GPU device");
        let (q_shape, k_shape) = (case.q_shape(), case.k_shape());
        let host = [
            random(q_shape, from),
            random(k_shape, from),
            random(k_shape, from),
            random(q_shape, from),
        ];
        let device_inputs = host.each_ref().map(|h| gpu.upload(h).unwrap());
        let mut out = gpu.upload(&vec![from(f32::NAN); host[0].len()]).unwrap();
        let mut lse = gpu
            .upload(&vec![f32::NAN; case.lse_shape().iter().product()])
            .unwrap();
        let [q, k, v, _] = &device_inputs;
        device
            .forward_into(
                Qkv {
                    q: Tensor::device(q, q_shape),
                    k: Tensor::device(k, k_shape),
                    v: Tensor::device(v, k_shape),
                },
                ForwardInto {
                    out: TensorMut::device(&mut out, q_shape),
                    lse: TensorMut::device(&mut lse, case.lse_shape()),
                },
                &case.options,
            )
            .unwrap_or_else(|e| panic!("{} forward: {e}", case.label()));
        Self {
            host,
            device: device_inputs,
            out,
            lse,
        }
    }

    fn backward_inputs<'a>(&'a self, case: &Case) -> BackwardInputs<'a, T, 4, 3> {
        let [q, k, v, dout] = &self.device;
        let (q_shape, k_shape) = (case.q_shape(), case.k_shape());
        BackwardInputs {
            q: Tensor::device(q, q_shape),
            k: Tensor::device(k, k_shape),
            v: Tensor::device(v, k_shape),
            out: Tensor::device(&self.out, q_shape),
            lse: Tensor::device(&self.lse, case.lse_shape()),
            dout: Tensor::device(dout, q_shape),
        }
    }

    /// The GPU backward into NaN-poisoned gradients: what it returned, and
    /// the gradients downloaded after it.
    fn try_gpu_backward(
        &self,
        device: &Device,
        case: &Case,
        options: &AttentionOptions,
    ) -> (fa3::Result<()>, [Vec<T>; 3]) {
        let gpu = device.as_gpu().unwrap();
        let poison = |len: usize| gpu.upload(&vec![T::from_f32(f32::NAN); len]).unwrap();
        let (mut dq, mut dk, mut dv) = (
            poison(self.host[0].len()),
            poison(self.host[1].len()),
            poison(self.host[2].len()),
        );
        let (q_shape, k_shape) = (case.q_shape(), case.k_shape());
        let result = device.backward_into(
            self.backward_inputs(case),
            GradientsInto {
                dq: TensorMut::device(&mut dq, q_shape),
                dk: TensorMut::device(&mut dk, k_shape),
                dv: TensorMut::device(&mut dv, k_shape),
            },
            options,
        );
        (result, [dq, dk, dv].map(|b| gpu.download(&b).unwrap()))
    }

    /// The GPU backward's gradients (see `try_gpu_backward`).
    fn gpu_backward(
        &self,
        device: &Device,
        case: &Case,
        options: &AttentionOptions,
    ) -> [Vec<T>; 3] {
        let (result, grads) = self.try_gpu_backward(device, case, options);
        result.unwrap_or_else(|e| panic!("{} backward: {e}", case.label()));
        grads
    }
}

/// Runs `case`'s backward on the GPU and checks dq, dk, dv against the f64
/// reference by FA3's rule (the naive same-precision backward as the
/// baseline): what failed, one message per gradient. Each gradient's
/// error / bound goes to stderr (`--nocapture` shows the margins).
fn check<T: AttentionElement + Into<f64>>(
    device: &Device,
    case: &Case,
    from: fn(f32) -> T,
) -> Vec<String> {
    let inputs = Inputs::new(device, case, from);
    let [dq, dk, dv] = inputs.gpu_backward(device, case, &case.options);
    let [q, k, v, dout] = &inputs.host;
    let (q_shape, k_shape) = (case.q_shape(), case.k_shape());
    let qkv = Qkv {
        q: Tensor::host(q, q_shape),
        k: Tensor::host(k, k_shape),
        v: Tensor::host(v, k_shape),
    };
    let dout = Tensor::host(dout, q_shape);
    let exact = reference::backward(qkv, dout, &case.options, Precision::F64).unwrap();
    let naive = reference::naive_backward(qkv, dout, &case.options).unwrap();
    let name = case.label();
    let max = |x: &[T]| x.iter().map(|&v| v.into().abs()).fold(0.0f64, f64::max);
    // dq = scale · dS·K and dk = scale · dSᵀ·Q: see `structural_zero`.
    let ds_noise = 2.0
        * case.head_dim as f64
        * 2f64.powi(-24)
        * max(&inputs.host[3])
        * max(v)
        * f64::from(case.options.effective_softmax_scale(case.head_dim));
    let mut failures = Vec::new();
    let mut record = |result: Result<(String, f64), String>| match result {
        Ok((what, ratio)) => eprintln!("{what}: error / bound {ratio:.3}"),
        Err(message) => failures.push(message),
    };
    for (what, got, exact, naive, other) in [
        (
            "dq",
            &dq,
            &exact.dq,
            &naive.dq,
            max(k) * case.seqlen_k as f64,
        ),
        (
            "dk",
            &dk,
            &exact.dk,
            &naive.dk,
            max(q) * case.seqlen_q as f64,
        ),
    ] {
        let label = format!("{name} {what}");
        record(if exact.iter().all(|&x| x == 0.0) {
            structural_zero(&label, max(got), ds_noise * other).map(|r| (label, r))
        } else {
            accurate(&label, got, exact, naive)
        });
    }
    record(accurate(&format!("{name} dv"), &dv, &exact.dv, &naive.dv));
    failures
}

/// FA3's rule (`fa3_tests::accuracy::check`): the error / bound ratio, or
/// why it fails.
fn accurate<T: Copy + Into<f64>>(
    label: &str,
    got: &[T],
    exact: &[f64],
    naive: &[T],
) -> Result<(String, f64), String> {
    let report = accuracy::check(label, got, exact, naive, false)?;
    Ok((label.to_string(), report.error / report.bound()))
}

/// When every query sees at most one key, P = 1 and dP = D exactly: the
/// exact dS, dq and dk are 0, and so is FA3's bound. The kernel's dP (tensor
/// cores) and D (the preprocess) sum the same head_dim products in
/// different orders; what is left of dS is their f32 rounding, at most
/// head_dim · 2^-24 · max|dO| · max|V| each (times 2: both sides), and
/// dq / dk sum it over at most seqlen_k keys / seqlen_q queries, times
/// scale · max|K| / max|Q|. The naive baseline
/// cancels exactly (it takes D from its own dP), so this is the f32 noise
/// term of the rule, made explicit for an exact zero.
fn structural_zero(name: &str, worst: f64, noise: f64) -> Result<f64, String> {
    if worst <= noise {
        Ok(worst / noise)
    } else {
        Err(format!(
            "{name}: exact 0, got {worst:.3e} > f32 noise {noise:.3e}"
        ))
    }
}

/// Every case of the matrix at `head_dim`, all checked before failing, so
/// that one run names every case outside the rule.
fn matrix<T: AttentionElement + Into<f64>>(head_dim: usize, from: fn(f32) -> T) {
    let device = Device::gpu(0).expect("a Hopper GPU");
    let mut failures = Vec::new();
    for case in cases(head_dim, reduced()) {
        failures.extend(check(&device, &case, from));
        // The deterministic order must give accurate gradients too.
        let deterministic = Case {
            options: case.options.deterministic(true),
            ..case
        };
        if case.seqlen_q == 113 {
            failures.extend(check(&device, &deterministic, from));
        }
    }
    assert!(
        failures.is_empty(),
        "{} check(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn backward_hdim64_bf16_matches_the_reference() {
    matrix::<bf16>(64, bf16::from_f32);
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn backward_hdim64_f16_matches_the_reference() {
    matrix::<f16>(64, f16::from_f32);
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn backward_hdim128_bf16_matches_the_reference() {
    matrix::<bf16>(128, bf16::from_f32);
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn backward_hdim128_f16_matches_the_reference() {
    matrix::<f16>(128, f16::from_f32);
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn backward_hdim256_bf16_matches_the_reference() {
    matrix::<bf16>(256, bf16::from_f32);
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn backward_hdim256_f16_matches_the_reference() {
    matrix::<f16>(256, f16::from_f32);
}

/// `deterministic(true)`: 100 launches give bitwise identical gradients
/// (causal and not, GQA: dQ's ordered reductions, staged by the writer warp
/// (hdim 64, 128) and from registers (hdim 256), and the grouped dK/dV
/// sums).
#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn deterministic_backward_is_bitwise_repeatable() {
    let device = Device::gpu(0).expect("a Hopper GPU");
    for (head_dim, causal) in [
        (64, false),
        (64, true),
        (128, false),
        (128, true),
        (256, false),
        (256, true),
    ] {
        let case = Case {
            batch: 2,
            seqlen_q: 1000,
            seqlen_k: 1100,
            heads_q: 6,
            heads_kv: 2,
            head_dim,
            options: AttentionOptions::new().causal(causal).deterministic(true),
        };
        let inputs = Inputs::new(&device, &case, bf16::from_f32);
        let first = inputs.gpu_backward(&device, &case, &case.options);
        for run in 1..repeats() {
            if run == repeats() / 2 {
                // Once from memory the workspace pool has given back.
                let gpu = device.as_gpu().expect("a GPU device");
                gpu.trim_workspace().unwrap();
            }
            let again = inputs.gpu_backward(&device, &case, &case.options);
            for (name, (a, b)) in ["dq", "dk", "dv"].iter().zip(first.iter().zip(&again)) {
                assert!(
                    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "hdim {head_dim} causal {causal}: run {run}: {name} differs"
                );
            }
        }
    }
}

/// The GPU refuses what its kernels do not cover yet (softcap) with a
/// typed error, before writing anything.
#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn unsupported_backward_is_a_typed_error() {
    let device = Device::gpu(0).expect("a Hopper GPU");
    let case = Case {
        batch: 1,
        seqlen_q: 64,
        seqlen_k: 64,
        heads_q: 2,
        heads_kv: 2,
        head_dim: 128,
        options: AttentionOptions::new(),
    };
    let inputs = Inputs::new(&device, &case, bf16::from_f32);
    let softcap = case.options.softcap(30.0);
    let (result, grads) = inputs.try_gpu_backward(&device, &case, &softcap);
    let err = result.unwrap_err();
    assert!(matches!(err, fa3::Error::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("softcap"), "{err}");
    for back in grads {
        assert!(back.iter().all(|x| x.is_nan()), "written on error");
    }
}
