//! The flags, the `--paper` and `--quick` presets, and their validation.

use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Head dimensions the kernels are built for.
pub const HEAD_DIMS: [usize; 3] = [64, 128, 256];

/// fa3 against the official FlashAttention-3, PyTorch SDPA (cuDNN, FA2,
/// efficient) and the cuBLAS GEMM ceiling on GPU 0, in TFLOPs/s as
/// FlashAttention counts them.
///
/// A preset sets the whole grid; grid flags given with it replace its parts.
/// Lists are comma-separated; counts take a `k` suffix (1k = 1024).
#[derive(Debug, Parser)]
#[command(name = "fa3-bench", version)]
pub struct Args {
    /// Head dimensions [64, 128, 256].
    #[arg(long, value_delimiter = ',')]
    pub hdim: Option<Vec<usize>>,
    /// Sequence lengths, e.g. 512,1k,2k,4k,8k,16k (query and key lengths are equal).
    #[arg(long, value_delimiter = ',', value_parser = parse_count)]
    pub seqlen: Option<Vec<usize>>,
    /// Causal mask: false, true, or both.
    #[arg(long, value_delimiter = ',')]
    pub causal: Option<Vec<Causal>>,
    /// Element types.
    #[arg(long, value_delimiter = ',')]
    pub dtype: Option<Vec<Dtype>>,
    /// Passes: forward, backward, or both in one timed call.
    #[arg(long, value_delimiter = ',')]
    pub pass: Option<Vec<Pass>>,
    /// Tokens per problem; batch = tokens / seqlen [default: 16k].
    #[arg(long, value_parser = parse_count)]
    pub tokens: Option<usize>,
    /// Model width; heads = hidden / hdim [default: 2048].
    #[arg(long, value_parser = parse_count)]
    pub hidden: Option<usize>,
    /// Query heads per key/value head (GQA); heads_kv = heads / gqa [default: 1].
    #[arg(long)]
    pub gqa: Option<usize>,
    /// Timed repetitions; the median, min and max are reported [default: 30, quick: 10].
    #[arg(long)]
    pub reps: Option<usize>,
    /// Untimed runs before timing [default: 5, quick: 2].
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Folder for the JSON results and PNG plots.
    #[arg(long, default_value = "bench-out")]
    pub out: PathBuf,
    /// Time fa3 only: no Python helper, no PyTorch peers, no GEMM ceiling.
    #[arg(long)]
    pub no_peers: bool,
    /// A folder of Python wheels to install for the peers, into a temporary
    /// folder put on the helper's PYTHONPATH: the official FA3 builds
    /// (`run.sh bench` passes the bundle's `peers/`).
    #[arg(long, value_name = "DIR")]
    pub peer_wheels: Option<PathBuf>,
    /// Also time the forward kernel without pingpong, without the
    /// intra-warpgroup overlap, and without either (the FA3 ablation; bf16
    /// forward configurations with hdim 128).
    #[arg(long)]
    pub ablation: bool,
    /// The FA3 paper's grid: hdim 64,128,256 x seqlen 512..16k x causal both, bf16, fwd and bwd.
    #[arg(long, conflicts_with = "quick")]
    pub paper: bool,
    /// A grid that finishes in under a minute: hdim 128 x seqlen 1k,4k, non-causal, bf16 fwd.
    #[arg(long)]
    pub quick: bool,
    /// Instead of timing, the FA3 paper's FP8 accuracy experiment (Table 3):
    /// RMSE of O per quantization, beside the official FA3's FP8 forward.
    #[arg(long, conflicts_with_all = ["paper", "quick"])]
    pub fp8_accuracy: bool,
}

/// `--causal` values; `both` stands for false and true.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Causal {
    /// No mask.
    #[value(alias = "no")]
    False,
    /// Bottom-right causal mask.
    #[value(alias = "yes")]
    True,
    /// Both of the above.
    Both,
}

/// Element type of `q`, `k`, `v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// bfloat16.
    Bf16,
    /// float16.
    #[value(alias = "f16")]
    Fp16,
    /// FP8 e4m3 (forward only, output in bf16).
    Fp8,
}

impl Dtype {
    pub fn name(self) -> &'static str {
        match self {
            Self::Bf16 => "bf16",
            Self::Fp16 => "fp16",
            Self::Fp8 => "fp8",
        }
    }
}

/// What one timed call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pass {
    /// Forward.
    Fwd,
    /// Backward (the forward runs before, untimed).
    Bwd,
    /// Forward then backward.
    Fwdbwd,
}

impl Pass {
    pub fn name(self) -> &'static str {
        match self {
            Self::Fwd => "fwd",
            Self::Bwd => "bwd",
            Self::Fwdbwd => "fwdbwd",
        }
    }
}

/// The validated run: what to time and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub head_dims: Vec<usize>,
    pub seqlens: Vec<usize>,
    pub causal: Vec<bool>,
    pub dtypes: Vec<Dtype>,
    pub passes: Vec<Pass>,
    pub tokens: usize,
    pub hidden: usize,
    pub gqa: usize,
    pub reps: usize,
    pub warmup: usize,
    pub out: PathBuf,
    pub peers: bool,
    pub peer_wheels: Option<PathBuf>,
    pub ablation: bool,
    pub fp8_accuracy: bool,
}

/// A flag combination that cannot be benchmarked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("--hdim {0} is not supported: the kernels take head dims 64, 128 and 256")]
    UnsupportedHeadDim(usize),
    #[error("--{0} must be at least 1")]
    Zero(&'static str),
    #[error("--{0} must not be empty")]
    Empty(&'static str),
    #[error("--tokens {tokens} is not a multiple of seqlen {seqlen} (batch = tokens / seqlen)")]
    TokensNotDivisible { tokens: usize, seqlen: usize },
    #[error("--hidden {hidden} is not a multiple of hdim {hdim} (heads = hidden / hdim)")]
    HiddenNotDivisible { hidden: usize, hdim: usize },
    #[error(
        "--gqa {gqa} does not divide the {heads} query heads of hdim {hdim} (heads_kv = heads / gqa)"
    )]
    GqaNotDividing {
        gqa: usize,
        heads: usize,
        hdim: usize,
    },
    #[error("--dtype fp8 is forward only (FA3 has no FP8 backward): use it with --pass fwd")]
    Fp8Backward,
}

/// The grid a preset (or no preset) starts from.
struct Preset {
    head_dims: &'static [usize],
    seqlens: &'static [usize],
    causal: &'static [bool],
    passes: &'static [Pass],
    reps: usize,
    warmup: usize,
}

const SEQLENS: &[usize] = &[512, 1024, 2048, 4096, 8192, 16384];

const DEFAULT: Preset = Preset {
    head_dims: &[128],
    seqlens: SEQLENS,
    causal: &[false, true],
    passes: &[Pass::Fwd],
    reps: 30,
    warmup: 5,
};
const PAPER: Preset = Preset {
    head_dims: &HEAD_DIMS,
    seqlens: SEQLENS,
    causal: &[false, true],
    passes: &[Pass::Fwd, Pass::Bwd],
    reps: 30,
    warmup: 5,
};
const QUICK: Preset = Preset {
    head_dims: &[128],
    seqlens: &[1024, 4096],
    causal: &[false],
    passes: &[Pass::Fwd],
    reps: 10,
    warmup: 2,
};

impl Args {
    /// The preset's grid with the given flags applied, checked.
    pub fn settings(&self) -> Result<Settings, FlagError> {
        let preset = if self.paper {
            &PAPER
        } else if self.quick {
            &QUICK
        } else {
            &DEFAULT
        };
        let causal = match &self.causal {
            Some(values) => values
                .iter()
                .flat_map(|c| match c {
                    Causal::False => &[false][..],
                    Causal::True => &[true],
                    Causal::Both => &[false, true],
                })
                .copied()
                .collect(),
            None => preset.causal.to_vec(),
        };
        let settings = Settings {
            head_dims: dedup(self.hdim.clone().unwrap_or(preset.head_dims.to_vec())),
            seqlens: dedup(self.seqlen.clone().unwrap_or(preset.seqlens.to_vec())),
            causal: dedup(causal),
            dtypes: dedup(self.dtype.clone().unwrap_or(vec![Dtype::Bf16])),
            passes: dedup(self.pass.clone().unwrap_or(preset.passes.to_vec())),
            tokens: self.tokens.unwrap_or(16 * 1024),
            hidden: self.hidden.unwrap_or(2048),
            gqa: self.gqa.unwrap_or(1),
            reps: self.reps.unwrap_or(preset.reps),
            warmup: self.warmup.unwrap_or(preset.warmup),
            out: self.out.clone(),
            peers: !self.no_peers,
            peer_wheels: self.peer_wheels.clone(),
            ablation: self.ablation,
            fp8_accuracy: self.fp8_accuracy,
        };
        settings.check()?;
        Ok(settings)
    }
}

impl Settings {
    fn check(&self) -> Result<(), FlagError> {
        for (flag, empty) in [
            ("hdim", self.head_dims.is_empty()),
            ("seqlen", self.seqlens.is_empty()),
            ("causal", self.causal.is_empty()),
            ("dtype", self.dtypes.is_empty()),
            ("pass", self.passes.is_empty()),
        ] {
            if empty {
                return Err(FlagError::Empty(flag));
            }
        }
        for (flag, value) in [("gqa", self.gqa), ("reps", self.reps)] {
            if value == 0 {
                return Err(FlagError::Zero(flag));
            }
        }
        if let Some(&hdim) = self.head_dims.iter().find(|d| !HEAD_DIMS.contains(d)) {
            return Err(FlagError::UnsupportedHeadDim(hdim));
        }
        if let Some(&seqlen) = self
            .seqlens
            .iter()
            .find(|&&s| !self.tokens.is_multiple_of(s))
        {
            return Err(FlagError::TokensNotDivisible {
                tokens: self.tokens,
                seqlen,
            });
        }
        for &hdim in &self.head_dims {
            if !self.hidden.is_multiple_of(hdim) {
                return Err(FlagError::HiddenNotDivisible {
                    hidden: self.hidden,
                    hdim,
                });
            }
            let heads = self.hidden / hdim;
            if !heads.is_multiple_of(self.gqa) {
                return Err(FlagError::GqaNotDividing {
                    gqa: self.gqa,
                    heads,
                    hdim,
                });
            }
        }
        if self.dtypes.contains(&Dtype::Fp8) && self.passes.iter().any(|&p| p != Pass::Fwd) {
            return Err(FlagError::Fp8Backward);
        }
        Ok(())
    }
}

/// A positive count, with an optional `k` suffix for 1024 (a clap value
/// parser, so a bad one is reported like any other bad flag value).
pub fn parse_count(text: &str) -> Result<usize, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, unit) = match lower.strip_suffix('k') {
        Some(digits) => (digits, 1024),
        None => (lower.as_str(), 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|&n| n > 0)
        .ok_or_else(|| "expected a positive count like 512, 4k or 16k".to_string())
}

/// Keeps the first of each value, in order: `--seqlen 1k,1024` times once.
fn dedup<T: PartialEq>(values: Vec<T>) -> Vec<T> {
    let mut kept = Vec::with_capacity(values.len());
    for v in values {
        if !kept.contains(&v) {
            kept.push(v);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(flags: &[&str]) -> Result<Settings, String> {
        let args = Args::try_parse_from(std::iter::once("fa3-bench").chain(flags.iter().copied()))
            .map_err(|e| e.to_string())?;
        args.settings().map_err(|e| e.to_string())
    }

    #[test]
    fn counts_take_a_k_suffix() {
        assert_eq!(parse_count("512"), Ok(512));
        assert_eq!(parse_count("16k"), Ok(16384));
        assert_eq!(parse_count("2K"), Ok(2048));
        for bad in [
            "",
            "0",
            "0k",
            "k",
            "1.5k",
            "-1",
            "4m",
            "99999999999999999999k",
        ] {
            assert!(parse_count(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_are_bf16_forward_hdim_128_over_all_seqlens() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.head_dims, [128]);
        assert_eq!(s.seqlens, SEQLENS);
        assert_eq!(s.causal, [false, true]);
        assert_eq!(
            (s.dtypes.as_slice(), s.passes.as_slice()),
            (&[Dtype::Bf16][..], &[Pass::Fwd][..])
        );
        assert_eq!((s.tokens, s.hidden, s.gqa), (16384, 2048, 1));
        assert_eq!(s.out, PathBuf::from("bench-out"));
        assert!(s.peers);
    }

    #[test]
    fn paper_preset_is_the_fa3_figures_grid() {
        let s = parse(&["--paper"]).unwrap();
        assert_eq!(s.head_dims, [64, 128, 256]);
        assert_eq!(s.seqlens, [512, 1024, 2048, 4096, 8192, 16384]);
        assert_eq!(s.causal, [false, true]);
        assert_eq!(s.passes, [Pass::Fwd, Pass::Bwd]);
        assert_eq!(s.dtypes, [Dtype::Bf16]);
        assert_eq!((s.tokens, s.hidden), (16384, 2048));
    }

    #[test]
    fn quick_preset_is_small_and_flags_override_it() {
        let s = parse(&["--quick"]).unwrap();
        assert_eq!(
            (s.head_dims.as_slice(), s.seqlens.as_slice()),
            (&[128][..], &[1024, 4096][..])
        );
        assert_eq!((s.causal.as_slice(), s.reps), (&[false][..], 10));
        let s = parse(&["--quick", "--hdim", "64", "--reps", "3"]).unwrap();
        assert_eq!((s.head_dims.as_slice(), s.reps), (&[64][..], 3));
        assert!(parse(&["--quick", "--paper"]).is_err());
    }

    #[test]
    fn lists_and_aliases() {
        let s = parse(&[
            "--hdim",
            "64,256",
            "--seqlen",
            "1k,2k,1024",
            "--causal",
            "both",
            "--dtype",
            "bf16,f16",
            "--pass",
            "fwd,bwd,fwdbwd",
            "--tokens",
            "8k",
            "--gqa",
            "4",
            "--no-peers",
        ])
        .unwrap();
        assert_eq!(s.head_dims, [64, 256]);
        assert_eq!(s.seqlens, [1024, 2048]);
        assert_eq!(s.causal, [false, true]);
        assert_eq!(s.dtypes, [Dtype::Bf16, Dtype::Fp16]);
        assert_eq!(s.passes, [Pass::Fwd, Pass::Bwd, Pass::Fwdbwd]);
        assert_eq!((s.tokens, s.gqa, s.peers), (8192, 4, false));
        assert_eq!(
            parse(&["--causal", "yes,no"]).unwrap().causal,
            [true, false]
        );
    }

    #[test]
    fn bad_flags_say_what_is_wrong() {
        let cases: &[(&[&str], &str)] = &[
            (&["--dtype", "fp32"], "invalid value 'fp32' for '--dtype"),
            (
                &["--hdim", "96"],
                "--hdim 96 is not supported: the kernels take head dims 64, 128 and 256",
            ),
            (&["--hdim", "x"], "invalid value 'x' for '--hdim"),
            (
                &["--seqlen", "3000"],
                "--tokens 16384 is not a multiple of seqlen 3000",
            ),
            (
                &["--seqlen", "1k", "--tokens", "1536"],
                "--tokens 1536 is not a multiple of seqlen 1024",
            ),
            (
                &["--seqlen", "1m"],
                "expected a positive count like 512, 4k or 16k",
            ),
            (&["--seqlen", "0"], "expected a positive count"),
            (&["--tokens", "0"], "expected a positive count"),
            (
                &["--hidden", "2000"],
                "--hidden 2000 is not a multiple of hdim 128",
            ),
            (
                &["--gqa", "3"],
                "--gqa 3 does not divide the 16 query heads of hdim 128",
            ),
            (&["--gqa", "0"], "--gqa must be at least 1"),
            (&["--reps", "0"], "--reps must be at least 1"),
            (
                &["--dtype", "fp8", "--pass", "bwd"],
                "--dtype fp8 is forward only",
            ),
            (
                &["--causal", "maybe"],
                "invalid value 'maybe' for '--causal",
            ),
            (&["--pass", "both"], "invalid value 'both' for '--pass"),
        ];
        for (flags, expected) in cases {
            let err = parse(flags).unwrap_err();
            assert!(err.contains(expected), "{flags:?}: {err}");
        }
    }
}
