//! Per-kernel facts from ptxas and cuobjdump, with the rule violations.

use crate::loops::{self, LoopBody};
use crate::ptxas::{self, FunctionUsage, Report};
use crate::sass::{self, CLASSES, FunctionSass};
use crate::{BuildError, KERNELS, KernelSpec, ptx, rules};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// What a kernel developer wants to know about one kernel.
#[derive(Debug, Clone, Serialize)]
pub struct KernelInspection {
    pub kernel: String,
    pub max_threads_per_block: u32,
    pub usage: FunctionUsage,
    /// `setmaxnreg` instructions in the kernel's PTX.
    pub setmaxnreg_in_ptx: usize,
    /// Instruction counts per class of [`sass::CLASSES`]; empty without cuobjdump.
    pub sass_classes: BTreeMap<String, u32>,
    /// All SASS instructions; 0 without cuobjdump.
    pub sass_instructions: u32,
    /// Highest general register in the SASS; 0 without cuobjdump.
    pub max_register: u32,
    /// The innermost loops that issue wgmma ([`loops::wgmma_loops`]);
    /// empty without cuobjdump.
    pub loops: Vec<LoopBody>,
    pub warnings: Vec<String>,
    /// Broken rules (see [`rules::violations`]); empty when clean.
    pub violations: Vec<String>,
}

/// Combines the PTX, the ptxas report and (optionally) the SASS per kernel.
pub fn kernels(
    ptx_text: &str,
    report: &Report,
    sass: Option<&[FunctionSass]>,
) -> Vec<KernelInspection> {
    KERNELS
        .iter()
        .map(|spec| one(spec, ptx_text, report, sass))
        .collect()
}

fn one(
    spec: &KernelSpec,
    ptx_text: &str,
    report: &Report,
    sass: Option<&[FunctionSass]>,
) -> KernelInspection {
    let usage = report
        .function(spec.entry)
        .cloned()
        .unwrap_or_else(|| FunctionUsage {
            name: spec.entry.to_string(),
            ..FunctionUsage::default()
        });
    let fsass = sass.and_then(|all| all.iter().find(|f| f.name == spec.entry));
    let setmaxnreg = ptx::function_text(ptx_text, spec.entry)
        .map_or(0, |text| text.matches("setmaxnreg.").count());
    KernelInspection {
        kernel: spec.entry.to_string(),
        max_threads_per_block: spec.max_threads_per_block,
        setmaxnreg_in_ptx: setmaxnreg,
        sass_classes: fsass
            .map(|f| {
                CLASSES
                    .iter()
                    .map(|(class, ops)| (class.to_string(), f.count(ops)))
                    .collect()
            })
            .unwrap_or_default(),
        sass_instructions: fsass.map_or(0, FunctionSass::total),
        max_register: fsass.map_or(0, |f| f.max_register),
        loops: fsass.map(loops::wgmma_loops).unwrap_or_default(),
        warnings: report
            .warnings_for(spec.entry)
            .into_iter()
            .map(String::from)
            .collect(),
        violations: rules::violations(&usage, fsass, report),
        usage,
    }
}

/// Assembles `ptx_text` in `work_dir` and inspects every kernel; with
/// cuobjdump the SASS classes are filled in too.
pub fn assemble_and_inspect(
    ptx_text: &str,
    ptxas_bin: &Path,
    cuobjdump: Option<&Path>,
    work_dir: &Path,
) -> Result<Vec<KernelInspection>, BuildError> {
    fs::create_dir_all(work_dir).map_err(|e| BuildError::io(work_dir, e))?;
    let ptx_path = work_dir.join(crate::PTX_FILE);
    let cubin_path = work_dir.join(crate::CUBIN_FILE);
    fs::write(&ptx_path, ptx_text).map_err(|e| BuildError::io(&ptx_path, e))?;
    let report = ptxas::assemble(ptxas_bin, &ptx_path, &cubin_path)?;
    let sass = cuobjdump
        .map(|tool| sass::disassemble(tool, &cubin_path))
        .transpose()?;
    Ok(kernels(ptx_text, &report, sass.as_deref()))
}
