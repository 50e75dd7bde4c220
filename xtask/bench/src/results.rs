//! What a run measured: the model of the JSON file, the table and the plots.

use crate::grid::Config;
use serde::{Deserialize, Serialize};

/// The implementations a configuration is timed with, ours first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Implementation {
    /// This library.
    #[serde(rename = "fa3-rs")]
    Fa3Rs,
    /// The official FlashAttention-3 (Dao-AILab `hopper/`), the `fa3_fwd`
    /// build through PyTorch: forward, bf16 and fp8; timed like fa3-rs.
    #[serde(rename = "fa3")]
    Fa3,
    /// The official FlashAttention-3, the `dew-flash-attn-cu13` build
    /// through JAX: forward and backward, bf16 and fp16; timed from its
    /// kernels' CUPTI records (`Method::fa3_jax_timing`).
    #[serde(rename = "fa3-jax")]
    Fa3Jax,
    /// PyTorch SDPA, cuDNN backend.
    #[serde(rename = "cudnn")]
    Cudnn,
    /// PyTorch SDPA, flash backend (FlashAttention-2 inside PyTorch).
    #[serde(rename = "flash")]
    Flash,
    /// PyTorch SDPA, memory-efficient backend.
    #[serde(rename = "efficient")]
    Efficient,
    /// This library's forward built without pingpong (`--ablation`).
    #[serde(rename = "fa3-rs-no-pingpong")]
    Fa3RsNoPingpong,
    /// ... without the intra-warpgroup overlap.
    #[serde(rename = "fa3-rs-no-overlap")]
    Fa3RsNoOverlap,
    /// ... without either.
    #[serde(rename = "fa3-rs-plain")]
    Fa3RsPlain,
    /// This library's FP8 forward with block scales (one per block of the
    /// kernel's tile rows) instead of one per (batch, kv head).
    #[serde(rename = "fa3-rs-block-scales")]
    Fa3RsBlockScales,
}

impl Implementation {
    pub const ALL: [Self; 10] = [
        Self::Fa3Rs,
        Self::Fa3,
        Self::Fa3Jax,
        Self::Cudnn,
        Self::Flash,
        Self::Efficient,
        Self::Fa3RsNoPingpong,
        Self::Fa3RsNoOverlap,
        Self::Fa3RsPlain,
        Self::Fa3RsBlockScales,
    ];
    /// Ours in other configurations, shown only where measured: the
    /// ablation builds and the FP8 block scales.
    pub const VARIANTS: [Self; 4] = [
        Self::Fa3RsNoPingpong,
        Self::Fa3RsNoOverlap,
        Self::Fa3RsPlain,
        Self::Fa3RsBlockScales,
    ];
    pub const PEERS: [Self; 5] = [
        Self::Fa3,
        Self::Fa3Jax,
        Self::Cudnn,
        Self::Flash,
        Self::Efficient,
    ];
    /// The ablation builds of ours and the kernel schedule of each.
    pub const ABLATION: [(Self, fa3::diagnostics::Schedule); 3] = [
        (
            Self::Fa3RsNoPingpong,
            fa3::diagnostics::Schedule::NoPingpong,
        ),
        (Self::Fa3RsNoOverlap, fa3::diagnostics::Schedule::NoOverlap),
        (Self::Fa3RsPlain, fa3::diagnostics::Schedule::Plain),
    ];

    /// The table's column name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Fa3Rs => "fa3-rs",
            Self::Fa3 => "FA3",
            Self::Fa3Jax => "FA3 (JAX)",
            Self::Cudnn => "cuDNN",
            Self::Flash => "FA2",
            Self::Efficient => "efficient",
            Self::Fa3RsNoPingpong => "no pingpong",
            Self::Fa3RsNoOverlap => "no overlap",
            Self::Fa3RsPlain => "neither",
            Self::Fa3RsBlockScales => "block scales",
        }
    }

    /// The Python helper's request for this peer: its `op`, and the
    /// PyTorch `SDPBackend` for the SDPA peers (`None` for ours).
    pub fn helper_op(self) -> Option<(&'static str, Option<&'static str>)> {
        match self {
            Self::Fa3Rs
            | Self::Fa3RsNoPingpong
            | Self::Fa3RsNoOverlap
            | Self::Fa3RsPlain
            | Self::Fa3RsBlockScales => None,
            Self::Fa3 => Some(("fa3", None)),
            Self::Fa3Jax => Some(("fa3_jax", None)),
            Self::Cudnn => Some(("sdpa", Some("cudnn"))),
            Self::Flash => Some(("sdpa", Some("flash"))),
            Self::Efficient => Some(("sdpa", Some("efficient"))),
        }
    }
}

/// Median, fastest and slowest of the timed repetitions, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl Timing {
    /// The statistics of `samples` (`None` when there are none).
    pub fn of(mut samples: Vec<f64>) -> Option<Self> {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => samples[n / 2],
            _ => 0.5 * (samples[n / 2 - 1] + samples[n / 2]),
        };
        Some(Self {
            median_ms: median,
            min_ms: samples[0],
            max_ms: samples[n - 1],
        })
    }
}

/// What became of one implementation on one configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// Checked, then timed.
    Timed {
        #[serde(flatten)]
        timing: Timing,
        /// At the median time.
        tflops: f64,
        /// How the result was checked before it was timed.
        check: String,
        /// Anything that qualifies the number (e.g. how GQA was run).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Not available here: not implemented, not installed, not supported.
    Missing { reason: String },
    /// Ran, but gave a wrong result or an error: no number.
    Failed { reason: String },
}

impl Outcome {
    /// The outcome of timed repetitions of `flops` each.
    pub fn timed(flops: f64, samples: Vec<f64>, check: String, note: Option<String>) -> Self {
        match Timing::of(samples) {
            Some(timing) => Self::Timed {
                tflops: crate::flops::tflops_per_s(flops, timing.median_ms),
                timing,
                check,
                note,
            },
            None => Self::Missing {
                reason: "no timed repetition".into(),
            },
        }
    }

    pub fn tflops(&self) -> Option<f64> {
        match self {
            Self::Timed { tflops, .. } => Some(*tflops),
            _ => None,
        }
    }
}

/// One implementation's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub implementation: Implementation,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A configuration and every implementation's outcome on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigResult {
    #[serde(flatten)]
    pub config: Config,
    /// FLOPs of one timed call.
    pub flops: f64,
    pub results: Vec<Measured>,
}

impl ConfigResult {
    pub fn outcome(&self, implementation: Implementation) -> Option<&Outcome> {
        self.results
            .iter()
            .find(|m| m.implementation == implementation)
            .map(|m| &m.outcome)
    }

    pub fn tflops(&self, implementation: Implementation) -> Option<f64> {
        self.outcome(implementation)?.tflops()
    }
}

/// A dense GEMM rate measured in the same run: what attention can approach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ceiling {
    /// `bf16` (also the ceiling of fp16, same tensor-core rate) or `fp8`.
    pub dtype: String,
    /// `n` of the `n x n x n` GEMM.
    pub n: usize,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The GPU and the software the run used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    pub name: String,
    pub sm_count: Option<u32>,
    /// SM clock when the run started, and its maximum (nvidia-smi).
    pub sm_clock_mhz: Option<u32>,
    pub max_sm_clock_mhz: Option<u32>,
    pub memory_clock_mhz: Option<u32>,
    pub power_limit_w: Option<f64>,
    /// The NVIDIA driver (nvidia-smi), and the CUDA version it supports.
    pub driver: Option<String>,
    pub cuda_driver_api: Option<String>,
    /// Which image of fa3's kernel module loaded (cubin or PTX JIT).
    pub fa3_module: String,
    /// Device copy rate of the L2-flush kernel, bytes read + written.
    pub copy_gb_per_s: Option<f64>,
}

/// Versions of the peers' software, from the Python helper.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerVersions {
    pub python: Option<String>,
    pub torch: Option<String>,
    pub cuda: Option<String>,
    pub cudnn: Option<String>,
    /// The official FA3 build timed through PyTorch (`fa3_fwd` and its
    /// version), or why it is missing.
    #[serde(default)]
    pub fa3: Availability,
    /// The official FA3 build timed through JAX (`dew-flash-attn-cu13`,
    /// with JAX's version), or why it is missing.
    #[serde(default)]
    pub fa3_jax: Availability,
    /// Why there are no peers, when there are none.
    pub missing: Option<String>,
}

/// A peer's version, or why it could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    Version(String),
    Missing(String),
}

impl Default for Availability {
    fn default() -> Self {
        Self::Missing("no Python helper".into())
    }
}

/// How every number was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Method {
    pub reps: usize,
    pub warmup: usize,
    pub tokens: usize,
    pub hidden: usize,
    pub gqa: usize,
    pub timing: String,
    /// How the JAX build of FA3 is timed, and why that compares.
    #[serde(default)]
    pub fa3_jax_timing: String,
    pub flops: String,
    pub check: String,
}

/// Everything one run wrote: the JSON file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub tool: String,
    pub command_line: Vec<String>,
    /// ISO 8601, UTC.
    pub started_utc: String,
    pub gpu: GpuInfo,
    pub peers: PeerVersions,
    pub method: Method,
    pub ceilings: Vec<Ceiling>,
    pub configs: Vec<ConfigResult>,
}

impl Run {
    /// The GEMM ceiling (TFLOPs/s) that bounds `dtype`'s attention.
    pub fn ceiling(&self, dtype: crate::cli::Dtype) -> Option<f64> {
        let gemm = crate::peers::gemm_dtype(dtype);
        self.ceilings
            .iter()
            .find(|c| c.dtype == gemm)
            .and_then(|c| c.outcome.tflops())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let t = Timing::of(vec![3.0, 1.0, 2.0]).unwrap();
        assert_eq!((t.median_ms, t.min_ms, t.max_ms), (2.0, 1.0, 3.0));
        let t = Timing::of(vec![4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(t.median_ms, 2.5);
        assert_eq!(Timing::of(Vec::new()), None);
    }
}
