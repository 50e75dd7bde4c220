//! Turns the `fa3-kernels` crate into the PTX module the host embeds, and reads
//! what ptxas and cuobjdump say about it.
//!
//! Used by `host/build.rs` (to embed the module) and by `xtask` (build, test,
//! inspect). Build-time code: errors are reported as text for a person.

mod error;
pub mod inspect;
pub mod loops;
mod nested_cargo;
pub mod ptx;
pub mod ptxas;
pub mod rules;
pub mod sass;
pub mod tools;

use std::fs;
use std::path::{Path, PathBuf};

pub use error::BuildError;
pub use fa3_kernels::abi::{KERNELS, KernelSpec};

/// File name of the PTX module in an output folder.
pub const PTX_FILE: &str = "fa3.ptx";
/// File name of the cubin in an output folder.
pub const CUBIN_FILE: &str = "fa3.cubin";
/// The architecture everything here is built for.
pub const SM_ARCH: &str = "sm_90a";

/// What to build and where.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The cargo binary to drive (a nightly: `-Zbuild-std` is unstable).
    pub cargo: PathBuf,
    /// Target folder for the nvptx64 build (core is compiled into it once).
    pub target_dir: PathBuf,
    /// Where `fa3.ptx` (and `fa3.cubin`) are written.
    pub out_dir: PathBuf,
    /// Cargo features of `fa3-kernels` to enable (kernel variants).
    pub features: Vec<String>,
    /// ptxas to assemble the cubin with; `None` builds the PTX only.
    pub ptxas: Option<PathBuf>,
}

/// The built module.
#[derive(Debug, Clone)]
pub struct BuiltModule {
    /// Path of the checked, patched PTX.
    pub ptx: PathBuf,
    /// Path of the sm_90a cubin, when ptxas was given.
    pub cubin: Option<PathBuf>,
    /// What ptxas reported while assembling the cubin.
    pub ptxas_report: Option<ptxas::Report>,
}

/// The `fa3-kernels` crate folder.
pub fn kernels_crate_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("builder lives inside kernels-gpu/")
        .to_path_buf()
}

/// The workspace root.
pub fn workspace_dir() -> PathBuf {
    kernels_crate_dir()
        .parent()
        .expect("kernels-gpu lives inside the workspace")
        .to_path_buf()
}

/// Builds, patches and checks the module; assembles it when ptxas is given.
pub fn build(req: &BuildRequest) -> Result<BuiltModule, BuildError> {
    let raw = nested_cargo::emit_ptx(req)?;
    let ptx_text = ptx::patch_launch_bounds(&raw, KERNELS)?;
    ptx::check_module(&ptx_text, KERNELS)?;

    fs::create_dir_all(&req.out_dir).map_err(|e| BuildError::io(&req.out_dir, e))?;
    let ptx_path = req.out_dir.join(PTX_FILE);
    write_if_changed(&ptx_path, ptx_text.as_bytes())?;

    let (cubin, ptxas_report) = match &req.ptxas {
        Some(ptxas_bin) => {
            let cubin_path = req.out_dir.join(CUBIN_FILE);
            let report = ptxas::assemble(ptxas_bin, &ptx_path, &cubin_path)?;
            (Some(cubin_path), Some(report))
        }
        None => (None, None),
    };
    Ok(BuiltModule {
        ptx: ptx_path,
        cubin,
        ptxas_report,
    })
}

/// Runs clippy on the kernel crate as the nvptx64 build compiles it
/// (`req.out_dir` and `req.ptxas` are not used); warnings fail it.
pub fn clippy(req: &BuildRequest) -> Result<(), BuildError> {
    nested_cargo::clippy(req)
}

/// Paths whose change must rebuild the module (for `cargo:rerun-if-changed`).
pub fn watched_paths() -> Vec<PathBuf> {
    let dir = kernels_crate_dir();
    vec![dir.join("src"), dir.join("Cargo.toml")]
}

// Keeps the file's mtime when nothing changed, so dependents stay fresh.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    fs::write(path, bytes).map_err(|e| BuildError::io(path, e))
}
