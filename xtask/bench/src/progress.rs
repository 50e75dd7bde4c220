//! One updating stderr line, `[k/n] bf16 fwd hdim 128 seqlen 4096 causal`,
//! while a grid runs; one line per step when stderr is not a terminal, so
//! logs keep them all.

use std::io::{IsTerminal, Write};

#[derive(Debug)]
pub struct Progress {
    total: usize,
    terminal: bool,
}

impl Progress {
    pub fn new(total: usize) -> Self {
        Self {
            total,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Step `k` (from 1) is starting.
    pub fn step(&self, k: usize, what: &str) {
        let line = format!("[{k}/{}] {what}", self.total);
        let mut err = std::io::stderr().lock();
        // A progress line that cannot be written is not worth failing for.
        let _ = if self.terminal {
            write!(err, "\r\x1b[K{line}").and_then(|()| err.flush())
        } else {
            writeln!(err, "{line}")
        };
    }

    /// Clears the line before the table is printed.
    pub fn finish(&self) {
        if self.terminal {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}
