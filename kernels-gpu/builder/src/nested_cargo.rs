//! Runs cargo for `nvptx64-nvidia-cuda` and takes the crate's PTX.

use crate::{BuildError, BuildRequest, kernels_crate_dir};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "nvptx64-nvidia-cuda";

/// `-Cpanic=immediate-abort` turns every panic into `trap`, which is what
/// removes the `.extern .func ...panic_bounds_check` calls; plain
/// `-Cpanic=abort` leaves them (hopper-notes.md, section 1).
const RUSTFLAGS: &str =
    "-Ctarget-cpu=sm_90a -Ctarget-feature=+ptx81 -Zunstable-options -Cpanic=immediate-abort";

/// One codegen unit gives one `.s` file; no debug info keeps the PTX readable.
const PROFILE: &[(&str, &str)] = &[
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1"),
    ("CARGO_PROFILE_RELEASE_DEBUG", "false"),
    ("CARGO_PROFILE_RELEASE_LTO", "false"),
    ("CARGO_PROFILE_RELEASE_INCREMENTAL", "false"),
    ("CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS", "false"),
    ("CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS", "false"),
];

pub(crate) fn emit_ptx(req: &BuildRequest) -> Result<String, BuildError> {
    ensure_rust_src()?;
    let asm = asm_path(req);
    let mut first_try = true;
    loop {
        run_cargo(req, &asm)?;
        match fs::read_to_string(&asm) {
            Ok(text) => return Ok(text),
            // Cargo found the crate fresh but the emitted file is gone: forget
            // the crate's fingerprint so the next run compiles it again.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && first_try => {
                forget_fingerprint(&req.target_dir)?;
                first_try = false;
            }
            Err(e) => return Err(BuildError::io(&asm, e)),
        }
    }
}

// One file per feature set: cargo keeps one fresh unit per feature set, and a
// shared file would be left holding another variant's code.
fn asm_path(req: &BuildRequest) -> PathBuf {
    let mut name = String::from("fa3_kernels");
    for f in &req.features {
        name.push('-');
        name.push_str(f);
    }
    name.push_str(".ptx");
    req.target_dir.join(TARGET).join("release").join(name)
}

fn run_cargo(req: &BuildRequest, asm: &Path) -> Result<(), BuildError> {
    let mut cmd = nvptx_cargo(req, "rustc");
    // Warnings are errors for the kernel crate (not for core): the nested
    // build's output is only shown when it fails.
    cmd.arg("--")
        .arg(format!("--emit=asm={}", asm.display()))
        .arg("-Dwarnings");
    run(req, &mut cmd)
}

/// clippy over the kernel crate as the nvptx64 build compiles it, warnings
/// (the workspace's lints, `undocumented_unsafe_blocks` included) as
/// errors: the device modules (`cfg(target_arch = "nvptx64")`) are not in
/// the host's clippy run.
pub(crate) fn clippy(req: &BuildRequest) -> Result<(), BuildError> {
    ensure_rust_src()?;
    let mut cmd = nvptx_cargo(req, "clippy");
    cmd.args(["--", "-Dwarnings"]);
    run(req, &mut cmd)
}

/// `cargo SUBCOMMAND` of the kernel crate's library for nvptx64, `core`
/// built from source, with the module's flags and profile.
fn nvptx_cargo(req: &BuildRequest, subcommand: &str) -> Command {
    let crate_dir = kernels_crate_dir();
    let mut cmd = Command::new(&req.cargo);
    cmd.current_dir(&crate_dir)
        .arg(subcommand)
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .args(["--lib", "--release", "--target", TARGET, "-Zbuild-std=core"])
        .arg("--target-dir")
        .arg(&req.target_dir);
    if !req.features.is_empty() {
        cmd.arg("--features").arg(req.features.join(","));
    }
    scrub_env(&mut cmd);
    cmd.env("CARGO_TARGET_NVPTX64_NVIDIA_CUDA_RUSTFLAGS", RUSTFLAGS);
    cmd.envs(PROFILE.iter().copied());
    cmd
}

fn run(req: &BuildRequest, cmd: &mut Command) -> Result<(), BuildError> {
    let out = cmd.output().map_err(|source| BuildError::Spawn {
        tool: req.cargo.display().to_string(),
        source,
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BuildError::Cargo {
            log: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// A build script inherits the outer build's settings (its profile, flags,
/// wrappers such as clippy-driver, its target folder); none of them belong to
/// the nvptx64 build.
fn scrub_env(cmd: &mut Command) {
    const KEEP: &[&str] = &["CARGO_HOME", "CARGO_MAKEFLAGS"];
    const KEEP_PREFIXES: &[&str] = &["CARGO_NET_", "CARGO_HTTP_", "CARGO_REGISTRIES_"];
    const DROP: &[&str] = &[
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ];
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let cargo_setting = (key.starts_with("CARGO_") || key.starts_with("__CARGO"))
            && !KEEP.contains(&key)
            && !KEEP_PREFIXES.iter().any(|p| key.starts_with(p));
        if cargo_setting || DROP.contains(&key) {
            cmd.env_remove(key);
        }
    }
}

/// `-Zbuild-std` compiles `core` from the `rust-src` component, which
/// rust-toolchain.toml lists but rustup only installs on `rustup toolchain
/// install`, not when cargo runs. A fresh machine gets it here, once.
fn ensure_rust_src() -> Result<(), BuildError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|source| BuildError::Spawn {
            tool: "rustc".into(),
            source,
        })?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    let core = sysroot.join("lib/rustlib/src/rust/library/core");
    if core.is_dir() {
        return Ok(());
    }
    eprintln!(
        "rust-src is missing (needed to build core for nvptx64): rustup component add rust-src"
    );
    let mut add = Command::new("rustup");
    add.args(["component", "add", "rust-src"]);
    if let Some(toolchain) = std::env::var_os("RUSTUP_TOOLCHAIN") {
        add.arg("--toolchain").arg(toolchain);
    }
    let out = add.output().map_err(|source| BuildError::Spawn {
        tool: "rustup".into(),
        source,
    })?;
    if out.status.success() && core.is_dir() {
        Ok(())
    } else {
        Err(BuildError::Cargo {
            log: format!(
                "the rust-src component is missing and `rustup component add rust-src` failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

fn forget_fingerprint(target_dir: &Path) -> Result<(), BuildError> {
    let dir = target_dir.join(TARGET).join("release").join(".fingerprint");
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("fa3-kernels-")
        {
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(|e| BuildError::io(&path, e))?;
        }
    }
    Ok(())
}
