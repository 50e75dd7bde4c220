//! ptxas, cuobjdump and nvdisasm: found on the machine or installed from PyPI
//! into the git-ignored `.tools/cuda`.

use crate::cmd::{self, Result};
use fa3_kernels_builder::tools::{self, Tool};
use std::path::PathBuf;
use std::process::Command;

/// ptxas 13.0 matches the CUDA 13.0 driver of our GPU machines (a newer ptxas
/// would make cubins that driver refuses). cuobjdump and nvdisasm only read
/// cubins; 13.2 is the oldest release on PyPI.
const PACKAGES: &[&str] = &[
    "nvidia-cuda-nvcc==13.0.88",
    "nvidia-cuda-cuobjdump==13.2.86",
    "nvidia-cuda-nvdisasm==13.2.86",
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Reinstall the PyPI packages even if the tools are found.
    #[arg(long)]
    force: bool,
}

/// The tools this run can use.
#[derive(Debug, Clone)]
pub struct Found {
    pub ptxas: Option<PathBuf>,
    pub cuobjdump: Option<PathBuf>,
}

impl Found {
    /// No tools (for builds that assemble nothing).
    pub fn none() -> Self {
        Self {
            ptxas: None,
            cuobjdump: None,
        }
    }

    pub fn look() -> Self {
        Self {
            ptxas: tools::find(Tool::Ptxas),
            cuobjdump: tools::find(Tool::Cuobjdump)
                .filter(|_| tools::find(Tool::Nvdisasm).is_some()),
        }
    }

    /// The folder holding ptxas, for `FA3_CUDA_TOOLS` in child builds.
    pub fn dir(&self) -> Option<PathBuf> {
        self.ptxas.as_ref()?.parent().map(PathBuf::from)
    }
}

pub fn run(args: &Args) -> Result {
    let found = Found::look();
    if args.force || found.ptxas.is_none() || found.cuobjdump.is_none() {
        install()?;
    }
    let found = Found::look();
    for (name, path) in [("ptxas", &found.ptxas), ("cuobjdump", &found.cuobjdump)] {
        match path {
            Some(p) => println!(
                "{name:10} {} ({})",
                p.display(),
                tools::version(p).unwrap_or_else(|| "version unknown".into())
            ),
            None => println!("{name:10} not found"),
        }
    }
    Ok(())
}

/// Finds the tools, installing them from PyPI when any is missing and
/// `install` is set. Never fails: what is missing stays `None`.
pub fn ensure(install_missing: bool) -> Found {
    let found = Found::look();
    if found.ptxas.is_some() && found.cuobjdump.is_some() || !install_missing {
        return found;
    }
    if let Err(e) = install() {
        eprintln!("note: could not install the CUDA tools from PyPI: {e}");
    }
    Found::look()
}

fn install() -> Result {
    let target = tools::local_install_dir();
    eprintln!(
        "installing {} into {}",
        PACKAGES.join(", "),
        target.display()
    );
    cmd::run(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-deps", "--upgrade", "--target"])
            .arg(&target)
            .args(PACKAGES)
            .env("PIP_ROOT_USER_ACTION", "ignore"),
    )
}
