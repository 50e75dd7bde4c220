//! `cargo xtask ab REV...`: fa3-bench built at several git revisions into
//! one folder, with a `run.sh` that times them in alternation in one GPU
//! machine call: the A/B runs of `kernels-gpu/PERF.md`, where builds are
//! compared in the same call because the GPU's speed drifts between calls.

use crate::cmd::{self, Result};
use crate::tools;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Git revisions to build (branches, tags, commits), committed state
    /// only: uncommitted changes are not in any build.
    #[arg(required = true, num_args = 1..)]
    revs: Vec<String>,
    /// Output folder (replaced). Default: `ab/` in the workspace
    /// (git-ignored).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| cmd::workspace().join("ab"));
    // Resolve every revision before building any.
    let builds: Vec<Build> = args
        .revs
        .iter()
        .map(|rev| {
            Ok(Build {
                rev: rev.clone(),
                name: folder_name(rev),
                hash: short_hash(rev)?,
            })
        })
        .collect::<Result<_>>()?;
    if out.exists() {
        fs::remove_dir_all(&out)?;
    }
    fs::create_dir_all(&out)?;
    let found = tools::ensure(true);
    let target = cmd::target_dir().join("ab-build");
    for Build { rev, name, hash } in &builds {
        let tree = cmd::target_dir().join("ab-worktrees").join(name);
        remove_worktree(&tree);
        cmd::run(git().args(["worktree", "add", "--detach", path_str(&tree)?, hash]))?;
        let mut build = cmd::cargo();
        build
            .current_dir(&tree)
            .args(["build", "--release", "-p", cmd::BENCH_PACKAGE])
            .env("CARGO_TARGET_DIR", &target);
        // The worktree has no `.tools/`: point the kernel builder at ours.
        if let Some(dir) = found.dir() {
            build.env(fa3_kernels_builder::tools::TOOLS_ENV, dir);
        }
        let built = cmd::run(&mut build);
        remove_worktree(&tree);
        built?;
        let dir = out.join(name);
        fs::create_dir_all(&dir)?;
        fs::copy(
            target.join("release").join(cmd::BENCH_PACKAGE),
            dir.join(cmd::BENCH_PACKAGE),
        )?;
        fs::write(dir.join("REVISION"), format!("{rev} {hash}\n"))?;
        eprintln!("ab: {rev} ({hash}) -> {}", dir.display());
    }
    let script = out.join("run.sh");
    fs::write(&script, run_script(&builds))?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
    eprintln!(
        "ab: {} on the GPU machine: {} [ROUNDS] [fa3-bench flags]",
        out.display(),
        script.display()
    );
    Ok(())
}

/// One revision to build: as given, its folder name, its commit.
struct Build {
    rev: String,
    name: String,
    hash: String,
}

/// `wip/bwd-x` -> `wip-bwd-x`: a folder name for a revision.
fn folder_name(rev: &str) -> String {
    rev.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn short_hash(rev: &str) -> Result<String> {
    let out = git()
        .args([
            "rev-parse",
            "--verify",
            "--short",
            &format!("{rev}^{{commit}}"),
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!("`{rev}` is not a git revision of this repository").into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `git`, run in the workspace.
fn git() -> Command {
    let mut git = Command::new("git");
    git.current_dir(cmd::workspace());
    git
}

/// Removes the worktree at `tree` if there is one (a run stopped half-way
/// leaves it behind).
fn remove_worktree(tree: &Path) {
    if tree.exists() {
        let _ = git()
            .args(["worktree", "remove", "--force"])
            .arg(tree)
            .status();
        let _ = fs::remove_dir_all(tree);
    }
    let _ = git().args(["worktree", "prune"]).status();
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()).into())
}

/// The script that runs the builds in alternation, ROUNDS times (default
/// 2), and prints one line per run: the fa3-rs TFLOPs/s of every
/// configuration, in the table's order.
fn run_script(builds: &[Build]) -> String {
    let list: Vec<String> = builds
        .iter()
        .map(|b| format!("#   {}: {} at {}", b.name, b.rev, b.hash))
        .collect();
    let names: Vec<&str> = builds.iter().map(|b| b.name.as_str()).collect();
    format!(
        r#"#!/usr/bin/env bash
# Made by `cargo xtask ab`: fa3-bench at these revisions.
{list}
# ./run.sh [ROUNDS] [fa3-bench flags]: each build in turn, ROUNDS times (2), one
# line of fa3-rs TFLOPs/s per run (the table's fa3-rs column), configurations in the
# table's order; flags default to the backward subset of PERF.md.
set -uo pipefail
here="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
rounds="${{1:-2}}"
shift || true
flags=("$@")
[ "${{#flags[@]}}" -gt 0 ] || flags=(--no-peers --pass bwd --hdim 64,128,256 --seqlen 2k,8k --causal both --reps 20)
tmp="$(mktemp -d)"
for round in $(seq "$rounds"); do
    for b in {names}; do
        table="$("$here/$b/{bench}" "${{flags[@]}}" --out "$tmp/$b-$round" 2>&1)"
        [ "$round" = 1 ] && [ "$b" = {first} ] && echo "configs: $(echo "$table" | awk '/^ +[0-9]+ +(yes|no) /{{printf "%s/%s/%s ", $1, $2, $3}}')"
        echo "$b: $(echo "$table" | awk '/^ +[0-9]+ +(yes|no) /{{printf "%s ", $7}}')"
    done
done
"#,
        list = list.join("\n"),
        names = names.join(" "),
        first = names[0],
        bench = cmd::BENCH_PACKAGE,
    )
}
