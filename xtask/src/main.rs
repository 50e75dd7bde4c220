//! `cargo xtask`: the developer commands of the workspace.

mod ab;
mod bench;
mod bundle;
mod cmd;
mod inspect;
mod kernels;
mod test;
mod tools;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Developer commands for FlashAttention-3 in Rust.
#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install ptxas, cuobjdump and nvdisasm from PyPI into .tools/ (git-ignored)
    /// and show which ones are used.
    Tools(tools::Args),
    /// Build the PTX module (and an sm_90a cubin when ptxas is available) into
    /// target/kernels/.
    Build(kernels::Args),
    /// The test command: build and check the PTX, assemble it and check every
    /// kernel's resources and SASS, lint, then run the workspace tests.
    Test(test::Args),
    /// Make a self-contained folder that runs the GPU tests, the sanitizers and
    /// the benchmark on a Hopper machine without a Rust toolchain.
    Bundle(bundle::Args),
    /// Per-kernel registers, spills, shared memory, barriers, ptxas warnings
    /// and a SASS instruction histogram.
    Inspect(inspect::Args),
    /// Build fa3-bench in release and run it: fa3 against the official FA3,
    /// PyTorch SDPA and the cuBLAS GEMM ceiling on GPU 0 (`cargo xtask bench
    /// -- --help`).
    Bench(bench::Args),
    /// Build fa3-bench at several git revisions into one folder with a run.sh
    /// that times them in alternation on a GPU machine (A/B in one call).
    Ab(ab::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Tools(args) => tools::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Build(args) => kernels::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Test(args) => test::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Bundle(args) => bundle::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Inspect(args) => inspect::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(&args),
        Command::Ab(args) => ab::run(&args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
