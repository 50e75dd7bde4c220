//! `cargo xtask inspect`: what ptxas and cuobjdump say about each kernel.

use crate::cmd::Result;
use crate::kernels;
use crate::tools::Found;
use fa3_kernels_builder::inspect::{self, KernelInspection};
use fa3_kernels_builder::sass::CLASSES;
use std::fs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this kernel (its PTX entry name).
    #[arg(long)]
    kernel: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Kernel-crate features to build with (kernel variants), comma-separated.
    #[arg(long, value_delimiter = ',')]
    features: Vec<String>,
}

pub fn run(args: &Args) -> Result {
    let found = Found::look();
    let ptxas = found
        .ptxas
        .clone()
        .ok_or("ptxas not found: run `cargo xtask tools` (or set CUDA_HOME / FA3_CUDA_TOOLS)")?;
    if found.cuobjdump.is_none() {
        eprintln!(
            "note: cuobjdump/nvdisasm not found: no SASS histogram (run `cargo xtask tools`)"
        );
    }
    let module = kernels::build(&args.features, &found)?;
    let text = fs::read_to_string(&module.ptx)?;
    let work = kernels::out_dir(&args.features).join("inspect");
    let mut all = inspect::assemble_and_inspect(&text, &ptxas, found.cuobjdump.as_deref(), &work)?;
    if let Some(name) = &args.kernel {
        all.retain(|k| &k.kernel == name);
        if all.is_empty() {
            let names: Vec<_> = fa3_kernels_builder::KERNELS
                .iter()
                .map(|k| k.entry)
                .collect();
            return Err(format!("no kernel `{name}`; kernels: {}", names.join(", ")).into());
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        print_table(&all);
    }
    Ok(())
}

fn print_table(all: &[KernelInspection]) {
    let mut header = vec![
        "kernel",
        "threads",
        "regs",
        "max R",
        "spill st/ld",
        "stack",
        "smem",
        "bar",
        "setmaxnreg",
    ];
    header.extend(CLASSES.iter().map(|(class, _)| *class));
    header.push("SASS");
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|k| {
            let u = &k.usage;
            let mut row = vec![
                k.kernel.clone(),
                k.max_threads_per_block.to_string(),
                u.registers.to_string(),
                k.max_register.to_string(),
                format!("{}/{}", u.spill_store_bytes, u.spill_load_bytes),
                u.stack_frame_bytes.to_string(),
                u.shared_bytes.to_string(),
                u.barriers.to_string(),
                k.setmaxnreg_in_ptx.to_string(),
            ];
            row.extend(CLASSES.iter().map(|(class, _)| {
                k.sass_classes
                    .get(*class)
                    .map_or("-".to_string(), u32::to_string)
            }));
            row.push(k.sass_instructions.to_string());
            row
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        println!("{}", padded.join("  "));
    };
    line(header.clone());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    for k in all {
        for w in &k.warnings {
            println!("{}: ptxas warning: {w}", k.kernel);
        }
        for v in &k.violations {
            println!("{}: RULE BROKEN: {v}", k.kernel);
        }
    }
    if all.iter().all(|k| k.violations.is_empty()) {
        println!(
            "all {} kernel(s): no spills, no local memory, no wgmma serialization",
            all.len()
        );
    }
}
