//! `cargo xtask test`: THE test command (README, `.ci/run`).

use crate::cmd::{self, Result};
use crate::kernels;
use crate::tools::{self, Found};
use fa3_kernels_builder::inspect;
use std::fs;
use std::time::Instant;

/// Test names that need ptxas and cuobjdump; filtered out (and said so) when
/// either is missing.
const PTXAS_TESTS: &str = "ptxas_";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also run the GPU tests (needs an NVIDIA Hopper GPU and its driver).
    #[arg(long)]
    gpu: bool,
    /// Do not install missing CUDA tools from PyPI, and run without the
    /// sm_90a assembly and SASS checks when they are missing (otherwise a
    /// missing tool fails the run: CI must not pass on weaker checks
    /// because a machine lacks them).
    #[arg(long)]
    no_install: bool,
    /// Skip rustfmt, clippy (host and nvptx64 builds) and rustdoc.
    #[arg(long)]
    no_lint: bool,
}

pub fn run(args: &Args) -> Result {
    let start = Instant::now();
    let found = tools::ensure(!args.no_install);
    if !args.no_install && (found.ptxas.is_none() || found.cuobjdump.is_none()) {
        return Err(
            "ptxas/cuobjdump/nvdisasm are neither on this machine nor installable from \
                    PyPI (see the note above); `cargo xtask test --no-install` runs without \
                    the sm_90a assembly and SASS checks"
                .into(),
        );
    }
    check_module(&found)?;
    if !args.no_lint {
        lint()?;
    }
    workspace_tests(args, &found)?;
    eprintln!(
        "xtask test: passed in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// PTX rules always; ptxas assembly and per-kernel rules when ptxas is here.
fn check_module(found: &Found) -> Result {
    let module = kernels::build(&[], found)?;
    eprintln!("PTX module checked: {}", module.ptx.display());
    let Some(ptxas) = &found.ptxas else {
        eprintln!(
            "ptxas not found (no CUDA_HOME, FA3_CUDA_TOOLS, .tools/ or PATH entry): \
             skipping the sm_90a assembly and SASS checks"
        );
        return Ok(());
    };
    if found.cuobjdump.is_none() {
        eprintln!("cuobjdump/nvdisasm not found: skipping the SASS checks");
    }
    let text = fs::read_to_string(&module.ptx)?;
    let work = kernels::out_dir(&[]).join("inspect");
    let inspected = inspect::assemble_and_inspect(&text, ptxas, found.cuobjdump.as_deref(), &work)?;
    let mut broken = Vec::new();
    for k in &inspected {
        broken.extend(k.violations.iter().map(|v| format!("{}: {v}", k.kernel)));
    }
    if !broken.is_empty() {
        return Err(format!("kernel rules broken:\n  {}", broken.join("\n  ")).into());
    }
    eprintln!(
        "ptxas ({}) assembled {} kernel(s) for sm_90a: no spills, no local memory, no wgmma serialization",
        ptxas.display(),
        inspected.len()
    );
    Ok(())
}

fn lint() -> Result {
    cmd::run(cmd::cargo().args(["fmt", "--all", "--check"]))?;
    cmd::run(cmd::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    kernels::clippy()?;
    cmd::run(
        cmd::cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )
}

fn workspace_tests(args: &Args, found: &Found) -> Result {
    let mut test = cmd::cargo();
    test.args(["test", "--workspace"]);
    if let Some(dir) = found.dir() {
        test.env(fa3_kernels_builder::tools::TOOLS_ENV, dir);
    }
    let mut harness: Vec<&str> = Vec::new();
    if args.gpu {
        harness.push("--include-ignored");
    }
    if found.ptxas.is_none() || found.cuobjdump.is_none() {
        eprintln!("ptxas/cuobjdump not found: the `{PTXAS_TESTS}*` tests are filtered out");
        harness.extend(["--skip", PTXAS_TESTS]);
    }
    if !harness.is_empty() {
        test.arg("--").args(harness);
    }
    cmd::run(&mut test)
}
