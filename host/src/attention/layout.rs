//! Shape, strides and offset of a tensor view, and the checks that make
//! every element offset computable without overflow and inside its memory.
//! What a view must satisfy is stated once, on [`crate::Tensor`].

use crate::error::{Error, Result};

/// The longest axis any tensor may have: the kernels index tokens, heads
/// and feature columns with `i32` (TMA coordinates, tile counters).
pub(crate) const MAX_DIM: usize = i32::MAX as usize;

/// Where a view's elements are: `offset + Σ index[i] · strides[i]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout<const R: usize> {
    pub offset: usize,
    pub shape: [usize; R],
    /// `None`: row-major contiguous.
    pub strides: Option<[usize; R]>,
}

/// A layout whose element offsets are known to fit (see [`Layout::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checked<const R: usize> {
    pub offset: usize,
    pub shape: [usize; R],
    /// The strides, except that an axis of length 1 (which never moves an
    /// address) carries the span of the axes inside it, as if contiguous:
    /// whatever stride the caller gave such an axis, the kernels see the
    /// same, aligned, value.
    pub strides: [usize; R],
    /// Elements from `offset` to one past the last one addressed (0 when
    /// the view is empty).
    pub extent: usize,
}

impl<const R: usize> Layout<R> {
    pub fn contiguous(shape: [usize; R]) -> Self {
        Self {
            offset: 0,
            shape,
            strides: None,
        }
    }

    /// Checks, in this order: every axis at most [`MAX_DIM`] long; the
    /// innermost stride 1 (unless that axis has length 1); every element
    /// offset from the memory's start, and its byte offset for
    /// `elem_size`-byte elements, at most `i64::MAX` (all arithmetic
    /// checked: no stride sum can wrap); the view inside the `len`
    /// elements of its memory. An empty view addresses nothing, so nothing
    /// of it is checked, however long its other axes (its shape must still
    /// match the problem's).
    pub fn check(&self, tensor: &'static str, len: usize, elem_size: usize) -> Result<Checked<R>> {
        if self.shape.contains(&0) {
            return Ok(Checked {
                offset: self.offset,
                shape: self.shape,
                strides: self.strides.unwrap_or([0; R]),
                extent: 0,
            });
        }
        let overflow = |problem: String| Error::Overflow { tensor, problem };
        if let Some((axis, &n)) = self.shape.iter().enumerate().find(|(_, n)| **n > MAX_DIM) {
            return Err(overflow(format!(
                "axis {axis} has length {n}, more than 2^31 − 1 (the kernels index tokens, heads \
                 and columns with i32)"
            )));
        }
        let strides = normalized(
            self.shape,
            self.strides.unwrap_or_else(|| row_major(self.shape)),
        );
        if let Some(&stride) = self.strides.as_ref().and_then(|s| s.last())
            && self.shape[R - 1] > 1
            && stride != 1
        {
            return Err(Error::InnermostStride { tensor, stride });
        }
        // The last element's offset, in u128: R products of two values below
        // 2^64 cannot overflow it.
        let last = self
            .shape
            .iter()
            .zip(&strides)
            .map(|(&n, &s)| (n as u128 - 1) * s as u128)
            .sum::<u128>();
        let end = self.offset as u128 + last + 1;
        let limit = i64::MAX as u128;
        if end > limit {
            return Err(overflow(format!(
                "its elements reach offset {end} (offset {} + extent {}), beyond i64::MAX (the \
                 kernels index with i64)",
                self.offset,
                last + 1
            )));
        }
        if end * elem_size as u128 > limit {
            return Err(overflow(format!(
                "its bytes reach {end} × {elem_size}, beyond i64::MAX"
            )));
        }
        // Both fit in i64, so in usize.
        let (end, extent) = (end as usize, last as usize + 1);
        if end > len {
            return Err(Error::BufferTooSmall {
                tensor,
                needed: end,
                len,
            });
        }
        Ok(Checked {
            offset: self.offset,
            shape: self.shape,
            strides,
            extent,
        })
    }
}

/// The element count of `shape`, counted logically (a zero stride counts
/// each of its indices; an empty shape has none, however long its other
/// axes): at most `i64::MAX`, what the kernels index with, or
/// [`Error::Overflow`].
pub(crate) fn element_count(tensor: &'static str, shape: &[usize]) -> Result<usize> {
    if shape.contains(&0) {
        return Ok(0);
    }
    shape
        .iter()
        .try_fold(1u128, |n, &d| n.checked_mul(d as u128))
        .filter(|&n| n <= i64::MAX as u128)
        .map(|n| n as usize)
        .ok_or_else(|| Error::Overflow {
            tensor,
            problem: format!("shape {shape:?} has more than i64::MAX elements"),
        })
}

/// Row-major strides of a shape whose element count fits (every axis is at
/// most 2^31 − 1 and the view is checked against i64 before these are
/// used); saturating, so a shape too large for them is refused by that
/// check rather than wrapping here.
fn row_major<const R: usize>(shape: [usize; R]) -> [usize; R] {
    let mut strides = [1usize; R];
    for axis in (0..R.saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1].saturating_mul(shape[axis + 1]);
    }
    strides
}

/// `strides` with each axis of length 1 given the span of the axes inside
/// it (what a row-major stride would be over them). Such an axis never
/// moves an address, so this changes no element's offset.
fn normalized<const R: usize>(shape: [usize; R], mut strides: [usize; R]) -> [usize; R] {
    let mut span = 1usize;
    for axis in (0..R).rev() {
        if shape[axis] == 1 {
            strides[axis] = span;
        }
        span = span.saturating_add((shape[axis] - 1).saturating_mul(strides[axis]));
    }
    strides
}

impl<const R: usize> Checked<R> {
    /// Elements the view addresses, counted logically (see [`element_count`]).
    pub fn elements(&self, tensor: &'static str) -> Result<usize> {
        element_count(tensor, &self.shape)
    }

    /// Errors unless every element of the view has an address of its own:
    /// sorted by stride, the axes longer than 1 must each step past all the
    /// elements the smaller ones address. Required of every output, where
    /// two indices sharing an element would make the result depend on the
    /// order of the writes.
    pub fn distinct(&self, tensor: &'static str) -> Result<()> {
        if self.extent == 0 {
            return Ok(());
        }
        let mut axes: Vec<usize> = (0..R).filter(|&a| self.shape[a] > 1).collect();
        axes.sort_by_key(|&a| self.strides[a]);
        // Elements [0, span) are what the axes so far address (and more).
        let mut span = 1u128;
        for axis in axes {
            let (n, stride) = (self.shape[axis], self.strides[axis]);
            if (stride as u128) < span {
                return Err(Error::SelfOverlap {
                    tensor,
                    problem: format!(
                        "axis {axis} (length {n}, stride {stride}) steps onto elements that the \
                         axes of smaller stride reach (they span {span} elements)"
                    ),
                });
            }
            span += (n as u128 - 1) * stride as u128;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strided<const R: usize>(shape: [usize; R], strides: [usize; R]) -> Layout<R> {
        Layout {
            offset: 0,
            shape,
            strides: Some(strides),
        }
    }

    #[test]
    fn contiguous_extent_is_the_element_count() {
        let c = Layout::contiguous([2, 3, 4]).check("t", 24, 2).unwrap();
        assert_eq!(c.strides, [12, 4, 1]);
        assert_eq!(c.extent, 24);
        assert_eq!(c.elements("t").unwrap(), 24);
    }

    #[test]
    fn padded_strides_and_offset_extend_the_extent() {
        let layout = Layout {
            offset: 5,
            shape: [2, 3, 4],
            strides: Some([40, 8, 1]),
        };
        assert_eq!(
            layout.check("t", 5 + 40 + 16 + 4, 2).unwrap().extent,
            40 + 16 + 4
        );
        assert!(matches!(
            layout.check("t", 64, 2),
            Err(Error::BufferTooSmall {
                needed: 65,
                len: 64,
                ..
            })
        ));
    }

    #[test]
    fn empty_views_address_nothing_whatever_their_other_axes() {
        let layout = Layout {
            offset: 100,
            shape: [0, 3, 4],
            strides: None,
        };
        assert_eq!(layout.check("t", 0, 2).unwrap().extent, 0);
        // Huge but empty: the same answer contiguous or strided.
        let big = 1 << 30;
        assert_eq!(
            Layout::contiguous([0, big, big, big])
                .check("t", 0, 2)
                .unwrap()
                .extent,
            0
        );
        assert_eq!(
            strided([0, big, big, big], [7, 3, 2, 1])
                .check("t", 0, 2)
                .unwrap()
                .extent,
            0
        );
    }

    #[test]
    fn overflow_is_an_error() {
        let huge = strided([3, 8], [1 << 62, 1]);
        assert!(matches!(
            huge.check("t", usize::MAX, 2),
            Err(Error::Overflow { .. })
        ));
        let too_long = Layout::contiguous([1 << 31, 8]);
        assert!(matches!(
            too_long.check("t", usize::MAX, 2),
            Err(Error::Overflow { .. })
        ));
    }

    /// The extent wrap: strides summing to usize::MAX made the
    /// extent `last + 1` wrap to 0, so any buffer passed.
    #[test]
    fn an_extent_past_usize_max_is_refused_not_wrapped() {
        let wrap = strided([2, 1, 2, 8], [1 << 63, 0, (1 << 63) - 8, 1]);
        assert!(matches!(
            wrap.check("q", 0, 2),
            Err(Error::Overflow { tensor: "q", .. })
        ));
    }

    #[test]
    fn axes_of_length_1_take_no_stride_rule() {
        // Innermost axis of length 1 with stride 5; batch axis of length 1
        // with an odd stride: both are irrelevant to every address.
        let c = strided([1, 4, 1], [3, 1, 5]).check("lse", 4, 4).unwrap();
        assert_eq!(c.strides, [4, 1, 1]);
        assert_eq!(c.extent, 4);
        assert!(matches!(
            strided([2, 4, 2], [8, 2, 5]).check("lse", 100, 4),
            Err(Error::InnermostStride { stride: 5, .. })
        ));
    }

    #[test]
    fn outputs_must_not_revisit_an_element() {
        let check = |shape: [usize; 4], strides: [usize; 4]| {
            strided(shape, strides)
                .check("out", 1 << 20, 2)
                .unwrap()
                .distinct("out")
        };
        // Padded, permuted and interleaved layouts are fine.
        assert!(check([2, 3, 4, 8], [96, 32, 8, 1]).is_ok());
        assert!(check([2, 3, 4, 8], [200, 64, 16, 1]).is_ok());
        assert!(check([2, 3, 4, 8], [8, 64, 16, 1]).is_ok());
        // A broadcast, a head stride below head_dim, a zero seqlen stride.
        for strides in [[0, 0, 0, 1], [96, 32, 4, 1], [96, 0, 8, 1]] {
            assert!(
                matches!(check([2, 3, 4, 8], strides), Err(Error::SelfOverlap { .. })),
                "{strides:?}"
            );
        }
        // Length-1 axes may have any stride, even 0.
        assert!(check([1, 3, 1, 8], [0, 8, 0, 1]).is_ok());
    }
}
