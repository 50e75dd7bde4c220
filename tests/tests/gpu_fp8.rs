//! The GPU FP8 quantizer against the CPU backend (`Device::quantize_fp8_into`):
//! every scaling, with and without incoherent processing, bf16 and f16,
//! outputs poisoned. They run on a Hopper machine (`cargo xtask test --gpu`).

use fa3::{
    AttentionElement, Device, E4M3_MAX, F8E4M3, Fp8Quantize, Fp8QuantizedInto, Fp8Scaling, Gpu,
    Tensor, TensorMut, bf16, f16, hadamard_rotate,
};
use fa3_tests::fp8_accuracy::paper_inputs;

const SCALINGS: [Fp8Scaling; 5] = [
    Fp8Scaling::PerTensor,
    Fp8Scaling::PerHead,
    Fp8Scaling::PerBlock { rows: 128 },
    Fp8Scaling::PerBlock { rows: 1 },
    // Groups longer than one CTA's chunk (256 positions).
    Fp8Scaling::PerBlock { rows: 600 },
];

fn quantize_cpu<T: AttentionElement>(
    x: &[T],
    shape: [usize; 4],
    options: &Fp8Quantize,
) -> (Vec<F8E4M3>, Vec<f32>) {
    let mut data = vec![F8E4M3::from_f32(f32::NAN); x.len()];
    let mut scales = vec![f32::NAN; options.scaling.scales_shape(shape).iter().product()];
    Device::cpu()
        .quantize_fp8_into(
            Tensor::host(x, shape),
            Fp8QuantizedInto {
                data: TensorMut::host(&mut data, shape),
                scales: TensorMut::host(&mut scales, options.scaling.scales_shape(shape)),
            },
            options,
        )
        .unwrap();
    (data, scales)
}

fn quantize_gpu<T: AttentionElement + fa3::Element>(
    device: &Device,
    x: &[T],
    shape: [usize; 4],
    options: &Fp8Quantize,
) -> (Vec<F8E4M3>, Vec<f32>) {
    let gpu: &Gpu = device.as_gpu().expect("a GPU device");
    let scales_shape = options.scaling.scales_shape(shape);
    // Buffers of at least one element (a view may be smaller than its buffer).
    let len = x.len().max(1);
    let mut padded = x.to_vec();
    padded.resize(len, T::from_f32(0.0));
    let x_dev = gpu.upload(&padded).unwrap();
    let mut data = gpu.upload(&vec![F8E4M3::from_f32(f32::NAN); len]).unwrap();
    let mut scales = gpu
        .upload(&vec![f32::NAN; scales_shape.iter().product()])
        .unwrap();
    device
        .quantize_fp8_into(
            Tensor::device(&x_dev, shape),
            Fp8QuantizedInto {
                data: TensorMut::device(&mut data, shape),
                scales: TensorMut::device(&mut scales, scales_shape),
            },
            options,
        )
        .unwrap();
    (gpu.download(&data).unwrap(), gpu.download(&scales).unwrap())
}

/// The GPU's scales are the CPU's to f32 rounding of the rotation, every
/// value is within e4m3 rounding of the exact (rotated) input, and every
/// group reaches 448.
fn check<T: AttentionElement + fa3::Element>(device: &Device, shape: [usize; 4]) {
    let [_, seqlen, heads, dim] = shape;
    let x: Vec<T> = paper_inputs(shape.iter().product());
    for scaling in SCALINGS {
        for seed in [None, Some(17)] {
            let options = Fp8Quantize {
                scaling,
                hadamard_seed: seed,
            };
            let label = format!("{} {shape:?} {scaling:?} {seed:?}", T::NAME);
            let (_, cpu_scales) = quantize_cpu(&x, shape, &options);
            let (data, scales) = quantize_gpu(device, &x, shape, &options);
            for (g, c) in scales.iter().zip(&cpu_scales) {
                assert!((g - c).abs() <= 1e-5 * c, "{label}: scale {g} against {c}");
            }
            let mut exact: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
            if let Some(seed) = seed {
                exact
                    .chunks_exact_mut(dim)
                    .for_each(|r| hadamard_rotate(r, seed));
            }
            let mut group_max = vec![0.0f32; scales.len()];
            for (i, (d, e)) in data.iter().zip(&exact).enumerate() {
                let row = i / dim;
                let (b, s, h) = (row / (seqlen * heads), (row / heads) % seqlen, row % heads);
                let g = scaling.group((b, s, h), heads, seqlen);
                let scale = f64::from(scales[g]);
                group_max[g] = group_max[g].max(d.to_f32().abs());
                // Half an e4m3 ulp (2^-4 of the value; 2^-10 of the scale
                // for subnormals), and the f32 rotation's own error.
                let error = (f64::from(d.to_f32()) * scale - e).abs();
                let bound = (e.abs() / 16.0).max(scale / 1024.0) * (1.0 + 1e-5) + 1e-6 * e.abs();
                assert!(error <= bound, "{label} [{i}]: {error:.3e} > {bound:.3e}");
            }
            assert!(
                group_max.iter().all(|&m| m == E4M3_MAX),
                "{label}: a group below 448"
            );
        }
    }
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn gpu_quantizer_matches_the_cpu_backend() {
    let device = Device::gpu(0).expect("a Hopper GPU");
    for shape in [
        [2, 300, 3, 64],
        [1, 1000, 2, 128],
        [2, 77, 1, 256],
        [1, 40, 4, 16],
    ] {
        check::<bf16>(&device, shape);
        check::<f16>(&device, shape);
    }
}

/// No positions: the per-head scales are still written (1); the per-block
/// ones do not exist.
#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn gpu_quantizer_of_empty_sequences_writes_unit_scales() {
    let device = Device::gpu(0).expect("a Hopper GPU");
    let shape = [2, 0, 3, 64];
    let (_, scales) =
        quantize_gpu::<bf16>(&device, &[], shape, &Fp8Quantize::new(Fp8Scaling::PerHead));
    assert_eq!(scales, [1.0; 6]);
}
