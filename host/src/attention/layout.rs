//! Shape, strides and offset of a tensor view, and the checks that make
//! every element offset computable without overflow and inside its memory.

use crate::error::{Error, Result};

/// Where a view's elements are: `offset + Σ index[i] · strides[i]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout<const R: usize> {
    pub offset: usize,
    pub shape: [usize; R],
    /// `None`: row-major contiguous (computed, with overflow checks, when
    /// the layout is checked).
    pub strides: Option<[usize; R]>,
}

/// A layout whose element offsets are known to fit (see [`Layout::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checked<const R: usize> {
    pub offset: usize,
    pub shape: [usize; R],
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

    /// Checks the strides (innermost 1), that every element offset (and its
    /// byte offset, for `elem_size`-byte elements) fits in `usize` and `i64`,
    /// and that the view stays within `len` elements of memory.
    pub fn check(&self, tensor: &'static str, len: usize, elem_size: usize) -> Result<Checked<R>> {
        let strides = self.strides(tensor)?;
        if let Some(&stride) = strides.last()
            && stride != 1
        {
            return Err(Error::InnermostStride { tensor, stride });
        }
        let overflow = |problem: String| Error::Overflow { tensor, problem };
        let extent = if self.shape.contains(&0) {
            0
        } else {
            let mut last = 0usize;
            for (axis, (&n, &s)) in self.shape.iter().zip(&strides).enumerate() {
                last = (n - 1)
                    .checked_mul(s)
                    .and_then(|span| last.checked_add(span))
                    .ok_or_else(|| {
                        overflow(format!(
                            "the offset of the last element along axis {axis} overflows usize"
                        ))
                    })?;
            }
            last + 1
        };
        let end = self.offset.checked_add(extent).ok_or_else(|| {
            overflow(format!(
                "offset {} + extent {extent} overflows usize",
                self.offset
            ))
        })?;
        if i64::try_from(end).is_err() {
            return Err(overflow(format!(
                "element offsets reach {end}, beyond i64::MAX (the kernels index with i64)"
            )));
        }
        if end
            .checked_mul(elem_size)
            .and_then(|bytes| i64::try_from(bytes).ok())
            .is_none()
        {
            return Err(overflow(format!(
                "byte offsets reach {end} × {elem_size} bytes, beyond i64::MAX"
            )));
        }
        if extent > 0 && end > len {
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

    fn strides(&self, tensor: &'static str) -> Result<[usize; R]> {
        if let Some(strides) = self.strides {
            return Ok(strides);
        }
        let mut strides = [1usize; R];
        for axis in (0..R.saturating_sub(1)).rev() {
            strides[axis] = strides[axis + 1]
                .checked_mul(self.shape[axis + 1])
                .ok_or_else(|| Error::Overflow {
                    tensor,
                    problem: format!(
                        "the row-major strides of shape {:?} overflow usize",
                        self.shape
                    ),
                })?;
        }
        Ok(strides)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_extent_is_the_element_count() {
        let c = Layout::contiguous([2, 3, 4]).check("t", 24, 2).unwrap();
        assert_eq!(c.strides, [12, 4, 1]);
        assert_eq!(c.extent, 24);
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
    fn empty_views_address_nothing() {
        let layout = Layout {
            offset: 100,
            shape: [0, 3, 4],
            strides: None,
        };
        assert_eq!(layout.check("t", 0, 2).unwrap().extent, 0);
    }

    #[test]
    fn overflow_is_an_error() {
        let huge = Layout {
            offset: 0,
            shape: [3, 8],
            strides: Some([1 << 62, 1]),
        };
        assert!(matches!(
            huge.check("t", usize::MAX, 2),
            Err(Error::Overflow { .. })
        ));
        let too_many = Layout::contiguous([1 << 40, 1 << 40, 8]);
        assert!(matches!(
            too_many.check("t", usize::MAX, 2),
            Err(Error::Overflow { .. })
        ));
    }
}
