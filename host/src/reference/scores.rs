//! One attention score, as FA3 computes it: scale, then optional tanh
//! soft-capping.

use super::accum::Acc;
use crate::attention::ScoreParams;

/// [`ScoreParams`] in the accumulation precision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scorer<A> {
    scale: A,
    /// 0 when soft-capping is off.
    softcap: A,
}

impl<A: Acc> Scorer<A> {
    pub fn new(params: &ScoreParams) -> Self {
        Self {
            scale: A::from_f64(params.scale),
            softcap: A::from_f64(params.softcap),
        }
    }

    pub fn scale(&self) -> A {
        self.scale
    }

    /// The score of a raw dot product `q·k`.
    pub fn score(&self, qk: A) -> A {
        self.score_and_slope(qk).0
    }

    /// The score of `q·k` and its derivative with respect to `scale · q·k`
    /// (1 without soft-capping; `1 - tanh²` with it).
    pub fn score_and_slope(&self, qk: A) -> (A, A) {
        let s = self.scale * qk;
        if self.softcap == A::ZERO {
            (s, A::ONE)
        } else {
            let t = (s / self.softcap).tanh();
            (self.softcap * t, A::ONE - t * t)
        }
    }
}
