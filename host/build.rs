//! Builds the kernel crate into the PTX module this library embeds, plus an
//! sm_90a cubin when ptxas can be found (see `fa3_kernels_builder::tools`).

use fa3_kernels_builder::{BuildRequest, tools};
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for path in fa3_kernels_builder::watched_paths() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    for var in [tools::TOOLS_ENV, "CUDA_HOME", "CUDA_PATH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let request = BuildRequest {
        cargo: env::var_os("CARGO").expect("cargo sets CARGO").into(),
        target_dir: nvptx_target_dir(&out_dir),
        out_dir: out_dir.join("kernels"),
        features: Vec::new(),
        ptxas: tools::find(tools::Tool::Ptxas),
    };
    let module = match fa3_kernels_builder::build(&request) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };

    let mut image = String::new();
    let ptx = module.ptx.display();
    writeln!(
        image,
        "pub(crate) const PTX: &str = include_str!({:?});",
        ptx.to_string()
    )
    .unwrap();
    match &module.cubin {
        Some(cubin) => writeln!(
            image,
            "pub(crate) const CUBIN: Option<&[u8]> = Some(include_bytes!({:?}));",
            cubin.display().to_string()
        ),
        None => writeln!(image, "pub(crate) const CUBIN: Option<&[u8]> = None;"),
    }
    .unwrap();
    fs::write(out_dir.join("kernel_image.rs"), image).expect("write kernel_image.rs");
}

/// `<target>/nvptx-kernels`, shared by all host profiles so `core` for nvptx64
/// is compiled once. The target folder is the nearest ancestor of OUT_DIR that
/// cargo marked with CACHEDIR.TAG (OUT_DIR's depth differs between layouts).
fn nvptx_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .unwrap_or(out_dir)
        .join("nvptx-kernels")
}
