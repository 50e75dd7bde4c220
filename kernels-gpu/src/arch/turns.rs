//! Pingpong: two consumer warpgroups take turns to issue their GEMMs on
//! named barriers, so one's softmax runs while the other's GEMMs occupy the
//! tensor cores (FA3 section 3.1). A turn is `begin` (wait for it), issue,
//! `end` (hand it over). Both consumers issue the same number of times;
//! consumer 1 hands the first turn to consumer 0 and keeps its last, so no
//! arrival is left over at the end.

use super::sync::{NamedBarrier, arrive, sync};

/// Both consumer warpgroups meet at each turn barrier.
const CONSUMER_THREADS: u32 = 256;

pub struct Turns {
    mine: NamedBarrier,
    other: NamedBarrier,
    me: u32,
    on: bool,
}

impl Turns {
    /// Turns of consumer `me` (0 or 1); `on = false` makes every call a
    /// no-op (the no-pingpong build).
    #[inline(always)]
    pub fn new(me: u32, on: bool) -> Self {
        let turns = Self {
            mine: NamedBarrier::consumer_turn(me),
            other: NamedBarrier::consumer_turn(1 - me),
            me,
            on,
        };
        if on && me == 1 {
            arrive(turns.other, CONSUMER_THREADS);
        }
        turns
    }

    /// Waits for this consumer's turn.
    #[inline(always)]
    pub fn begin(&self) {
        if self.on {
            sync(self.mine, CONSUMER_THREADS);
        }
    }

    /// Hands the turn to the other consumer (consumer 1 keeps its `last`).
    #[inline(always)]
    pub fn end(&self, last: bool) {
        if self.on && !(self.me == 1 && last) {
            arrive(self.other, CONSUMER_THREADS);
        }
    }
}
