//! Finding ptxas, cuobjdump and nvdisasm without a CUDA toolkit install.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variable naming a folder that holds ptxas, cuobjdump, nvdisasm.
pub const TOOLS_ENV: &str = "FA3_CUDA_TOOLS";

/// Project-local install of the PyPI packages (`cargo xtask tools`).
pub fn local_install_dir() -> PathBuf {
    crate::workspace_dir().join(".tools").join("cuda")
}

/// Where the PyPI packages put the binaries inside [`local_install_dir`].
pub fn local_bin_dir() -> PathBuf {
    local_install_dir().join("nvidia").join("cu13").join("bin")
}

/// The CUDA binaries this project uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Ptxas,
    Cuobjdump,
    Nvdisasm,
}

impl Tool {
    /// File name of the binary.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Ptxas => "ptxas",
            Tool::Cuobjdump => "cuobjdump",
            Tool::Nvdisasm => "nvdisasm",
        }
    }
}

/// Folders searched, in order: `$FA3_CUDA_TOOLS`, `$CUDA_HOME/bin`,
/// `$CUDA_PATH/bin`, the project-local install, `$PATH`, `/usr/local/cuda/bin`.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = env::var_os(TOOLS_ENV) {
        dirs.push(PathBuf::from(d));
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(d) = env::var_os(var) {
            dirs.push(PathBuf::from(d).join("bin"));
        }
    }
    dirs.push(local_bin_dir());
    if let Some(path) = env::var_os("PATH") {
        dirs.extend(env::split_paths(&path));
    }
    dirs.push(PathBuf::from("/usr/local/cuda/bin"));
    dirs
}

/// The first executable `tool` in [`search_dirs`].
pub fn find(tool: Tool) -> Option<PathBuf> {
    search_dirs()
        .into_iter()
        .map(|d| d.join(tool.name()))
        .find(|p| is_executable(p))
}

/// The first line of `tool --version` that names a release, e.g.
/// `Cuda compilation tools, release 13.0, V13.0.88`.
pub fn version(path: &Path) -> Option<String> {
    let out = Command::new(path).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.contains("release"))
        .map(|l| l.trim().to_string())
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}
