//! `cargo xtask bundle`: release test binaries, the bench, the kernel module
//! and `run.sh`, in one folder that runs without a Rust toolchain, with the
//! official FA3 wheels for the bench's peers.
//!
//! The binaries and the module travel as one `payload.tar.xz` that `run.sh`
//! unpacks: every test binary embeds the same kernel module, so xz packs
//! the ~48 MB of them into ~3 MB, and a bundle with the 32 MB of FA3 wheels
//! stays well under the 64 MiB a GPU machine call carries.

use crate::cmd::{self, Result};
use crate::kernels;
use crate::tools;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const RUN_SH: &str = include_str!("../templates/run.sh");
/// Packages whose test binaries go into the bundle.
const TEST_PACKAGES: &[&str] = &["fa3", "fa3-tests"];

/// What `run.sh` unpacks.
const PAYLOAD: &str = "payload.tar.xz";
const PAYLOAD_DIRS: [&str; 3] = ["tests", "bin", "kernels"];
/// Where the wheels go, for `run.sh bench`.
const PEERS_DIR: &str = "peers";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output folder (replaced). Default: `bundle/` in the workspace (git-ignored).
    dir: Option<PathBuf>,
    /// Folder of Python wheels (the official FA3 builds) that `run.sh bench`
    /// installs for the peers. Default: `../shared/peers` when it exists.
    #[arg(long, value_name = "DIR")]
    peers: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| cmd::workspace().join("bundle"));
    let found = tools::ensure(true);
    if found.ptxas.is_none() {
        eprintln!("note: ptxas not found: the bundle carries PTX only (driver JIT, no cubin)");
    }
    let module = kernels::build(&[], &found)?;

    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    for sub in PAYLOAD_DIRS {
        fs::create_dir_all(dir.join(sub))?;
    }

    let mut test_build = cmd::cargo();
    test_build.args(["test", "--release", "--no-run"]);
    for p in TEST_PACKAGES {
        test_build.args(["-p", p]);
    }
    for (name, exe) in executables(&mut test_build, &found, true)? {
        copy_stripped(&exe, &dir.join("tests").join(name))?;
    }
    // The bench and the examples (the quick start is the README's main
    // job; the training step runs a forward and a backward).
    let mut bench_build = cmd::cargo();
    bench_build.args(["build", "--release", "-p", cmd::BENCH_PACKAGE]);
    let mut examples_build = cmd::cargo();
    examples_build.args(["build", "--release", "-p", "fa3"]);
    examples_build.args(["--example", "quickstart", "--example", "training_step"]);
    for build in [&mut bench_build, &mut examples_build] {
        for (name, exe) in executables(build, &found, false)? {
            copy_stripped(&exe, &dir.join("bin").join(name))?;
        }
    }

    fs::copy(
        &module.ptx,
        dir.join("kernels").join(fa3_kernels_builder::PTX_FILE),
    )?;
    if let Some(cubin) = &module.cubin {
        fs::copy(
            cubin,
            dir.join("kernels").join(fa3_kernels_builder::CUBIN_FILE),
        )?;
    }
    pack(&dir)?;
    let wheels = match args.peers.clone().or_else(cmd::default_peer_wheels) {
        Some(peers) => copy_wheels(&peers, &dir.join(PEERS_DIR))?,
        None => {
            eprintln!(
                "note: no peer wheels (no --peers, no ../shared/peers): the bench will report FA3 missing"
            );
            0
        }
    };
    let run_sh = dir.join("run.sh");
    fs::write(&run_sh, RUN_SH)?;
    make_executable(&run_sh)?;

    println!(
        "bundle: {} ({:.1} MiB, {wheels} peer wheel(s))",
        dir.display(),
        size_of(&dir)? as f64 / (1 << 20) as f64
    );
    println!(
        "  on the GPU machine: {}/run.sh test | sanitize | bench",
        dir.display()
    );
    Ok(())
}

/// Runs a cargo build with JSON messages and returns `(bundle name, path)` of
/// each executable it produced: test harnesses when `tests`, binaries otherwise.
fn executables(
    build: &mut Command,
    found: &tools::Found,
    tests: bool,
) -> Result<Vec<(String, PathBuf)>> {
    build
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    if let Some(dir) = found.dir() {
        build.env(fa3_kernels_builder::tools::TOOLS_ENV, dir);
    }
    eprintln!(
        "$ cargo {}",
        build
            .get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = build.output()?;
    if !out.status.success() {
        return Err("cargo build for the bundle failed (see above)".into());
    }
    let mut found_exes = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" || msg["profile"]["test"].as_bool() != Some(tests) {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        let target = msg["target"]["name"].as_str().unwrap_or("unnamed");
        let is_lib = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|v| v == "lib"));
        let name = if is_lib {
            format!("{target}-unit")
        } else {
            target.to_string()
        };
        found_exes.push((name, PathBuf::from(exe)));
    }
    if found_exes.is_empty() {
        return Err("cargo reported no executables".into());
    }
    Ok(found_exes)
}

/// Replaces the payload folders of `dir` by one xz tarball of them.
fn pack(dir: &Path) -> Result {
    let mut tar = Command::new("tar");
    tar.arg("-cJf")
        .arg(dir.join(PAYLOAD))
        .arg("-C")
        .arg(dir)
        .args(PAYLOAD_DIRS)
        .env("XZ_OPT", "-6 -T0");
    cmd::run(&mut tar)?;
    for sub in PAYLOAD_DIRS {
        fs::remove_dir_all(dir.join(sub))?;
    }
    Ok(())
}

/// Copies the `*.whl` files of `from` into `to`; returns how many.
fn copy_wheels(from: &Path, to: &Path) -> Result<usize> {
    let mut count = 0;
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from).map_err(|e| format!("--peers {}: {e}", from.display()))? {
        let path = entry?.path();
        if let (Some(name), Some("whl")) =
            (path.file_name(), path.extension().and_then(|x| x.to_str()))
        {
            fs::copy(&path, to.join(name))?;
            count += 1;
        }
    }
    if count == 0 {
        return Err(format!("--peers {}: no *.whl files there", from.display()).into());
    }
    Ok(count)
}

fn copy_stripped(from: &Path, to: &Path) -> Result {
    fs::copy(from, to)?;
    // Symbols are most of a release test binary; the bundle needs none.
    let stripped = Command::new("strip").arg("--strip-all").arg(to).status();
    if !stripped.is_ok_and(|s| s.success()) {
        eprintln!("note: could not strip {}", to.display());
    }
    Ok(())
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> Result {
    Ok(())
}

fn size_of(path: &Path) -> Result<u64> {
    let meta = fs::metadata(path)?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in fs::read_dir(path)? {
        total += size_of(&entry?.path())?;
    }
    Ok(total)
}
