//! Quick start: runs the library's GPU path when a Hopper GPU is present and
//! says plainly what ran otherwise.
//!
//! Until the attention kernel lands, the GPU job is the smoke kernel
//! (`out = alpha * x + y` over 1M random floats), checked element by element.

use fa3::{Error, Gpu};
use rand::Rng;

const LEN: usize = 1 << 20;
const ALPHA: f32 = 0.75;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = rand::rng();
    let x: Vec<f32> = (0..LEN).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y: Vec<f32> = (0..LEN).map(|_| rng.random_range(-1.0..1.0)).collect();
    let want: Vec<f32> = x.iter().zip(&y).map(|(x, y)| ALPHA * x + y).collect();

    let gpu = match Gpu::new(0) {
        Ok(gpu) => gpu,
        Err(reason @ (Error::NoDriver | Error::NoDevice { .. } | Error::UnsupportedGpu { .. })) => {
            println!("No Hopper GPU found: {reason}.");
            println!(
                "Ran the smoke computation (out = {ALPHA} * x + y, {LEN} elements) on the CPU \
                 instead; out[0..3] = {:?}. Nothing ran on a GPU.",
                &want[..3]
            );
            return Ok(());
        }
        Err(other) => return Err(other.into()),
    };

    println!(
        "GPU 0: {} (kernels loaded from {:?})",
        gpu.name(),
        gpu.module_source()
    );
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
