//! PNG plots of a run's JSON file, drawn by the embedded matplotlib script
//! (`py/plot.py`), in the style of the FA3 paper's figures.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The plot script, embedded so the bundle needs no extra file.
pub const SCRIPT: &str = include_str!("../py/plot.py");

/// The script's exit code when matplotlib is missing.
const NO_MATPLOTLIB: i32 = 3;

/// Draws the plots of `json` next to it and returns their paths, or one
/// line saying why there are none.
pub fn draw(python: &str, json: &Path) -> Result<Vec<PathBuf>, String> {
    let out = Command::new(python)
        .args(["-c", SCRIPT])
        .arg(json)
        .output()
        .map_err(|e| format!("could not start {python}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last_line = stderr.lines().last().unwrap_or("").trim().to_string();
    match out.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(PathBuf::from)
            .collect()),
        Some(NO_MATPLOTLIB) => Err(last_line),
        _ => Err(format!(
            "the plot script failed ({}): {last_line}",
            out.status
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::tests::require_python;
    use crate::report;
    use std::io::Write;
    use std::process::Stdio;

    fn has(python: &str, module: &str) -> bool {
        Command::new(python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Both embedded scripts are valid Python (the helper cannot run its
    /// requests here without torch, so this is its syntax check).
    #[test]
    fn python_scripts_parse() {
        let python = require_python();
        for (name, source) in [("plot.py", SCRIPT), ("peers.py", crate::peers::HELPER)] {
            let mut child = Command::new(&python)
                .args(["-c", "import ast, sys; ast.parse(sys.stdin.read())"])
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(source.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Draws a synthetic run where matplotlib is importable; elsewhere the
    /// script must say so in one line and draw nothing.
    #[test]
    fn plots_a_synthetic_run_or_says_matplotlib_is_missing() {
        let python = require_python();
        let dir = std::env::temp_dir().join(format!("fa3-bench-plot-{}", std::process::id()));
        let json = report::write_json(&report::tests::synthetic_run(), &dir, "test").unwrap();
        let result = draw(&python, &json);
        if has(&python, "matplotlib") {
            let pngs = result.unwrap();
            assert_eq!(pngs.len(), 2, "{pngs:?}");
            for png in &pngs {
                assert!(
                    std::fs::metadata(png).unwrap().len() > 1000,
                    "{}",
                    png.display()
                );
            }
        } else {
            println!("matplotlib is not importable here: checking the one-line refusal");
            let line = result.unwrap_err();
            assert!(line.starts_with("matplotlib is not importable"), "{line}");
            assert!(!line.contains('\n'));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
