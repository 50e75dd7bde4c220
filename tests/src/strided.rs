//! Padded strided layouts for tests: where a row-major tensor's elements go
//! in a larger buffer.

/// Strides that pad each non-innermost axis by `pads[axis]` elements, and
/// the buffer length a view of `shape` at `offset` needs.
pub fn padded<const R: usize>(
    shape: [usize; R],
    pads: [usize; R],
    offset: usize,
) -> ([usize; R], usize) {
    let mut strides = [1usize; R];
    for axis in (0..R - 1).rev() {
        strides[axis] = strides[axis + 1] * shape[axis + 1] + pads[axis];
    }
    let extent = if shape.contains(&0) {
        0
    } else {
        1 + shape
            .iter()
            .zip(&strides)
            .map(|(n, s)| (n - 1) * s)
            .sum::<usize>()
    };
    // Trailing slack so the last element is not the buffer's last.
    (strides, offset + extent + pads[0])
}

/// Buffer indices of a strided view's elements, in row-major order.
pub fn indices<const R: usize>(
    shape: [usize; R],
    strides: [usize; R],
    offset: usize,
) -> Vec<usize> {
    let count: usize = shape.iter().product();
    (0..count)
        .map(|mut flat| {
            let mut at = offset;
            for axis in (0..R).rev() {
                at += (flat % shape[axis]) * strides[axis];
                flat /= shape[axis];
            }
            at
        })
        .collect()
}

/// A buffer of `len` copies of `fill` holding `values` (row-major) at the
/// view's elements.
pub fn place<T: Copy, const R: usize>(
    values: &[T],
    fill: T,
    len: usize,
    shape: [usize; R],
    strides: [usize; R],
    offset: usize,
) -> Vec<T> {
    let mut buffer = vec![fill; len];
    for (&at, &x) in indices(shape, strides, offset).iter().zip(values) {
        buffer[at] = x;
    }
    buffer
}

/// The view's elements of `buffer`, row-major.
pub fn take<T: Copy, const R: usize>(
    buffer: &[T],
    shape: [usize; R],
    strides: [usize; R],
    offset: usize,
) -> Vec<T> {
    indices(shape, strides, offset)
        .into_iter()
        .map(|at| buffer[at])
        .collect()
}
