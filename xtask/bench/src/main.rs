//! fa3-bench: GPU benchmarks. For now the smoke kernel's bandwidth; the
//! attention grid and its peers come with the attention kernels.

use clap::Parser;
use fa3::Gpu;
use rand::Rng;
use std::process::ExitCode;

/// Benchmarks of the fa3 kernels on GPU 0.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Elements per vector (f32).
    #[arg(long, default_value_t = 1 << 26)]
    len: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 20)]
    reps: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fa3-bench: cannot run: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> fa3::Result<()> {
    let gpu = Gpu::new(0)?;
    let mut rng = rand::rng();
    let host: Vec<f32> = (0..args.len).map(|_| rng.random_range(-1.0..1.0)).collect();
    let x = gpu.upload(&host)?;
    let y = gpu.upload(&host)?;
    let mut out = gpu.alloc::<f32>(args.len)?;

    // Checked before timed: a wrong kernel gets no number.
    gpu.smoke_axpy(0.5, &x, &y, &mut out)?;
    let got = gpu.download(&out)?;
    if let Some(i) = (0..args.len).find(|&i| got[i] != 0.5 * host[i] + host[i]) {
        eprintln!("smoke_axpy wrong at element {i}: no number reported");
        return Ok(());
    }

    let bytes = 3.0 * 4.0 * args.len as f64;
    let axpy = median_ms(&gpu, args.reps, || gpu.smoke_axpy(0.5, &x, &y, &mut out))?;
    println!(
        "{} on {} ({:?})",
        env!("CARGO_PKG_NAME"),
        gpu.name(),
        gpu.module_source()
    );
    println!(
        "smoke_axpy  len {:>10}  median {:8.3} ms  {:7.0} GB/s (bytes read + written)",
        args.len,
        axpy,
        bytes / axpy as f64 / 1e6
    );
    Ok(())
}

fn median_ms(
    gpu: &Gpu,
    reps: usize,
    mut work: impl FnMut() -> fa3::Result<()>,
) -> fa3::Result<f32> {
    work()?; // warm-up
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        times.push(gpu.time_ms(&mut work)?);
    }
    times.sort_by(f32::total_cmp);
    Ok(times[times.len() / 2])
}
