//! The problem's dimensions, read off `q`, `k` and `v`, and the shape every
//! other tensor must have.

use crate::error::{Error, Result};
use crate::reference::seqlen::Seqlens;

/// One axis a tensor must have: its name, length, and which argument set it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axis {
    name: &'static str,
    len: usize,
    set_by: &'static str,
}

pub(crate) const fn axis(name: &'static str, len: usize, set_by: &'static str) -> Axis {
    Axis { name, len, set_by }
}

/// Errors on the first axis of `got` that differs from `want`.
pub(crate) fn expect<const R: usize>(
    tensor: &'static str,
    got: [usize; R],
    want: [Axis; R],
) -> Result<()> {
    for (i, (got, want)) in got.into_iter().zip(want).enumerate() {
        if got != want.len {
            return Err(Error::ShapeMismatch {
                tensor,
                axis: i,
                dim: want.name,
                got,
                expected: want.len,
                set_by: want.set_by,
            });
        }
    }
    Ok(())
}

/// The dimensions of a problem (fixed-length or packed), read off
/// rank-`R` `q`, `k`, `v`, and the shapes of the rank-`R` tensors that
/// follow from them.
pub(crate) trait Dims<const R: usize>: Sized + Copy {
    /// Reads the dimensions off `q`, `k`, `v` and checks they agree.
    fn read(q: [usize; R], k: [usize; R], v: [usize; R]) -> Result<Self>;
    fn heads(&self) -> Heads;
    /// `out` and `dout`.
    fn out(&self) -> [Axis; R];
    /// `dq`, `dk`, `dv`: like `q`, `k`, `v`.
    fn grads(&self) -> [[Axis; R]; 3];
}

/// The shape of the rank-`L` log-sum-exp.
pub(crate) trait LseShape<const L: usize> {
    fn lse(&self) -> [Axis; L];
}

/// Heads and head dimensions, common to fixed and variable length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Heads {
    pub q: usize,
    pub kv: usize,
    pub head_dim: usize,
    pub head_dim_v: usize,
}

impl Heads {
    /// GQA/MQA grouping and the supported head dimensions.
    fn check(self) -> Result<Self> {
        if self.q == 0 || self.kv == 0 || !self.q.is_multiple_of(self.kv) {
            return Err(Error::HeadsNotDivisible {
                heads_q: self.q,
                heads_kv: self.kv,
            });
        }
        for (dim, got) in [("head_dim", self.head_dim), ("head_dim_v", self.head_dim_v)] {
            if !(1..=256).contains(&got) || !got.is_multiple_of(8) {
                return Err(Error::UnsupportedHeadDim { dim, got });
            }
        }
        Ok(self)
    }
}

/// Dimensions of a fixed-length problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FixedDims {
    pub batch: usize,
    pub seqlen_q: usize,
    pub seqlen_k: usize,
    pub heads: Heads,
}

impl Dims<4> for FixedDims {
    fn read(q: [usize; 4], k: [usize; 4], v: [usize; 4]) -> Result<Self> {
        let [batch, seqlen_q, heads_q, head_dim] = q;
        expect(
            "k",
            k,
            [
                axis("batch", batch, "q"),
                axis("seqlen_k", k[1], "k"),
                axis("heads_kv", k[2], "k"),
                axis("head_dim", head_dim, "q"),
            ],
        )?;
        let [_, seqlen_k, heads_kv, _] = k;
        expect(
            "v",
            v,
            [
                axis("batch", batch, "q"),
                axis("seqlen_k", seqlen_k, "k"),
                axis("heads_kv", heads_kv, "k"),
                axis("head_dim_v", v[3], "v"),
            ],
        )?;
        let heads = Heads {
            q: heads_q,
            kv: heads_kv,
            head_dim,
            head_dim_v: v[3],
        }
        .check()?;
        Ok(Self {
            batch,
            seqlen_q,
            seqlen_k,
            heads,
        })
    }

    fn heads(&self) -> Heads {
        self.heads
    }

    /// `(batch, seqlen_q, heads_q, head_dim_v)`.
    fn out(&self) -> [Axis; 4] {
        [
            axis("batch", self.batch, "q"),
            axis("seqlen_q", self.seqlen_q, "q"),
            axis("heads_q", self.heads.q, "q"),
            axis("head_dim_v", self.heads.head_dim_v, "v"),
        ]
    }

    fn grads(&self) -> [[Axis; 4]; 3] {
        let (b, h) = (self.batch, self.heads);
        [
            [
                axis("batch", b, "q"),
                axis("seqlen_q", self.seqlen_q, "q"),
                axis("heads_q", h.q, "q"),
                axis("head_dim", h.head_dim, "q"),
            ],
            [
                axis("batch", b, "k"),
                axis("seqlen_k", self.seqlen_k, "k"),
                axis("heads_kv", h.kv, "k"),
                axis("head_dim", h.head_dim, "k"),
            ],
            [
                axis("batch", b, "v"),
                axis("seqlen_k", self.seqlen_k, "v"),
                axis("heads_kv", h.kv, "v"),
                axis("head_dim_v", h.head_dim_v, "v"),
            ],
        ]
    }
}

impl FixedDims {
    /// `batch` sequences of equal lengths.
    pub fn seqlens(&self) -> Seqlens {
        Seqlens::fixed(self.batch, self.seqlen_q, self.seqlen_k)
    }
}

/// Dimensions of a variable-length (packed) problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedDims {
    pub total_q: usize,
    pub total_k: usize,
    pub heads: Heads,
}

impl Dims<3> for PackedDims {
    fn read(q: [usize; 3], k: [usize; 3], v: [usize; 3]) -> Result<Self> {
        let [total_q, heads_q, head_dim] = q;
        expect(
            "k",
            k,
            [
                axis("total_k", k[0], "k"),
                axis("heads_kv", k[1], "k"),
                axis("head_dim", head_dim, "q"),
            ],
        )?;
        let [total_k, heads_kv, _] = k;
        expect(
            "v",
            v,
            [
                axis("total_k", total_k, "k"),
                axis("heads_kv", heads_kv, "k"),
                axis("head_dim_v", v[2], "v"),
            ],
        )?;
        let heads = Heads {
            q: heads_q,
            kv: heads_kv,
            head_dim,
            head_dim_v: v[2],
        }
        .check()?;
        Ok(Self {
            total_q,
            total_k,
            heads,
        })
    }

    fn heads(&self) -> Heads {
        self.heads
    }

    /// `(total_q, heads_q, head_dim_v)`.
    fn out(&self) -> [Axis; 3] {
        [
            axis("total_q", self.total_q, "q"),
            axis("heads_q", self.heads.q, "q"),
            axis("head_dim_v", self.heads.head_dim_v, "v"),
        ]
    }

    fn grads(&self) -> [[Axis; 3]; 3] {
        let h = self.heads;
        [
            [
                axis("total_q", self.total_q, "q"),
                axis("heads_q", h.q, "q"),
                axis("head_dim", h.head_dim, "q"),
            ],
            [
                axis("total_k", self.total_k, "k"),
                axis("heads_kv", h.kv, "k"),
                axis("head_dim", h.head_dim, "k"),
            ],
            [
                axis("total_k", self.total_k, "v"),
                axis("heads_kv", h.kv, "v"),
                axis("head_dim_v", h.head_dim_v, "v"),
            ],
        ]
    }
}

/// `(batch, heads_q, seqlen_q)`.
impl LseShape<3> for FixedDims {
    fn lse(&self) -> [Axis; 3] {
        [
            axis("batch", self.batch, "q"),
            axis("heads_q", self.heads.q, "q"),
            axis("seqlen_q", self.seqlen_q, "q"),
        ]
    }
}

/// `(heads_q, total_q)`, as FA3's varlen.
impl LseShape<2> for PackedDims {
    fn lse(&self) -> [Axis; 2] {
        [
            axis("heads_q", self.heads.q, "q"),
            axis("total_q", self.total_q, "q"),
        ]
    }
}
