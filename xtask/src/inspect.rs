//! `cargo xtask inspect`: what ptxas and cuobjdump say about each kernel.

use crate::cmd::Result;
use crate::kernels;
use crate::tools::Found;
use fa3_kernels_builder::inspect::{self, KernelInspection};
use fa3_kernels_builder::loops::{LOOP_CLASSES, LoopBody, wgmma_loops};
use fa3_kernels_builder::sass::{self, CLASSES};
use std::fs;
use std::path::PathBuf;

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
    /// Also print each kernel's innermost wgmma loops: what one trip issues,
    /// by instruction class.
    #[arg(long)]
    loops: bool,
    /// Print the wgmma loops of this cubin's functions instead of building
    /// ours (FA3's, extracted with `cuobjdump -xelf all`, to compare);
    /// `--kernel` then keeps the functions whose name contains it.
    #[arg(long, value_name = "PATH")]
    cubin: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result {
    let found = Found::look();
    if let Some(cubin) = &args.cubin {
        let cuobjdump = found
            .cuobjdump
            .as_deref()
            .ok_or("cuobjdump not found: run `cargo xtask tools`")?;
        let functions = sass::disassemble(cuobjdump, cubin)?;
        let mut any = false;
        for f in &functions {
            if args
                .kernel
                .as_ref()
                .is_some_and(|k| !f.name.contains(k.as_str()))
            {
                continue;
            }
            let loops = wgmma_loops(f);
            if !loops.is_empty() {
                any = true;
                print_loops(&f.name, &loops);
            }
        }
        if !any {
            return Err(format!("no function with a wgmma loop in {}", cubin.display()).into());
        }
        return Ok(());
    }
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
        if args.loops {
            for k in &all {
                print_loops(&k.kernel, &k.loops);
            }
        }
    }
    Ok(())
}

/// One row per loop: its address range, its instructions and their classes.
fn print_loops(name: &str, loops: &[LoopBody]) {
    println!("{name}:");
    let mut header = vec!["loop".to_string(), "instr".to_string()];
    header.extend(LOOP_CLASSES.iter().map(|(class, _)| class.to_string()));
    let rows: Vec<Vec<String>> = loops
        .iter()
        .map(|l| {
            let mut row = vec![
                format!("{:#06x}-{:#06x}", l.start, l.end),
                l.instructions.to_string(),
            ];
            row.extend(
                LOOP_CLASSES
                    .iter()
                    .map(|(class, _)| l.classes[*class].to_string()),
            );
            row
        })
        .collect();
    print_columns(&header, &rows, "  ");
}

/// `header` and `rows` in aligned columns, the first left-aligned, each
/// line after `indent`.
fn print_columns(header: &[String], rows: &[Vec<String>], indent: &str) {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let cells: Vec<String> = row
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
        println!("{indent}{}", cells.join("  "));
    }
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
    let header: Vec<String> = header.into_iter().map(String::from).collect();
    print_columns(&header, &rows, "");
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
