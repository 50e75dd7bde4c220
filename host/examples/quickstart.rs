//! Quick start: a causal attention forward (bf16, batch 2, seqlen 256, 8
//! heads, head_dim 64) on the first Hopper GPU, checked against the CPU
//! reference; without a Hopper GPU it says so plainly and runs the CPU
//! reference backend alone.

use fa3::{AttentionOptions, Device, Error, ForwardOutput, Qkv, Storage, Tensor, bf16};
use rand::Rng;
use std::time::Instant;

/// (batch, seqlen, heads, head_dim).
const SHAPE: [usize; 4] = [2, 256, 8, 64];

type Outcome = Result<(), Box<dyn std::error::Error>>;

fn main() -> Outcome {
    let mut rng = rand::rng();
    let len = SHAPE.iter().product();
    let mut random = || -> Vec<bf16> {
        (0..len)
            .map(|_| bf16::from_f32(rng.random_range(-1.0..1.0)))
            .collect()
    };
    let (q, k, v) = (random(), random(), random());
    let host = Qkv {
        q: Tensor::host(&q, SHAPE),
        k: Tensor::host(&k, SHAPE),
        v: Tensor::host(&v, SHAPE),
    };
    let options = AttentionOptions::new().causal(true);
    let [batch, seqlen, heads, head_dim] = SHAPE;
    let what = format!(
        "causal attention forward, bf16, batch {batch} × seqlen {seqlen} × {heads} heads × head_dim {head_dim}"
    );

    let start = Instant::now();
    let cpu = Device::cpu().forward(host, &options)?;
    let cpu_ms = start.elapsed().as_secs_f64() * 1e3;
    let cpu_out = cpu
        .out
        .as_host()
        .ok_or("the CPU backend returns host memory")?;

    let device = match Device::gpu(0) {
        Ok(device) => device,
        Err(reason @ (Error::NoDriver | Error::NoDevice { .. } | Error::UnsupportedGpu { .. })) => {
            println!("No Hopper GPU found: {reason}.");
            println!("Ran the CPU reference backend instead; nothing ran on a GPU.");
            return report(&what, "CPU reference (f32 accumulation)", cpu_ms, &cpu);
        }
        Err(other) => return Err(other.into()),
    };
    let gpu = device.as_gpu().ok_or("Device::gpu gives a GPU device")?;
    println!(
        "GPU 0: {} (kernels loaded from {:?})",
        gpu.name(),
        gpu.module_source()
    );
    let (dq, dk, dv) = (gpu.upload(&q)?, gpu.upload(&k)?, gpu.upload(&v)?);
    let on_gpu = Qkv {
        q: Tensor::device(&dq, SHAPE),
        k: Tensor::device(&dk, SHAPE),
        v: Tensor::device(&dv, SHAPE),
    };
    device.forward(on_gpu, &options)?; // loads the kernel; the timed call below does not
    let mut result = None;
    let gpu_ms = gpu.time_ms(|| {
        result = Some(device.forward(on_gpu, &options)?);
        Ok(())
    })?;
    let result = result.ok_or("the timed forward ran")?;
    let out = match result.out.storage() {
        Storage::Device(buffer) => gpu.download(buffer)?,
        Storage::Host(_) => return Err("a GPU forward returns device memory".into()),
    };
    let max_diff = out
        .iter()
        .zip(cpu_out)
        .map(|(g, c)| (g.to_f32() - c.to_f32()).abs())
        .fold(0.0f32, f32::max);
    println!(
        "{what} on the GPU in {gpu_ms:.3} ms (CPU reference: {cpu_ms:.1} ms); largest difference from the CPU reference: {max_diff:.2e}"
    );
    if max_diff < 0.02 {
        Ok(())
    } else {
        Err(format!("the GPU result differs from the CPU reference by {max_diff}").into())
    }
}

/// What the CPU reference computed.
fn report(what: &str, backend: &str, ms: f64, result: &ForwardOutput<bf16, 4, 3>) -> Outcome {
    let out = result
        .out
        .as_host()
        .ok_or("the CPU backend returns host memory")?;
    let lse = result
        .lse
        .as_host()
        .ok_or("the CPU backend returns host memory")?;
    let checksum: f64 = out.iter().map(|x| f64::from(x.to_f32())).sum();
    let mean_lse = lse.iter().map(|&x| f64::from(x)).sum::<f64>() / lse.len() as f64;
    println!(
        "{what} on the {backend}: {ms:.1} ms; sum of out = {checksum:.4}, mean lse = {mean_lse:.4}"
    );
    Ok(())
}
