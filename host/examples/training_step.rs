//! One attention training step on the first Hopper GPU: the forward, then
//! the backward from its `out` and `lse` (bf16, causal, GQA: batch 2, seqlen
//! 512, 8 query heads over 2 K/V heads, head_dim 128), the gradients checked
//! against the CPU reference's. Without a Hopper GPU it says so plainly and
//! runs the CPU reference alone.

use fa3::{AttentionOptions, BackwardInputs, Device, Error, Gradients, Qkv, Storage, Tensor, bf16};
use rand::Rng;

const Q_SHAPE: [usize; 4] = [2, 512, 8, 128];
const KV_SHAPE: [usize; 4] = [2, 512, 2, 128];

type Outcome = Result<(), Box<dyn std::error::Error>>;

fn main() -> Outcome {
    let mut rng = rand::rng();
    let mut random = |shape: [usize; 4]| -> Vec<bf16> {
        (0..shape.iter().product())
            .map(|_| bf16::from_f32(rng.random_range(-1.0..1.0)))
            .collect()
    };
    let (q, k, v, dout) = (
        random(Q_SHAPE),
        random(KV_SHAPE),
        random(KV_SHAPE),
        random(Q_SHAPE),
    );
    let options = AttentionOptions::new().causal(true);
    let step = |device: &Device, q, k, v, dout| -> fa3::Result<Gradients<bf16, 4>> {
        let qkv = Qkv { q, k, v };
        let fwd = device.forward(qkv, &options)?;
        device.backward(
            BackwardInputs {
                q,
                k,
                v,
                out: fwd.out.view(),
                lse: fwd.lse.view(),
                dout,
            },
            &options,
        )
    };
    let cpu = step(
        &Device::cpu(),
        Tensor::host(&q, Q_SHAPE),
        Tensor::host(&k, KV_SHAPE),
        Tensor::host(&v, KV_SHAPE),
        Tensor::host(&dout, Q_SHAPE),
    )?;
    let device = match Device::gpu(0) {
        Ok(device) => device,
        Err(reason @ (Error::NoDriver | Error::NoDevice { .. } | Error::UnsupportedGpu { .. })) => {
            println!("No Hopper GPU found: {reason}.");
            println!("Ran the training step on the CPU reference backend only.");
            return Ok(());
        }
        Err(other) => return Err(other.into()),
    };
    let gpu = device.as_gpu().ok_or("Device::gpu gives a GPU device")?;
    let (q_gpu, k_gpu) = (gpu.upload(&q)?, gpu.upload(&k)?);
    let (v_gpu, dout_gpu) = (gpu.upload(&v)?, gpu.upload(&dout)?);
    let grads = step(
        &device,
        Tensor::device(&q_gpu, Q_SHAPE),
        Tensor::device(&k_gpu, KV_SHAPE),
        Tensor::device(&v_gpu, KV_SHAPE),
        Tensor::device(&dout_gpu, Q_SHAPE),
    )?;
    let mut worst = 0.0f32;
    for (name, got, want) in [
        ("dq", grads.dq.storage(), cpu.dq.as_host()),
        ("dk", grads.dk.storage(), cpu.dk.as_host()),
        ("dv", grads.dv.storage(), cpu.dv.as_host()),
    ] {
        let Storage::Device(buffer) = got else {
            return Err("a GPU backward returns device memory".into());
        };
        let got = gpu.download(buffer)?;
        let want = want.ok_or("the CPU backend returns host memory")?;
        let diff = got
            .iter()
            .zip(want)
            .map(|(g, c)| (g.to_f32() - c.to_f32()).abs())
            .fold(0.0f32, f32::max);
        println!("{name}: largest difference from the CPU reference {diff:.2e}");
        worst = worst.max(diff);
    }
    println!(
        "forward + backward on {} checked against the CPU reference",
        gpu.name()
    );
    if worst < 0.05 {
        Ok(())
    } else {
        Err(format!("the GPU gradients differ from the CPU reference by {worst}").into())
    }
}
