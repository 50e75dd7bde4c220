//! Where a ring of `S` shared-memory stages stands: stage index and phase.
//!
//! An mbarrier completes phases 0, 1, 0, 1, ...; a waiter names the parity
//! of the phase it waits for. Every pass over the ring flips the parity, so
//! the state is (stage, parity) and nobody computes a parity by hand.

/// Position in a ring of `S` stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineState<const S: usize> {
    index: u32,
    phase: u32,
}

impl<const S: usize> PipelineState<S> {
    const NONEMPTY: () = assert!(S > 0, "a ring needs at least one stage");

    /// Where consumers start: stage 0, waiting for the first fill (parity 0).
    pub const fn consumer() -> Self {
        let () = Self::NONEMPTY;
        Self { index: 0, phase: 0 }
    }

    /// Where the producer starts: stage 0, parity 1. Buffers start empty, and
    /// waiting for parity 1 on a fresh barrier returns at once (it counts as
    /// the phase before phase 0).
    pub const fn producer() -> Self {
        let () = Self::NONEMPTY;
        Self { index: 0, phase: 1 }
    }

    /// The stage index, `0..S`.
    pub const fn index(self) -> u32 {
        self.index
    }

    /// The parity to wait for at this stage.
    pub const fn phase(self) -> u32 {
        self.phase
    }

    /// Moves to the next stage, flipping the parity when the ring wraps.
    pub fn advance(&mut self) {
        self.index += 1;
        if self.index == S as u32 {
            self.index = 0;
            self.phase ^= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PipelineState;

    #[test]
    fn wraps_and_flips_parity() {
        let mut s = PipelineState::<3>::consumer();
        let mut seen = [(0, 0); 7];
        for slot in &mut seen {
            *slot = (s.index(), s.phase());
            s.advance();
        }
        assert_eq!(
            seen,
            [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1), (0, 0)]
        );
    }

    #[test]
    fn producer_starts_one_parity_ahead() {
        let (c, p) = (
            PipelineState::<2>::consumer(),
            PipelineState::<2>::producer(),
        );
        assert_eq!((p.index(), p.phase()), (c.index(), c.phase() ^ 1));
    }

    #[test]
    fn single_stage_flips_every_step() {
        let mut s = PipelineState::<1>::producer();
        s.advance();
        assert_eq!((s.index(), s.phase()), (0, 0));
    }
}
