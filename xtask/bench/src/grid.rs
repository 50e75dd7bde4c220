//! The configurations a run times, in the order of the tables and plots.

use crate::cli::{Dtype, Pass, Settings};
use crate::flops;
use serde::{Deserialize, Serialize};

/// One attention problem and what is timed of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub dtype: Dtype,
    pub pass: Pass,
    pub head_dim: usize,
    pub causal: bool,
    pub seqlen_q: usize,
    pub seqlen_k: usize,
    pub batch: usize,
    pub heads_q: usize,
    pub heads_kv: usize,
}

impl Config {
    /// The shape the forward's ablation builds exist for: bf16 forward,
    /// head dim 128.
    pub fn is_ablation_shape(&self) -> bool {
        self.dtype == crate::cli::Dtype::Bf16
            && self.pass == crate::cli::Pass::Fwd
            && self.head_dim == 128
    }

    /// FLOPs of one timed call, FlashAttention's count.
    pub fn flops(&self) -> f64 {
        let forward = flops::forward_flops(
            self.batch,
            self.heads_q,
            self.seqlen_q,
            self.seqlen_k,
            self.head_dim,
            self.causal,
        );
        flops::pass_flops(forward, self.pass)
    }

    /// Query heads per key/value head.
    pub fn group(&self) -> usize {
        self.heads_q / self.heads_kv
    }

    /// `bf16 fwd hdim 128 seqlen 4096 causal`, for progress and messages.
    pub fn label(&self) -> String {
        format!(
            "{} {} hdim {} seqlen {}{}",
            self.dtype.name(),
            self.pass.name(),
            self.head_dim,
            self.seqlen_q,
            if self.causal { " causal" } else { "" }
        )
    }
}

/// Every configuration of `settings`: dtype, pass, head dim, mask, then
/// sequence length vary from slowest to fastest, so each (dtype, pass) is
/// one table and each (head dim, mask) one plot panel.
pub fn configs(settings: &Settings) -> Vec<Config> {
    let mut all = Vec::new();
    for &dtype in &settings.dtypes {
        for &pass in &settings.passes {
            for &head_dim in &settings.head_dims {
                let heads_q = settings.hidden / head_dim;
                for &causal in &settings.causal {
                    for &seqlen in &settings.seqlens {
                        all.push(Config {
                            dtype,
                            pass,
                            head_dim,
                            causal,
                            seqlen_q: seqlen,
                            seqlen_k: seqlen,
                            batch: settings.tokens / seqlen,
                            heads_q,
                            heads_kv: heads_q / settings.gqa,
                        });
                    }
                }
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Args;
    use clap::Parser;

    fn grid(flags: &[&str]) -> Vec<Config> {
        let args = Args::parse_from(std::iter::once("fa3-bench").chain(flags.iter().copied()));
        configs(&args.settings().unwrap())
    }

    #[test]
    fn paper_grid_has_72_configurations_of_16k_tokens() {
        let all = grid(&["--paper"]);
        assert_eq!(all.len(), 3 * 6 * 2 * 2);
        for c in &all {
            assert_eq!(c.batch * c.seqlen_q, 16384);
            assert_eq!(c.heads_q * c.head_dim, 2048);
            assert_eq!((c.heads_kv, c.seqlen_k), (c.heads_q, c.seqlen_q));
        }
        let first = all[0];
        assert_eq!(
            (
                first.pass,
                first.head_dim,
                first.causal,
                first.seqlen_q,
                first.batch,
                first.heads_q
            ),
            (Pass::Fwd, 64, false, 512, 32, 32)
        );
        assert!(all[6].causal);
        assert_eq!(all[36].pass, Pass::Bwd);
        assert_eq!(all[71].label(), "bf16 bwd hdim 256 seqlen 16384 causal");
    }

    #[test]
    fn quick_grid_is_two_forward_configurations() {
        let all = grid(&["--quick"]);
        let shapes: Vec<_> = all
            .iter()
            .map(|c| (c.seqlen_q, c.batch, c.heads_q))
            .collect();
        assert_eq!(shapes, [(1024, 16, 16), (4096, 4, 16)]);
        assert_eq!(all[0].label(), "bf16 fwd hdim 128 seqlen 1024");
    }

    #[test]
    fn gqa_divides_the_kv_heads() {
        let all = grid(&["--quick", "--gqa", "4"]);
        assert_eq!(
            (all[0].heads_q, all[0].heads_kv, all[0].group()),
            (16, 4, 4)
        );
    }

    #[test]
    fn flops_follow_the_pass() {
        let fwd = grid(&["--quick", "--seqlen", "1k"])[0];
        let bwd = grid(&["--quick", "--seqlen", "1k", "--pass", "bwd"])[0];
        assert_eq!(fwd.flops(), 4.0 * 16.0 * 16.0 * 1024.0 * 1024.0 * 128.0);
        assert_eq!(bwd.flops(), 2.5 * fwd.flops());
    }
}
