//! The peers: the official FlashAttention-3 (its PyTorch and JAX builds),
//! PyTorch SDPA backends and the cuBLAS GEMM ceiling, measured by an
//! embedded Python helper (`py/peers.py`) in the same run. One JSON
//! request per line to its stdin, one JSON reply per line from its stdout.
//! A missing python3, torch or GPU makes every peer missing, not an error.

use crate::cli::Dtype;
use crate::grid::Config;
use crate::results::{Availability, Ceiling, Implementation, Outcome, PeerVersions, Timing};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

/// The helper, embedded so the bundle needs no extra file.
pub const HELPER: &str = include_str!("../py/peers.py");

/// The interpreter: `FA3_BENCH_PYTHON` (e.g. a virtualenv's), else python3.
pub fn python() -> String {
    std::env::var("FA3_BENCH_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Wheels installed for the helper into a temporary folder (removed on
/// drop), which goes first on its PYTHONPATH.
#[derive(Debug)]
pub struct PeerSite {
    dir: PathBuf,
}

impl PeerSite {
    /// Installs every `*.whl` of `wheels` with pip, offline and without
    /// dependencies (the GPU machine has torch and jax; the wheels add FA3).
    pub fn install(python: &str, wheels: &Path) -> Result<Self, String> {
        let mut found: Vec<PathBuf> = fs::read_dir(wheels)
            .map_err(|e| format!("cannot read {}: {e}", wheels.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|x| x == "whl"))
            .collect();
        if found.is_empty() {
            return Err(format!("no *.whl in {}", wheels.display()));
        }
        found.sort();
        let site = Self {
            dir: std::env::temp_dir().join(format!("fa3-bench-peers-{}", std::process::id())),
        };
        let out = Command::new(python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-index", "--no-deps", "--no-compile", "--target"])
            .arg(&site.dir)
            .args(&found)
            .env("PIP_ROOT_USER_ACTION", "ignore")
            .output()
            .map_err(|e| format!("could not start {python} -m pip: {e}"))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().last().unwrap_or("").trim();
            return Err(format!("pip install failed ({}): {last}", out.status));
        }
        Ok(site)
    }
}

impl Drop for PeerSite {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A running helper, or why there is none.
#[derive(Debug)]
pub enum Peers {
    Running(Helper),
    Missing(String),
}

/// The helper process and its pipes.
#[derive(Debug)]
pub struct Helper {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The last lines it wrote to stderr, to say why it died.
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

/// One reply; which fields are set depends on the request.
#[derive(Debug, Default, Deserialize)]
struct Reply {
    ok: bool,
    missing: Option<String>,
    wrong: Option<String>,
    median_ms: Option<f64>,
    min_ms: Option<f64>,
    max_ms: Option<f64>,
    check: Option<String>,
    note: Option<String>,
    n: Option<usize>,
    python: Option<String>,
    torch: Option<String>,
    cuda: Option<String>,
    cudnn: Option<String>,
    fa3: Option<String>,
    fa3_missing: Option<String>,
    fa3_jax: Option<String>,
    fa3_jax_missing: Option<String>,
}

/// A version, else the reason it is missing.
fn availability(version: Option<String>, missing: Option<String>) -> Availability {
    match (version, missing) {
        (Some(version), _) => Availability::Version(version),
        (None, reason) => Availability::Missing(reason.unwrap_or_else(|| "no reason given".into())),
    }
}

impl Peers {
    /// Starts the helper and asks for its versions; `versions.missing`
    /// says why there are no peers.
    pub fn start(python: &str, site: Option<&PeerSite>) -> (Self, PeerVersions) {
        let mut helper = match Helper::spawn(python, site) {
            Ok(helper) => helper,
            Err(reason) => return Self::missing(reason),
        };
        match helper.ask(&json!({"op": "versions"})) {
            Ok(reply) if reply.ok => {
                let versions = PeerVersions {
                    python: reply.python,
                    torch: reply.torch,
                    cuda: reply.cuda,
                    cudnn: reply.cudnn,
                    fa3: availability(reply.fa3, reply.fa3_missing),
                    fa3_jax: availability(reply.fa3_jax, reply.fa3_jax_missing),
                    missing: None,
                };
                (Self::Running(helper), versions)
            }
            Ok(reply) => {
                let reason = reply.missing.unwrap_or_else(|| "no reason given".into());
                let (peers, mut versions) = Self::missing(reason);
                versions.python = reply.python;
                (peers, versions)
            }
            Err(reason) => Self::missing(reason),
        }
    }

    /// No helper: every peer missing for `reason`.
    pub fn missing(reason: String) -> (Self, PeerVersions) {
        let versions = PeerVersions {
            fa3: Availability::Missing(reason.clone()),
            fa3_jax: Availability::Missing(reason.clone()),
            missing: Some(reason.clone()),
            ..PeerVersions::default()
        };
        (Self::Missing(reason), versions)
    }

    /// The GEMM rate of `dtype` ("bf16" or "fp8").
    pub fn gemm(&mut self, dtype: &str, reps: usize, warmup: usize) -> Ceiling {
        let request = json!({"op": "gemm", "dtype": dtype, "reps": reps, "warmup": warmup});
        let (outcome, n) = match self.ask(&request) {
            Ok(reply) => {
                let n = reply.n.unwrap_or(0);
                let flops = 2.0 * (n as f64).powi(3);
                let outcome = outcome(reply, flops, "not checked (a cuBLAS GEMM)");
                (outcome, n)
            }
            Err(reason) => (Outcome::Missing { reason }, 0),
        };
        Ceiling {
            dtype: dtype.into(),
            n,
            outcome,
        }
    }

    /// The official FA3's FP8 forward (non-causal) on e4m3 `inputs` (q, k,
    /// v files of `shape`) with one descale each, O written to `out` as
    /// little-endian bf16 (the FP8 accuracy experiment).
    pub fn fa3_fp8_out(
        &mut self,
        shape: [usize; 4],
        inputs: &[PathBuf],
        descales: &[f32],
        out: &Path,
    ) -> Result<(), String> {
        let request = json!({
            "op": "fa3_fp8_out", "shape": shape, "inputs": inputs,
            "descales": descales, "out": out,
        });
        let reply = self.ask(&request)?;
        if reply.ok {
            Ok(())
        } else {
            Err(reply.missing.unwrap_or_else(|| "no reason given".into()))
        }
    }

    /// One peer (FA3 or an SDPA backend) on `config`.
    pub fn time(
        &mut self,
        implementation: Implementation,
        c: &Config,
        reps: usize,
        warmup: usize,
    ) -> Outcome {
        let Some((op, backend)) = implementation.helper_op() else {
            return Outcome::Missing {
                reason: "not a peer of the Python helper".into(),
            };
        };
        let request = json!({
            "op": op,
            "backend": backend,
            "batch": c.batch,
            "seqlen_q": c.seqlen_q,
            "seqlen_k": c.seqlen_k,
            "heads_q": c.heads_q,
            "heads_kv": c.heads_kv,
            "head_dim": c.head_dim,
            "dtype": c.dtype.name(),
            "causal": c.causal,
            "pass": c.pass.name(),
            "reps": reps,
            "warmup": warmup,
        });
        match self.ask(&request) {
            Ok(reply) => outcome(reply, c.flops(), "checked by the helper"),
            Err(reason) => Outcome::Missing { reason },
        }
    }

    /// Sends `request`; a helper that dies takes every later peer with it.
    fn ask(&mut self, request: &Value) -> Result<Reply, String> {
        let reply = match self {
            Self::Missing(reason) => return Err(reason.clone()),
            Self::Running(helper) => helper.ask(request),
        };
        if let Err(reason) = &reply {
            *self = Self::Missing(reason.clone());
        }
        reply
    }
}

/// The outcome a reply describes.
fn outcome(reply: Reply, flops: f64, default_check: &str) -> Outcome {
    if let Some(reason) = reply.wrong {
        return Outcome::Failed { reason };
    }
    let timing = match (reply.ok, reply.median_ms, reply.min_ms, reply.max_ms) {
        (true, Some(median_ms), Some(min_ms), Some(max_ms)) => Timing {
            median_ms,
            min_ms,
            max_ms,
        },
        _ => {
            return Outcome::Missing {
                reason: reply
                    .missing
                    .unwrap_or_else(|| "the helper gave no timing".into()),
            };
        }
    };
    Outcome::Timed {
        tflops: crate::flops::tflops_per_s(flops, timing.median_ms),
        timing,
        check: reply.check.unwrap_or_else(|| default_check.into()),
        note: reply.note,
    }
}

/// The GEMM that bounds a dtype's attention: fp16 runs at bf16's rate.
pub fn gemm_dtype(dtype: Dtype) -> &'static str {
    match dtype {
        Dtype::Fp8 => "fp8",
        Dtype::Bf16 | Dtype::Fp16 => "bf16",
    }
}

impl Helper {
    fn spawn(python: &str, site: Option<&PeerSite>) -> Result<Self, String> {
        // `-c`, not `-`: stdin carries the requests.
        let mut command = Command::new(python);
        if let Some(site) = site {
            let mut path = std::ffi::OsString::from(&site.dir);
            if let Some(old) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
                path.push(":");
                path.push(old);
            }
            command.env("PYTHONPATH", path);
        }
        let mut child = command
            .args(["-u", "-c", HELPER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start {python}: {e}"))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(format!("{python} started without pipes"));
        };
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr_tail);
        // Drained continuously so torch's warnings cannot fill the pipe.
        thread::spawn(move || keep_tail(stderr, &tail));
        Ok(Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            stderr_tail,
        })
    }

    fn ask(&mut self, request: &Value) -> Result<Reply, String> {
        let mut line = request.to_string();
        line.push('\n');
        let mut reply = String::new();
        let sent = self
            .stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush());
        let read = sent.and_then(|()| self.stdout.read_line(&mut reply));
        match read {
            Ok(n) if n > 0 => serde_json::from_str(&reply)
                .map_err(|e| format!("the Python helper replied with unreadable JSON ({e})")),
            _ => Err(self.death()),
        }
    }

    /// Why the helper stopped answering.
    fn death(&mut self) -> String {
        let status = self.child.wait().ok();
        let last = self
            .stderr_tail
            .lock()
            .ok()
            .and_then(|tail| tail.back().cloned())
            .unwrap_or_default();
        match status {
            Some(status) => format!("the Python helper exited ({status}): {last}"),
            None => format!("the Python helper stopped answering: {last}"),
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // Closing stdin ends its loop; kill in case it is stuck in CUDA.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keep_tail(stderr: impl Read, tail: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { return };
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == 20 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    /// python3 is part of the test setup (`cargo xtask test` installs
    /// ptxas with it), so its absence fails rather than skips.
    pub(crate) fn require_python() -> String {
        let python = python();
        assert!(
            Command::new(&python).arg("--version").output().is_ok(),
            "{python} not found: the bench tests need it (set FA3_BENCH_PYTHON to another)"
        );
        python
    }

    #[test]
    fn no_python_makes_every_peer_missing() {
        let (mut peers, versions) = Peers::start("/nonexistent/python3", None);
        let reason = versions.missing.unwrap();
        assert!(
            reason.starts_with("could not start /nonexistent/python3"),
            "{reason}"
        );
        let ceiling = peers.gemm("bf16", 1, 0);
        assert_eq!(ceiling.outcome, Outcome::Missing { reason });
    }

    /// Without torch (this CPU machine) or without a GPU, the helper still
    /// answers every request, and says why; with both, it names its
    /// versions and each FA3 build or why it is missing.
    #[test]
    fn helper_answers_every_request() {
        let python = require_python();
        let mut helper = Helper::spawn(&python, None).unwrap();
        let versions = helper.ask(&json!({"op": "versions"})).unwrap();
        assert!(versions.python.is_some(), "{versions:?}");
        let unknown = helper.ask(&json!({"op": "nope"})).unwrap();
        assert_eq!(unknown.missing.as_deref(), Some("unknown request 'nope'"));
        if versions.ok {
            assert!(versions.torch.is_some(), "{versions:?}");
            for (version, missing) in [
                (&versions.fa3, &versions.fa3_missing),
                (&versions.fa3_jax, &versions.fa3_jax_missing),
            ] {
                assert!(version.is_some() != missing.is_some(), "{versions:?}");
            }
            return;
        }
        let reason = versions.missing.unwrap();
        assert!(reason.contains("torch"), "{reason}");
        let sdpa = json!({"op": "sdpa", "backend": "flash", "dtype": "bf16"});
        assert_eq!(helper.ask(&sdpa).unwrap().missing, Some(reason.clone()));
        let fa3 = json!({"op": "fa3", "dtype": "bf16", "pass": "fwd"});
        assert_eq!(helper.ask(&fa3).unwrap().missing, Some(reason.clone()));

        let (mut peers, versions) = Peers::start(&python, None);
        assert_eq!(versions.missing.as_ref(), Some(&reason));
        assert_eq!(peers.gemm("fp8", 1, 0).outcome, Outcome::Missing { reason });
    }

    #[test]
    fn replies_become_outcomes() {
        let timed = Reply {
            ok: true,
            median_ms: Some(2.0),
            min_ms: Some(1.5),
            max_ms: Some(3.0),
            note: Some("GQA native".into()),
            ..Reply::default()
        };
        let Outcome::Timed {
            tflops,
            check,
            note,
            ..
        } = outcome(timed, 1e12, "default")
        else {
            panic!("timed")
        };
        assert_eq!(
            (tflops, check.as_str(), note.as_deref()),
            (500.0, "default", Some("GQA native"))
        );
        let wrong = Reply {
            wrong: Some("out: too far".into()),
            ..Reply::default()
        };
        assert!(matches!(outcome(wrong, 1.0, ""), Outcome::Failed { .. }));
        let missing = Reply {
            missing: Some("No available kernel".into()),
            ..Reply::default()
        };
        assert_eq!(
            outcome(missing, 1.0, ""),
            Outcome::Missing {
                reason: "No available kernel".into()
            }
        );
    }
}
