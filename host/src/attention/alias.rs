//! Outputs must not share bytes with inputs or other outputs.
//!
//! Each view is the set of bytes its elements occupy, and two views
//! conflict when those sets meet. The test is exact for views that step
//! alike (the `q`/`k`/`v` or `dq`/`dk`/`dv` thirds of one packed buffer,
//! heads interleaved), and for views whose address ranges do not meet; for
//! any other pair it gives up after a bounded amount of work and reports a
//! conflict, so it can refuse two strange interleavings that never touch,
//! but never accepts two that do. Views built from Rust slices and buffers
//! cannot overlap an output at all (the borrow checker forbids it); the
//! check guards views built from raw pointers and shared device buffers.

use super::layout::Checked;
use super::tensor::Place;
use crate::error::{Error, Result};

/// How many steps [`Region::meets`] may take before it assumes a conflict.
const WORK: u32 = 4096;

/// The bytes a view occupies, in one memory space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Region {
    /// `None` for host memory, the GPU's ordinal for device memory.
    device: Option<usize>,
    /// Byte address of the first element.
    start: i128,
    /// `(byte stride, count)` of the axes that move the address (longer
    /// than 1, stride not 0), largest stride first.
    axes: Vec<(i128, i128)>,
    /// Bytes of one element.
    atom: i128,
    /// An empty view occupies nothing.
    empty: bool,
}

impl Region {
    /// The region of a checked view of `elem_size`-byte elements in `place`.
    pub fn new<const R: usize>(place: Place, checked: &Checked<R>, elem_size: usize) -> Self {
        let (device, address) = match place {
            Place::Host { address, .. } => (None, address as i128),
            Place::Device {
                ordinal, address, ..
            } => (Some(ordinal), i128::from(address)),
        };
        let atom = elem_size as i128;
        let mut axes: Vec<(i128, i128)> = (0..R)
            .filter(|&a| checked.shape[a] > 1 && checked.strides[a] > 0)
            .map(|a| (checked.strides[a] as i128 * atom, checked.shape[a] as i128))
            .collect();
        axes.sort_by_key(|axis| std::cmp::Reverse(axis.0));
        Self {
            device,
            start: address + checked.offset as i128 * atom,
            axes,
            atom,
            empty: checked.extent == 0,
        }
    }

    /// Whether some byte belongs to both views.
    fn meets(&self, other: &Self) -> bool {
        if self.empty || other.empty || self.device != other.device {
            return false;
        }
        let mut budget = WORK;
        meets(
            Part::of(&self.axes, self.atom),
            Part::of(&other.axes, other.atom),
            other.start - self.start,
            &mut budget,
        )
    }
}

/// The bytes of a view's innermost axes `axes` (largest stride first),
/// relative to its first element.
#[derive(Clone, Copy)]
struct Part<'a> {
    axes: &'a [(i128, i128)],
    atom: i128,
    /// Bytes from the first element's start to the last element's end.
    span: i128,
}

impl<'a> Part<'a> {
    fn of(axes: &'a [(i128, i128)], atom: i128) -> Self {
        let span = atom + axes.iter().map(|&(s, n)| (n - 1) * s).sum::<i128>();
        Self { axes, atom, span }
    }

    /// The outermost axis and the part inside it.
    fn split(self) -> Option<((i128, i128), Self)> {
        let (&top, rest) = self.axes.split_first()?;
        Some((top, Self::of(rest, self.atom)))
    }
}

/// Whether `a` (at 0) and `b` (at byte `delta`) share a byte; `true` as
/// well once `budget` steps are spent.
fn meets(a: Part<'_>, b: Part<'_>, delta: i128, budget: &mut u32) -> bool {
    if delta >= a.span || delta + b.span <= 0 {
        return false; // their ranges do not meet
    }
    let (Some((top_a, inner_a)), Some((top_b, inner_b))) = (a.split(), b.split()) else {
        if a.axes.is_empty() && b.axes.is_empty() {
            return true; // two elements whose bytes meet
        }
        return expand(a, b, delta, budget);
    };
    if *budget == 0 {
        return true;
    }
    *budget -= 1;
    let ((stride, count_a), (stride_b, count_b)) = (top_a, top_b);
    if stride == stride_b {
        // Copy i of a (at i·stride) and copy j of b (at delta + j·stride)
        // are the inner parts `delta + (j − i)·stride` apart, whatever i:
        // check each difference m = j − i that some pair has and that
        // brings the ranges together (at most two when the inner parts are
        // shorter than the stride, as in every view that is an output).
        let lowest = ((-inner_b.span - delta).div_euclid(stride) + 1).max(1 - count_a);
        let highest = (inner_a.span - delta - 1)
            .div_euclid(stride)
            .min(count_b - 1);
        return (lowest..=highest).any(|m| {
            if *budget == 0 {
                return true;
            }
            *budget -= 1;
            meets(inner_a, inner_b, delta + m * stride, budget)
        });
    }
    expand(a, b, delta, budget)
}

/// Splits the view with the larger outermost stride into its copies and
/// checks those that reach the other's range.
fn expand(a: Part<'_>, b: Part<'_>, delta: i128, budget: &mut u32) -> bool {
    let stride = |p: Part<'_>| p.axes.first().map_or(0, |axis| axis.0);
    if stride(a) >= stride(b) {
        let Some(((s, n), inner)) = a.split() else {
            return true;
        };
        // Copy i spans [i·s, i·s + inner.span); b spans [delta, delta + b.span).
        let first = (delta - inner.span).div_euclid(s) + 1;
        let last = (delta + b.span - 1).div_euclid(s);
        (first.max(0)..=last.min(n - 1)).any(|i| {
            if *budget == 0 {
                return true;
            }
            *budget -= 1;
            meets(inner, b, delta - i * s, budget)
        })
    } else {
        expand(b, a, -delta, budget)
    }
}

/// Named regions of one call.
#[derive(Debug, Default)]
pub(crate) struct Regions {
    inputs: Vec<(&'static str, Region)>,
    outputs: Vec<(&'static str, Region)>,
}

impl Regions {
    pub fn input(&mut self, name: &'static str, region: Region) {
        self.inputs.push((name, region));
    }

    pub fn output(&mut self, name: &'static str, region: Region) {
        self.outputs.push((name, region));
    }

    /// Errors on the first output that overlaps an input or an earlier output.
    pub fn check(&self) -> Result<()> {
        for (i, (output, region)) in self.outputs.iter().enumerate() {
            let mut others = self.inputs.iter().chain(&self.outputs[..i]);
            if let Some((other, _)) = others.find(|(_, r)| region.meets(r)) {
                return Err(Error::Aliasing { output, other });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attention::layout::Layout;
    use rand::Rng;
    use std::collections::HashSet;

    fn view<const R: usize>(
        offset: usize,
        shape: [usize; R],
        strides: [usize; R],
        elem: usize,
    ) -> Region {
        let layout = Layout {
            offset,
            shape,
            strides: Some(strides),
        };
        let checked = layout.check("t", usize::MAX >> 8, elem).unwrap();
        let place = Place::Host {
            address: 4096,
            len: usize::MAX >> 8,
        };
        Region::new(place, &checked, elem)
    }

    fn bytes<const R: usize>(
        offset: usize,
        shape: [usize; R],
        strides: [usize; R],
        elem: usize,
    ) -> HashSet<usize> {
        let mut set = HashSet::new();
        let count: usize = shape.iter().product();
        for flat in 0..count {
            let (mut rest, mut at) = (flat, offset);
            for axis in (0..R).rev() {
                at += (rest % shape[axis]) * strides[axis];
                rest /= shape[axis];
            }
            set.extend(at * elem..(at + 1) * elem);
        }
        set
    }

    #[test]
    fn thirds_of_a_packed_buffer_are_apart() {
        // (batch 2, seqlen 5, 3, heads 4, dim 8): q, k, v at head-block offsets.
        let strides = [5 * 3 * 32, 3 * 32, 8, 1];
        let part = |i: usize| view(i * 32, [2, 5, 4, 8], strides, 2);
        assert!(!part(0).meets(&part(1)));
        assert!(!part(1).meets(&part(2)));
        assert!(part(1).meets(&part(1)));
        // Shifted by one element: overlapping.
        assert!(view(33, [2, 5, 4, 8], strides, 2).meets(&part(1)));
        // Large: still exact and fast (no per-row work).
        let big = [4096 * 3 * 2048, 3 * 2048, 128, 1];
        let q = view(0, [64, 4096, 16, 128], big, 2);
        let k = view(2048, [64, 4096, 16, 128], big, 2);
        assert!(!q.meets(&k));
    }

    #[test]
    fn empty_views_and_other_memory_never_meet() {
        let a = view(0, [0, 4], [4, 1], 2);
        let b = view(0, [2, 4], [4, 1], 2);
        assert!(!a.meets(&b));
        let mut c = b.clone();
        c.device = Some(0);
        assert!(!b.meets(&c));
    }

    /// Against the byte sets of small random views: never a missed
    /// overlap, and exact whenever the budget suffices (always, this small).
    #[test]
    fn agrees_with_brute_force() {
        let mut rng = rand::rng();
        for _ in 0..3000 {
            let mut draw = || {
                let shape = [
                    rng.random_range(0..4),
                    rng.random_range(1..4),
                    rng.random_range(1..5),
                ];
                let strides = [rng.random_range(0..40), rng.random_range(0..12), 1];
                let elem = [1, 2, 4][rng.random_range(0..3)];
                (rng.random_range(0..24), shape, strides, elem)
            };
            let (oa, sa, ta, ea) = draw();
            let (ob, sb, tb, eb) = draw();
            let truth = !bytes(oa, sa, ta, ea).is_disjoint(&bytes(ob, sb, tb, eb));
            let (a, b) = (view(oa, sa, ta, ea), view(ob, sb, tb, eb));
            assert_eq!(
                a.meets(&b),
                truth,
                "{oa} {sa:?} {ta:?} x{ea} vs {ob} {sb:?} {tb:?} x{eb}"
            );
            assert_eq!(b.meets(&a), truth);
        }
    }
}
