//! `cargo xtask bench [ARGS]`: builds `fa3-bench` in release and runs it
//! with ARGS, and with the official FA3 wheels of `../shared/peers` when
//! they are there and ARGS name no `--peer-wheels` (the bundle's `run.sh
//! bench` runs the same binary with the wheels it carries).

use crate::cmd::{self, Result};
use crate::tools;
use std::process::{Command, ExitCode};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flags for fa3-bench (`cargo xtask bench --help` shows this command's;
    /// `cargo xtask bench -- --help` shows fa3-bench's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// fa3-bench's exit code is the command's: 2 says it cannot run here.
pub fn run(args: &Args) -> Result<ExitCode> {
    let mut build = cmd::cargo();
    build.args(["build", "--release", "--quiet", "-p", cmd::BENCH_PACKAGE]);
    // The cubin is built when ptxas is found (never installed from here).
    if let Some(dir) = tools::ensure(false).dir() {
        build.env(fa3_kernels_builder::tools::TOOLS_ENV, dir);
    }
    let status = build
        .status()
        .map_err(|e| format!("could not start cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building fa3-bench failed ({status})").into());
    }
    let exe = cmd::target_dir().join("release").join(cmd::BENCH_PACKAGE);
    let mut bench = Command::new(&exe);
    bench.args(&args.args);
    let chosen = |flag: &str| args.args.iter().any(|a| a.starts_with(flag));
    if let Some(wheels) = cmd::default_peer_wheels().filter(|_| !chosen("--peer-wheels")) {
        bench.arg("--peer-wheels").arg(wheels);
    }
    let status = bench
        .status()
        .map_err(|e| format!("could not start {}: {e}", exe.display()))?;
    Ok(status
        .code()
        .and_then(|code| u8::try_from(code).ok())
        .map_or(ExitCode::FAILURE, ExitCode::from))
}
