//! What every kernel of the module must show after assembly.
//!
//! Shared by `cargo xtask inspect`/`test` and the CPU tests, so the rules are
//! stated once.

use crate::ptxas::{FunctionUsage, Report, is_wgmma_serialization};
use crate::sass::FunctionSass;

/// The rule violations of one kernel; empty when it is clean.
pub fn violations(
    usage: &FunctionUsage,
    sass: Option<&FunctionSass>,
    report: &Report,
) -> Vec<String> {
    let mut found = Vec::new();
    if usage.spill_store_bytes != 0 || usage.spill_load_bytes != 0 {
        found.push(format!(
            "spills: {} bytes stored, {} bytes loaded",
            usage.spill_store_bytes, usage.spill_load_bytes
        ));
    }
    if usage.stack_frame_bytes != 0 {
        found.push(format!(
            "{} bytes of stack frame (local memory)",
            usage.stack_frame_bytes
        ));
    }
    if let Some(sass) = sass {
        let local = sass.count(&["LDL", "STL"]);
        if local != 0 {
            found.push(format!("{local} LDL/STL instructions (local memory)"));
        }
    }
    for warning in report.warnings_for(&usage.name) {
        if is_wgmma_serialization(warning) {
            found.push(format!("wgmma serialized: {warning}"));
        } else if warning.contains("setmaxnreg") {
            found.push(format!("setmaxnreg ignored: {warning}"));
        }
    }
    found
}
