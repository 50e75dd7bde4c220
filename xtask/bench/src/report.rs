//! The terminal report (a header, one table per dtype and pass, and what
//! is missing and why) and the JSON file.

use crate::cli::Pass;
use crate::results::{Availability, ConfigResult, Implementation, Outcome, Run};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What ran where, in two or three lines.
pub fn header(run: &Run) -> String {
    let g = &run.gpu;
    let mut gpu = vec![g.name.clone()];
    if let Some(n) = g.sm_count {
        gpu.push(format!("{n} SMs"));
    }
    if let (Some(now), Some(max)) = (g.sm_clock_mhz, g.max_sm_clock_mhz) {
        gpu.push(format!("SM clock {now}/{max} MHz"));
    }
    if let Some(driver) = &g.driver {
        gpu.push(format!("driver {driver}"));
    }
    if let Some(cuda) = &g.cuda_driver_api {
        gpu.push(format!("CUDA {cuda}"));
    }
    if let Some(copy) = g.copy_gb_per_s {
        gpu.push(format!("copy {:.2} TB/s", copy / 1000.0));
    }
    let mut text = format!("{} on {}\n", run.tool, gpu.join(", "));
    let p = &run.peers;
    if let Some(torch) = &p.torch {
        let cuda = p.cuda.as_deref().unwrap_or("?");
        let cudnn = p.cudnn.as_deref().unwrap_or("?");
        let _ = writeln!(text, "peers: PyTorch {torch} (CUDA {cuda}, cuDNN {cudnn})");
        let fa3: Vec<String> = [&p.fa3, &p.fa3_jax]
            .into_iter()
            .filter_map(|a| match a {
                Availability::Version(v) => Some(v.clone()),
                Availability::Missing(_) => None,
            })
            .collect();
        let fa3 = if fa3.is_empty() {
            "missing (see below)".to_string()
        } else {
            fa3.join(", ")
        };
        let _ = writeln!(text, "official FA3: {fa3}");
    }
    let ceilings: Vec<String> = run
        .ceilings
        .iter()
        .filter_map(|c| Some(format!("{} {:.0}", c.dtype, c.outcome.tflops()?)))
        .collect();
    if !ceilings.is_empty() {
        let _ = writeln!(text, "GEMM ceiling (TFLOPs/s): {}", ceilings.join(", "));
    }
    text
}

/// One table per (dtype, pass), in the order of the grid.
pub fn tables(run: &Run, color: bool) -> String {
    let mut text = String::new();
    let mut start = 0;
    while start < run.configs.len() {
        let first = &run.configs[start].config;
        let len = run.configs[start..]
            .iter()
            .take_while(|r| (r.config.dtype, r.config.pass) == (first.dtype, first.pass))
            .count();
        let backward = if first.pass == Pass::Fwd {
            ""
        } else {
            ", backward = 2.5 x forward"
        };
        let _ = writeln!(
            text,
            "\n{} {}: TFLOPs/s (FLOPs = 4·b·h·s_q·s_k·d over attended pairs{backward})",
            first.dtype.name(),
            first.pass.name(),
        );
        text += &table(run, &run.configs[start..start + len], color);
        start += len;
    }
    text
}

/// Columns before and after the implementations.
const LEADING: [&str; 4] = ["hdim", "causal", "seqlen", "batch x heads"];
const TRAILING: [&str; 4] = ["fa3-rs/FA3", "fa3-rs/cuDNN", "fa3-rs/FA2", "% of GEMM"];

/// The implementations a table shows: ours and the peers always, our
/// variants (ablation builds, FP8 block scales) when the table measured
/// them.
fn implementations(configs: &[ConfigResult]) -> Vec<Implementation> {
    Implementation::ALL
        .into_iter()
        .filter(|&i| {
            !Implementation::VARIANTS.contains(&i) || configs.iter().any(|r| r.outcome(i).is_some())
        })
        .collect()
}

/// A cell's text and, for ratios, whether ours wins.
struct Cell {
    text: String,
    wins: Option<bool>,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self { text, wins: None }
    }
}

fn table(run: &Run, configs: &[ConfigResult], color: bool) -> String {
    let shown = implementations(configs);
    let columns: Vec<&str> = LEADING
        .into_iter()
        .chain(shown.iter().map(|i| i.label()))
        .chain(TRAILING)
        .collect();
    let rows: Vec<Vec<Cell>> = configs.iter().map(|r| row(run, r, &shown)).collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            rows.iter()
                .map(|row| row[i].text.chars().count())
                .chain([columns[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    let header: Vec<String> = columns
        .iter()
        .zip(&widths)
        .map(|(name, &w)| format!("{name:>w$}"))
        .collect();
    text += header.join("  ").trim_end();
    text.push('\n');
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| {
                let padded = format!("{:>w$}", cell.text);
                match (color, cell.wins) {
                    (true, Some(true)) => format!("\x1b[1;32m{padded}\x1b[0m"),
                    (true, Some(false)) => format!("\x1b[1;31m{padded}\x1b[0m"),
                    _ => padded,
                }
            })
            .collect();
        text += cells.join("  ").trim_end();
        text.push('\n');
    }
    text
}

fn row(run: &Run, r: &ConfigResult, shown: &[Implementation]) -> Vec<Cell> {
    let c = &r.config;
    let heads = if c.heads_kv == c.heads_q {
        format!("{} x {}", c.batch, c.heads_q)
    } else {
        format!("{} x {} (kv {})", c.batch, c.heads_q, c.heads_kv)
    };
    let seqlen = if c.seqlen_q == c.seqlen_k {
        c.seqlen_q.to_string()
    } else {
        format!("{}/{}", c.seqlen_q, c.seqlen_k)
    };
    let mut cells: Vec<Cell> = vec![
        c.head_dim.to_string().into(),
        if c.causal { "yes" } else { "no" }.to_string().into(),
        seqlen.into(),
        heads.into(),
    ];
    for &implementation in shown {
        let text = match r.outcome(implementation) {
            Some(Outcome::Timed { tflops, .. }) => format!("{tflops:.0}"),
            Some(Outcome::Failed { .. }) => "FAIL".into(),
            Some(Outcome::Missing { .. }) | None => "-".into(),
        };
        cells.push(text.into());
    }
    let ours = r.tflops(Implementation::Fa3Rs);
    // FA3's PyTorch build where it runs (timed exactly like ours), else its
    // JAX build (fp16, the backward).
    let fa3 = r
        .tflops(Implementation::Fa3)
        .or_else(|| r.tflops(Implementation::Fa3Jax));
    for theirs in [
        fa3,
        r.tflops(Implementation::Cudnn),
        r.tflops(Implementation::Flash),
    ] {
        cells.push(match (ours, theirs) {
            (Some(ours), Some(peer)) => Cell {
                text: format!("{:.2}x", ours / peer),
                wins: Some(ours >= peer),
            },
            _ => "-".to_string().into(),
        });
    }
    let best = Implementation::ALL
        .iter()
        .filter_map(|&i| Some((r.tflops(i)?, i)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    cells.push(match (best, run.ceiling(c.dtype)) {
        (Some((tflops, i)), Some(ceiling)) => {
            format!("{:.0}% {}", 100.0 * tflops / ceiling, i.label()).into()
        }
        _ => "-".to_string().into(),
    });
    cells
}

/// What is missing and why, one line per reason, then every failure.
pub fn notes(run: &Run) -> Vec<String> {
    let mut missing: Vec<(String, Vec<String>)> = Vec::new();
    let mut failed = Vec::new();
    let mut note = |who: String, outcome: &Outcome, context: &str| match outcome {
        Outcome::Missing { reason } => match missing.iter_mut().find(|(r, _)| r == reason) {
            Some((_, names)) if names.contains(&who) => {}
            Some((_, names)) => names.push(who),
            None => missing.push((reason.clone(), vec![who])),
        },
        Outcome::Failed { reason } => failed.push(format!("{who} FAILED on {context}: {reason}")),
        Outcome::Timed { .. } => {}
    };
    for c in &run.ceilings {
        note(format!("GEMM {}", c.dtype), &c.outcome, "the GEMM ceiling");
    }
    for r in &run.configs {
        for m in &r.results {
            note(
                m.implementation.label().to_string(),
                &m.outcome,
                &r.config.label(),
            );
        }
    }
    missing
        .into_iter()
        .map(|(reason, names)| format!("{}: {reason}", names.join(", ")))
        .chain(failed)
        .collect()
}

/// Writes `<dir>/bench-<stamp>.json` and returns its path.
pub fn write_json(run: &Run, dir: &Path, stamp: &str) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let path = dir.join(format!("bench-{stamp}.json"));
    let text = serde_json::to_string_pretty(run).map_err(io::Error::other)?;
    fs::write(&path, text + "\n")?;
    Ok(path)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::Dtype;
    use crate::grid::Config;
    use crate::results::{Ceiling, GpuInfo, Measured, Method, PeerVersions, Timing};

    fn timed(tflops: f64) -> Outcome {
        Outcome::Timed {
            timing: Timing {
                median_ms: 2.0,
                min_ms: 1.5,
                max_ms: 2.5,
            },
            tflops,
            check: "FA3 accuracy rule".into(),
            note: None,
        }
    }

    fn missing(reason: &str) -> Outcome {
        Outcome::Missing {
            reason: reason.into(),
        }
    }

    /// Outcomes of fa3-rs, FA3, FA3 (JAX), cuDNN, FA2 and efficient.
    fn result(pass: Pass, causal: bool, seqlen: usize, outcomes: [Outcome; 6]) -> ConfigResult {
        let config = Config {
            dtype: Dtype::Bf16,
            pass,
            head_dim: 128,
            causal,
            seqlen_q: seqlen,
            seqlen_k: seqlen,
            batch: 16384 / seqlen,
            heads_q: 16,
            heads_kv: 16,
        };
        ConfigResult {
            config,
            flops: config.flops(),
            results: [Implementation::Fa3Rs]
                .into_iter()
                .chain(Implementation::PEERS)
                .zip(outcomes)
                .map(|(implementation, outcome)| Measured {
                    implementation,
                    outcome,
                })
                .collect(),
        }
    }

    /// Two tables (fwd, bwd): ours missing then present, a peer missing.
    pub(crate) fn synthetic_run() -> Run {
        let gone = "not implemented yet (GPU forward for bf16/f16)";
        let no_kernel = "No available kernel. Aborting execution.";
        let no_bwd = "fa3_fwd 0.0.3 is built without the backward (FA3 (JAX) times it)";
        let no_dew = "dew_flash_attn is not importable (ModuleNotFoundError: No module named \
                      'dew_flash_attn')";
        Run {
            tool: "fa3-bench 0.1.0".into(),
            command_line: vec!["fa3-bench".into(), "--quick".into()],
            started_utc: "2026-11-21T10:20:30Z".into(),
            gpu: GpuInfo {
                name: "NVIDIA H200".into(),
                sm_count: Some(132),
                sm_clock_mhz: Some(1980),
                max_sm_clock_mhz: Some(1980),
                driver: Some("580.95.05".into()),
                cuda_driver_api: Some("13.0".into()),
                fa3_module: "Cubin".into(),
                copy_gb_per_s: Some(4200.0),
                ..GpuInfo::default()
            },
            peers: PeerVersions {
                python: Some("3.11.7".into()),
                torch: Some("2.11.0".into()),
                cuda: Some("12.8".into()),
                cudnn: Some("91002".into()),
                fa3: Availability::Version("fa3_fwd 0.0.3 (PyTorch)".into()),
                fa3_jax: Availability::Missing(
                    "dew_flash_attn is not importable (ModuleNotFoundError: No module named \
                     'dew_flash_attn')"
                        .into(),
                ),
                missing: None,
            },
            method: Method {
                reps: 10,
                warmup: 2,
                tokens: 16384,
                hidden: 2048,
                gqa: 1,
                timing: "CUDA events".into(),
                fa3_jax_timing: "back-to-back calls".into(),
                flops: "4·b·h·s_q·s_k·d".into(),
                check: "sample".into(),
            },
            ceilings: vec![
                Ceiling {
                    dtype: "bf16".into(),
                    n: 8192,
                    outcome: timed(787.0),
                },
                Ceiling {
                    dtype: "fp8".into(),
                    n: 8192,
                    outcome: missing("this torch has no FP8 GEMM (torch._scaled_mm)"),
                },
            ],
            configs: vec![
                result(
                    Pass::Fwd,
                    false,
                    1024,
                    [
                        missing(gone),
                        timed(640.0),
                        missing(no_dew),
                        timed(629.0),
                        timed(341.0),
                        missing(no_kernel),
                    ],
                ),
                result(
                    Pass::Fwd,
                    true,
                    4096,
                    [
                        timed(650.0),
                        timed(700.0),
                        missing(no_dew),
                        timed(602.0),
                        timed(317.0),
                        timed(200.5),
                    ],
                ),
                result(
                    Pass::Bwd,
                    false,
                    1024,
                    [
                        timed(600.0),
                        missing(no_bwd),
                        timed(579.0),
                        timed(516.0),
                        timed(650.0),
                        missing(no_kernel),
                    ],
                ),
                result(
                    Pass::Bwd,
                    true,
                    4096,
                    [
                        Outcome::Failed {
                            reason: "wrong result (batch 0): dq off".into(),
                        },
                        missing(no_bwd),
                        missing(no_dew),
                        timed(511.0),
                        timed(281.0),
                        missing(no_kernel),
                    ],
                ),
            ],
        }
    }

    #[test]
    fn tables_show_missing_peers_as_dashes_and_ratios_when_both_ran() {
        let run = synthetic_run();
        let expected = "
bf16 fwd: TFLOPs/s (FLOPs = 4·b·h·s_q·s_k·d over attended pairs)
hdim  causal  seqlen  batch x heads  fa3-rs  FA3  FA3 (JAX)  cuDNN  FA2  efficient  fa3-rs/FA3  fa3-rs/cuDNN  fa3-rs/FA2  % of GEMM
 128      no    1024        16 x 16       -  640          -    629  341          -           -             -           -    81% FA3
 128     yes    4096         4 x 16     650  700          -    602  317        200       0.93x         1.08x       2.05x    89% FA3

bf16 bwd: TFLOPs/s (FLOPs = 4·b·h·s_q·s_k·d over attended pairs, backward = 2.5 x forward)
hdim  causal  seqlen  batch x heads  fa3-rs  FA3  FA3 (JAX)  cuDNN  FA2  efficient  fa3-rs/FA3  fa3-rs/cuDNN  fa3-rs/FA2  % of GEMM
 128      no    1024        16 x 16     600    -        579    516  650          -       1.04x         1.16x       0.92x    83% FA2
 128     yes    4096         4 x 16    FAIL    -          -    511  281          -           -             -           -  65% cuDNN
";
        assert_eq!(tables(&run, false), expected);
        let colored = tables(&run, true);
        assert!(
            colored.contains("\x1b[1;32m       1.16x\x1b[0m"),
            "{colored}"
        );
        assert!(colored.contains("\x1b[1;31m     0.92x\x1b[0m"), "{colored}");
        assert!(colored.contains("\x1b[1;31m     0.93x\x1b[0m"), "{colored}");
    }

    #[test]
    fn notes_name_each_reason_once() {
        assert_eq!(
            notes(&synthetic_run()),
            [
                "GEMM fp8: this torch has no FP8 GEMM (torch._scaled_mm)",
                "fa3-rs: not implemented yet (GPU forward for bf16/f16)",
                "FA3 (JAX): dew_flash_attn is not importable (ModuleNotFoundError: No module named 'dew_flash_attn')",
                "efficient: No available kernel. Aborting execution.",
                "FA3: fa3_fwd 0.0.3 is built without the backward (FA3 (JAX) times it)",
                "fa3-rs FAILED on bf16 bwd hdim 128 seqlen 4096 causal: wrong result (batch 0): dq off",
            ]
        );
    }

    #[test]
    fn header_names_gpu_peers_and_ceilings() {
        assert_eq!(
            header(&synthetic_run()),
            "fa3-bench 0.1.0 on NVIDIA H200, 132 SMs, SM clock 1980/1980 MHz, driver 580.95.05, \
             CUDA 13.0, copy 4.20 TB/s\n\
             peers: PyTorch 2.11.0 (CUDA 12.8, cuDNN 91002)\n\
             official FA3: fa3_fwd 0.0.3 (PyTorch)\n\
             GEMM ceiling (TFLOPs/s): bf16 787\n"
        );
    }

    #[test]
    fn json_round_trips() {
        let run = synthetic_run();
        let dir = std::env::temp_dir().join(format!("fa3-bench-json-{}", std::process::id()));
        let path = write_json(&run, &dir, "20261121-102030").unwrap();
        assert_eq!(path.file_name().unwrap(), "bench-20261121-102030.json");
        let text = fs::read_to_string(&path).unwrap();
        let back: Run = serde_json::from_str(&text).unwrap();
        assert_eq!(back, run);
        // The flat shape the plot script reads.
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let first = &value["configs"][0];
        assert_eq!(first["seqlen_q"], 1024);
        assert_eq!(first["results"][1]["implementation"], "fa3");
        assert_eq!(first["results"][1]["status"], "timed");
        assert_eq!(first["results"][3]["implementation"], "cudnn");
        assert_eq!(first["results"][1]["median_ms"], 2.0);
        assert_eq!(first["results"][0]["status"], "missing");
        fs::remove_dir_all(&dir).unwrap();
    }
}
