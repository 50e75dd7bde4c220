//! `cargo xtask build`: the PTX module and cubin, outside any host build.

use crate::cmd::{self, Result};
use crate::tools::Found;
use fa3_kernels_builder::{BuildRequest, BuiltModule, ptx};
use std::fs;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kernel-crate features to build with (kernel variants), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub features: Vec<String>,
}

/// `target/kernels`, or `target/kernels/<features>` for a variant.
pub fn out_dir(features: &[String]) -> PathBuf {
    let base = cmd::target_dir().join("kernels");
    if features.is_empty() {
        base
    } else {
        base.join(features.join("+"))
    }
}

/// Builds and checks the module; assembles it when ptxas was found.
pub fn build(features: &[String], tools: &Found) -> Result<BuiltModule> {
    Ok(fa3_kernels_builder::build(&request(features, tools))?)
}

/// clippy over the device build of the kernel crate (its own target folder:
/// clippy's artifacts would make the module build recompile).
pub fn clippy() -> Result {
    let request = BuildRequest {
        target_dir: cmd::target_dir().join("nvptx-clippy"),
        ..request(&[], &Found::none())
    };
    eprintln!("$ cargo clippy (fa3-kernels for nvptx64-nvidia-cuda) -- -D warnings");
    Ok(fa3_kernels_builder::clippy(&request)?)
}

fn request(features: &[String], tools: &Found) -> BuildRequest {
    BuildRequest {
        cargo: std::env::var_os("CARGO")
            .unwrap_or_else(|| "cargo".into())
            .into(),
        // The same folder host/build.rs uses, so core is compiled once.
        target_dir: cmd::target_dir().join("nvptx-kernels"),
        out_dir: out_dir(features),
        features: features.to_vec(),
        ptxas: tools.ptxas.clone(),
    }
}

pub fn run(args: &Args) -> Result {
    let tools = Found::look();
    let module = build(&args.features, &tools)?;
    let text = fs::read_to_string(&module.ptx)?;
    println!(
        "PTX    {} (entries: {})",
        module.ptx.display(),
        ptx::entries(&text).join(", ")
    );
    match &module.cubin {
        Some(cubin) => println!("cubin  {}", cubin.display()),
        None => println!("cubin  not built: ptxas not found (run `cargo xtask tools`)"),
    }
    Ok(())
}
