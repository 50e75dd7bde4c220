use std::fmt;
use std::path::{Path, PathBuf};

/// Why the module could not be built. Every variant says what to do next.
#[derive(Debug)]
pub enum BuildError {
    /// Reading or writing a file failed.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A tool could not be started.
    Spawn {
        tool: String,
        source: std::io::Error,
    },
    /// The nvptx64 cargo build failed; `log` is its stderr.
    Cargo { log: String },
    /// The PTX breaks a module rule (unresolved calls, wrong target, entries).
    Ptx(Vec<String>),
    /// ptxas rejected the module; `log` is its output.
    Ptxas { log: String },
    /// cuobjdump failed; `log` is its output.
    Cuobjdump { log: String },
}

impl BuildError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Spawn { tool, source } => write!(f, "could not run {tool}: {source}"),
            Self::Cargo { log } => write!(
                f,
                "building fa3-kernels for nvptx64-nvidia-cuda failed \
                 (needs the nightly toolchain with rust-src):\n{log}"
            ),
            Self::Ptx(problems) => {
                writeln!(f, "the PTX module breaks the module rules:")?;
                for p in problems {
                    writeln!(f, "  - {p}")?;
                }
                Ok(())
            }
            Self::Ptxas { log } => write!(f, "ptxas rejected the PTX module:\n{log}"),
            Self::Cuobjdump { log } => write!(f, "cuobjdump failed:\n{log}"),
        }
    }
}

impl std::error::Error for BuildError {}
