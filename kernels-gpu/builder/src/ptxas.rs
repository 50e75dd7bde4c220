//! Assembling the module with ptxas and reading its resource report.

use crate::{BuildError, SM_ARCH};
use serde::Serialize;
use std::path::Path;
use std::process::Command;

/// What ptxas says about one function (`-v`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FunctionUsage {
    pub name: String,
    pub registers: u32,
    pub barriers: u32,
    pub stack_frame_bytes: u32,
    pub spill_store_bytes: u32,
    pub spill_load_bytes: u32,
    /// Static shared memory; dynamic shared memory is set at launch.
    pub shared_bytes: u32,
}

/// ptxas's report for a whole module.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub functions: Vec<FunctionUsage>,
    /// Every `ptxas warning` line, and every `ptxas info` line that reports
    /// a performance loss (ptxas 13.0 reports wgmma serialization for lack
    /// of registers, C7512, as info, not as a warning).
    pub warnings: Vec<String>,
}

impl Report {
    /// The usage of `name`, if ptxas compiled it.
    pub fn function(&self, name: &str) -> Option<&FunctionUsage> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// Warnings that name `function`, plus those that name no function.
    pub fn warnings_for(&self, function: &str) -> Vec<&str> {
        let quoted = format!("'{function}'");
        self.warnings
            .iter()
            .filter(|w| w.contains(&quoted) || !w.contains("function '"))
            .map(String::as_str)
            .collect()
    }
}

/// True for the warning ptxas gives when it serializes wgmma (a silent
/// slowdown that `inspect` and the tests treat as a failure).
pub fn is_wgmma_serialization(warning: &str) -> bool {
    warning.contains("wgmma") && warning.contains("serializ")
}

/// Assembles `ptx` into `cubin` for sm_90a and parses the `-v` report.
pub fn assemble(ptxas: &Path, ptx: &Path, cubin: &Path) -> Result<Report, BuildError> {
    let out = Command::new(ptxas)
        .arg(format!("-arch={SM_ARCH}"))
        .args(["-O3", "-v", "--warn-on-spills"])
        .arg("-o")
        .arg(cubin)
        .arg(ptx)
        .output()
        .map_err(|source| BuildError::Spawn {
            tool: ptxas.display().to_string(),
            source,
        })?;
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(BuildError::Ptxas { log });
    }
    Ok(parse_report(&log))
}

/// Parses `ptxas -v` output.
pub fn parse_report(log: &str) -> Report {
    let mut report = Report::default();
    for line in log.lines() {
        let line = line.trim();
        let warning = line.strip_prefix("ptxas warning").or_else(|| {
            line.strip_prefix("ptxas info")
                .filter(|l| l.contains("Potential Performance Loss"))
        });
        if let Some(w) = warning {
            report
                .warnings
                .push(w.trim_start_matches([' ', ':']).to_string());
        } else if let Some(name) = line.strip_prefix("ptxas info    : Function properties for ") {
            report.functions.push(FunctionUsage {
                name: name.trim().to_string(),
                ..FunctionUsage::default()
            });
        } else if let Some(f) = report.functions.last_mut() {
            if line.contains("bytes stack frame") {
                f.stack_frame_bytes = number_before(line, "bytes stack frame");
                f.spill_store_bytes = number_before(line, "bytes spill stores");
                f.spill_load_bytes = number_before(line, "bytes spill loads");
            } else if line.starts_with("ptxas info    : Used ") {
                f.registers = number_before(line, "registers");
                f.barriers = number_before(line, "barriers");
                f.shared_bytes = number_before(line, "bytes smem");
            }
        }
    }
    report
}

// The integer right before `unit` in `line`, or 0 when `unit` is absent
// (ptxas leaves out fields that are zero, such as smem).
fn number_before(line: &str, unit: &str) -> u32 {
    let Some(pos) = line.find(unit) else { return 0 };
    line[..pos]
        .split_whitespace()
        .next_back()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'fa3_a' for 'sm_90a'
ptxas info    : Function properties for fa3_a
    8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 168 registers, used 1 barriers, 1024 bytes smem, 552 bytes cmem[0]
ptxas info    : Compiling entry function 'fa3_b' for 'sm_90a'
ptxas info    : Function properties for fa3_b
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 10 registers, used 0 barriers, 552 bytes cmem[0]
ptxas warning : (C7515) Potential Performance Loss: wgmma.mma_async instructions are serialized due to the presence of Extern calls in the function 'fa3_a'.
ptxas info    : (C7512) Potential Performance Loss: wgmma.mma_async instructions are serialized due to insufficient register resources for the function 'fa3_c'.
";

    #[test]
    fn parses_usage_and_warnings() {
        let r = parse_report(LOG);
        let a = r.function("fa3_a").unwrap();
        assert_eq!(
            *a,
            FunctionUsage {
                name: "fa3_a".into(),
                registers: 168,
                barriers: 1,
                stack_frame_bytes: 8,
                spill_store_bytes: 4,
                spill_load_bytes: 12,
                shared_bytes: 1024,
            }
        );
        assert_eq!(r.function("fa3_b").unwrap().registers, 10);
        assert_eq!(r.function("fa3_b").unwrap().shared_bytes, 0);
        assert_eq!(r.warnings_for("fa3_a").len(), 1);
        assert!(r.warnings_for("fa3_b").is_empty());
        assert!(is_wgmma_serialization(&r.warnings[0]));
        // Reported as info, still a warning for the rules.
        assert_eq!(r.warnings_for("fa3_c").len(), 1);
        assert!(is_wgmma_serialization(r.warnings_for("fa3_c")[0]));
    }
}
