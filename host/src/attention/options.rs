//! Attention options (FA3's keyword arguments) and their validation.

use crate::error::{Error, Result};
use crate::reference::mask::Mask;

/// What a forward or backward computes besides plain softmax attention.
///
/// Build it like FA3's keyword arguments:
///
/// ```
/// use fa3::AttentionOptions;
/// let options = AttentionOptions::new()
///     .causal(true)
///     .window(Some(256), None)
///     .softcap(30.0);
/// assert!(options.causal && options.softmax_scale.is_none());
/// ```
///
/// Fields are public to read; every value is checked when an entry point
/// uses it (an invalid one is an [`Error::InvalidOption`]).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AttentionOptions {
    /// Scores are `softmax_scale · q·k`; `None` means `1/sqrt(head_dim)`.
    /// Must be finite and positive.
    pub softmax_scale: Option<f32>,
    /// Causal mask, aligned to the bottom-right corner of the score matrix
    /// as in FA3: query `i` sees key `j` iff `j <= i + seqlen_k - seqlen_q`.
    pub causal: bool,
    /// Keys left of the diagonal a query may see (`None`: unbounded).
    pub window_left: Option<usize>,
    /// Keys right of the diagonal a query may see (`None`: unbounded).
    pub window_right: Option<usize>,
    /// Tanh soft-capping `s = softcap · tanh(s / softcap)`; 0 turns it off.
    /// Must be finite and not negative.
    pub softcap: f32,
    /// Backward only: reproducible gradients (bitwise, run to run). The CPU
    /// reference is always deterministic.
    pub deterministic: bool,
}

impl Default for AttentionOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl AttentionOptions {
    /// Plain attention: default scale, no mask, no softcap.
    pub const fn new() -> Self {
        Self {
            softmax_scale: None,
            causal: false,
            window_left: None,
            window_right: None,
            softcap: 0.0,
            deterministic: false,
        }
    }

    /// Sets the score scale (default `1/sqrt(head_dim)`).
    pub const fn softmax_scale(mut self, scale: f32) -> Self {
        self.softmax_scale = Some(scale);
        self
    }

    /// Causal masking, bottom-right aligned. Together with [`Self::window`]
    /// the right bound must be `None` or `Some(0)`.
    pub const fn causal(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }

    /// Sliding window: query `i` sees key `j` iff
    /// `i + seqlen_k - seqlen_q - left <= j <= i + seqlen_k - seqlen_q + right`;
    /// a `None` side is unbounded. Negative windows cannot be expressed.
    pub const fn window(mut self, left: Option<usize>, right: Option<usize>) -> Self {
        self.window_left = left;
        self.window_right = right;
        self
    }

    /// Tanh soft-capping of the scores (0 turns it off).
    pub const fn softcap(mut self, softcap: f32) -> Self {
        self.softcap = softcap;
        self
    }

    /// Deterministic backward.
    pub const fn deterministic(mut self, deterministic: bool) -> Self {
        self.deterministic = deterministic;
        self
    }

    /// The scale the scores use for this head dimension: the one set, or
    /// `1/sqrt(head_dim)` rounded to `f32` as FA3 passes it to its kernels.
    pub fn effective_softmax_scale(&self, head_dim: usize) -> f32 {
        self.softmax_scale
            .unwrap_or_else(|| (1.0 / (head_dim as f64).sqrt()) as f32)
    }

    /// Checks every option and resolves the defaults.
    pub(crate) fn resolve(&self, head_dim: usize) -> Result<ScoreParams> {
        let scale = self.effective_softmax_scale(head_dim);
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::InvalidOption {
                option: "softmax_scale",
                problem: format!("{scale} given; accepted: a finite positive number"),
            });
        }
        if !(self.softcap.is_finite() && self.softcap >= 0.0) {
            return Err(Error::InvalidOption {
                option: "softcap",
                problem: format!(
                    "{} given; accepted: 0 (off) or a finite positive number",
                    self.softcap
                ),
            });
        }
        let right = match (self.causal, self.window_right) {
            (false, right) => right,
            (true, None | Some(0)) => Some(0),
            (true, Some(right)) => {
                return Err(Error::InvalidOption {
                    option: "window",
                    problem: format!(
                        "causal attention fixes the right bound at 0, but the window's right \
                         bound is {right}; accepted with causal: None or Some(0)"
                    ),
                });
            }
        };
        Ok(ScoreParams {
            scale: f64::from(scale),
            softcap: f64::from(self.softcap),
            mask: Mask {
                left: self.window_left,
                right,
            },
        })
    }
}

/// Validated options: how scores are computed and which are masked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ScoreParams {
    /// `softmax_scale`, exactly the `f32` value, widened.
    pub scale: f64,
    /// 0 = off.
    pub softcap: f64,
    pub mask: Mask,
}
