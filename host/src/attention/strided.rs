//! Copies between strided host views and the packed row-major vectors the
//! CPU reference computes on.

use super::element::Real;
use super::layout::Checked;
use crate::reference::accum::Acc;

/// Offsets (from the view's offset) of each innermost row, in row-major
/// order of the outer indices.
fn row_starts<const R: usize>(c: &Checked<R>) -> impl Iterator<Item = usize> + '_ {
    let outer = R - 1;
    let rows: usize = if c.extent == 0 {
        0
    } else {
        c.shape[..outer].iter().product()
    };
    let mut index = [0usize; R];
    (0..rows).map(move |row| {
        if row > 0 {
            // Odometer increment over the outer axes, innermost fastest.
            for axis in (0..outer).rev() {
                index[axis] += 1;
                if index[axis] < c.shape[axis] {
                    break;
                }
                index[axis] = 0;
            }
        }
        index[..outer]
            .iter()
            .zip(&c.strides)
            .map(|(&i, &s)| i * s)
            .sum()
    })
}

/// The view's elements, row-major, converted to `A`. `data` starts at the
/// view's offset and holds its extent.
pub(crate) fn gather<T: Real, A: Acc, const R: usize>(data: &[T], c: &Checked<R>) -> Vec<A> {
    let inner = c.shape[R - 1];
    let mut packed = Vec::with_capacity(c.shape.iter().product());
    for start in row_starts(c) {
        packed.extend(data[start..start + inner].iter().map(|&x| A::of(x)));
    }
    packed
}

/// Writes row-major `packed` into the view, rounding each value once to
/// `T`. `data` starts at the view's offset and holds its extent.
pub(crate) fn scatter<T: Real, A: Acc, const R: usize>(
    packed: &[A],
    data: &mut [T],
    c: &Checked<R>,
) {
    let inner = c.shape[R - 1];
    for (start, row) in row_starts(c).zip(packed.chunks_exact(inner.max(1))) {
        for (dst, &x) in data[start..start + inner].iter_mut().zip(row) {
            *dst = x.to();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attention::layout::Layout;

    #[test]
    fn gather_and_scatter_follow_strides() {
        // A [2, 2, 3] view with padded strides inside 40 elements.
        let layout = Layout {
            offset: 1,
            shape: [2, 2, 3],
            strides: Some([16, 5, 1]),
        };
        let c = layout.check("t", 40, 4).unwrap();
        let data: Vec<f32> = (0..40).map(|x| x as f32).collect();
        let packed: Vec<f64> = gather(&data[1..1 + c.extent], &c);
        assert_eq!(
            packed,
            [1., 2., 3., 6., 7., 8., 17., 18., 19., 22., 23., 24.]
        );
        let mut back = [-1.0f32; 40];
        scatter(&packed, &mut back[1..1 + c.extent], &c);
        for (i, &x) in back.iter().enumerate() {
            assert_eq!(
                x,
                if packed.contains(&(i as f64)) {
                    i as f32
                } else {
                    -1.0
                }
            );
        }
    }
}
