//! Quick start: runs the library's GPU path when a Hopper GPU is present and
//! says plainly what ran otherwise.
//!
//! Until the attention kernel lands, the GPU job is the smoke kernel
//! (`out = alpha * x + y` over 1M random floats), checked element by element.
//! Without a Hopper GPU, it computes a causal attention forward (bf16, batch
//! 2, seqlen 256, 8 heads, head_dim 64) on the CPU reference backend.

use fa3::{AttentionOptions, Device, Error, Gpu, Qkv, Tensor, bf16};
use rand::Rng;
use std::time::Instant;

const LEN: usize = 1 << 20;
const ALPHA: f32 = 0.75;
/// (batch, seqlen, heads, head_dim) of the CPU attention.
const SHAPE: [usize; 4] = [2, 256, 8, 64];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Gpu::new(0) {
        Ok(gpu) => smoke_on_gpu(&gpu),
        Err(reason @ (Error::NoDriver | Error::NoDevice { .. } | Error::UnsupportedGpu { .. })) => {
            println!("No Hopper GPU found: {reason}.");
            attention_on_cpu()
        }
        Err(other) => Err(other.into()),
    }
}

/// The CPU reference instead of the GPU: says so, and what it computed.
fn attention_on_cpu() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = rand::rng();
    let len = SHAPE.iter().product();
    let mut random = || -> Vec<bf16> {
        (0..len)
            .map(|_| bf16::from_f32(rng.random_range(-1.0..1.0)))
            .collect()
    };
    let (q, k, v) = (random(), random(), random());
    let qkv = Qkv {
        q: Tensor::host(&q, SHAPE),
        k: Tensor::host(&k, SHAPE),
        v: Tensor::host(&v, SHAPE),
    };
    let start = Instant::now();
    let result = Device::cpu().forward(qkv, &AttentionOptions::new().causal(true))?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
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
    let [batch, seqlen, heads, head_dim] = SHAPE;
    println!("Ran the CPU reference backend instead; nothing ran on a GPU.");
    println!(
        "Causal attention forward, bf16, batch {batch} × seqlen {seqlen} × {heads} heads × head_dim \
         {head_dim} (f32 accumulation): {ms:.1} ms; sum of out = {checksum:.4}, mean lse = {mean_lse:.4}"
    );
    Ok(())
}

/// The GPU job until the attention kernels land: the smoke kernel.
fn smoke_on_gpu(gpu: &Gpu) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "GPU 0: {} (kernels loaded from {:?}). The attention kernels are not written yet: \
         running the smoke kernel.",
        gpu.name(),
        gpu.module_source()
    );
    let mut rng = rand::rng();
    let x: Vec<f32> = (0..LEN).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y: Vec<f32> = (0..LEN).map(|_| rng.random_range(-1.0..1.0)).collect();
    let want: Vec<f32> = x.iter().zip(&y).map(|(x, y)| ALPHA * x + y).collect();
    let dx = gpu.upload(&x)?;
    let dy = gpu.upload(&y)?;
    let mut out = gpu.upload(&vec![f32::NAN; LEN])?;
    let ms = gpu.time_ms(|| gpu.smoke_axpy(ALPHA, &dx, &dy, &mut out))?;
    let got = gpu.download(&out)?;
    let wrong = got
        .iter()
        .zip(&want)
        .filter(|(g, w)| g.to_bits() != w.to_bits())
        .count();
    println!(
        "smoke kernel (out = {ALPHA} * x + y, {LEN} elements) on the GPU in {ms:.3} ms: \
         {} of {LEN} elements match the CPU exactly",
        LEN - wrong
    );
    if wrong == 0 {
        Ok(())
    } else {
        Err(format!("{wrong} elements differ from the CPU result").into())
    }
}
