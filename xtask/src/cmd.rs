//! Running cargo and other programs, and where things are.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// Errors of xtask commands: a sentence for the person at the terminal.
pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The workspace root.
pub fn workspace() -> PathBuf {
    fa3_kernels_builder::workspace_dir()
}

/// The benchmark's package (`xtask/bench`): built by `bench`, `bundle` and `ab`.
pub const BENCH_PACKAGE: &str = "fa3-bench";

/// The workspace's target folder (`CARGO_TARGET_DIR` when set).
pub fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// The official FA3 wheels the benchmark installs for its peers, when
/// present: `../shared/peers` beside the workspace (its README says where
/// they come from).
pub fn default_peer_wheels() -> Option<PathBuf> {
    let dir = workspace().join("..").join("shared").join("peers");
    dir.is_dir().then_some(dir)
}

/// The cargo that runs xtask (the workspace's nightly).
pub fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace());
    cmd
}

/// Runs `cmd`, echoing it, and fails unless it exits with 0.
pub fn run(cmd: &mut Command) -> Result {
    eprintln!("$ {}", describe(cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("could not start {}: {e}", describe(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", describe(cmd)).into())
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}
