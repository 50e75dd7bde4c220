//! Property test of the view model: adversarial shapes, strides and
//! offsets for every tensor of a forward and a backward, all views carved
//! out of one arena (so outputs may overlap each other and the inputs).
//! For every draw, with no panic: either a typed error and the whole arena
//! bit-identical to before, or `Ok`, the outputs equal bit for bit to the
//! same problem laid out contiguously, and every byte of the arena outside
//! the outputs' elements untouched.
//!
//! Classes drawn (each tensor independently): contiguous, padded and zero
//! strides; strides and offsets near 2^62, 2^63 and `usize::MAX` (sums that
//! wrap); axes of length 0, 1 and beyond 2^31; buffers one element short;
//! outputs placed on an input or another output, shifted by a few
//! elements or not at all. `FA3_VIEW_CASES` sets the number of cases of
//! each test (CI: the default below).

use fa3::{
    AttentionOptions, BackwardInputs, Device, ForwardInto, GradientsInto, Qkv, Tensor, TensorMut,
    bf16,
};
use fa3_tests::bits;
use proptest::prelude::*;
use std::collections::HashSet;

/// Cases of each test in CI: about a second each on two cores.
const CASES: u32 = 3000;

fn cases() -> u32 {
    std::env::var("FA3_VIEW_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES)
}

/// Values near the top of usize, i64 and u64 arithmetic.
const HUGE: [usize; 6] = [
    1 << 31,
    1 << 40,
    1 << 62,
    (1 << 63) - 8,
    usize::MAX / 2,
    usize::MAX,
];

/// A stride or offset: mostly ordinary, sometimes adversarial.
fn number(ordinary: std::ops::Range<usize>) -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => ordinary,
        1 => Just(0usize),
        1 => proptest::sample::select(HUGE.to_vec()),
    ]
}

/// How one tensor is laid out: strides, offset, and where its memory
/// starts in the arena.
#[derive(Debug, Clone)]
struct Draw<const R: usize> {
    strides: Strides<R>,
    offset: usize,
    /// Start of its memory in the arena; `Share`: the start of another
    /// tensor's memory, shifted by a few words.
    place: Place,
    /// Elements taken off the length its memory needs (0 or 1).
    short: usize,
}

#[derive(Debug, Clone)]
enum Strides<const R: usize> {
    Contiguous,
    /// Row-major with each non-innermost axis padded.
    Padded([usize; R]),
    /// Row-major over the axes in this order (outermost first).
    Permuted([usize; R]),
    /// Anything (innermost 1 most of the time).
    Explicit([usize; R]),
}

#[derive(Debug, Clone, Copy)]
enum Place {
    Own,
    Share { other: usize, shift: usize },
}

fn draw<const R: usize>(padding_stride: usize) -> impl Strategy<Value = Draw<R>> {
    let explicit = proptest::array::uniform::<_, R>(number(0..padding_stride)).prop_flat_map(|s| {
        let innermost = prop_oneof![3 => Just(1usize), 1 => Just(s[R - 1])];
        innermost.prop_map(move |last| {
            let mut s = s;
            s[R - 1] = last;
            Strides::Explicit(s)
        })
    });
    let permuted = Just((0..R - 1).collect::<Vec<usize>>())
        .prop_shuffle()
        .prop_map(|outer| {
            let mut order = [R - 1; R];
            order[..R - 1].copy_from_slice(&outer);
            Strides::Permuted(order)
        });
    let benign = prop_oneof![
        Just(Strides::Contiguous),
        proptest::array::uniform::<_, R>(0..4usize).prop_map(Strides::Padded),
        permuted,
    ];
    let benign = (benign, 0..4usize).prop_map(|(strides, offset)| Draw {
        strides,
        offset,
        place: Place::Own,
        short: 0,
    });
    let strides = prop_oneof![
        1 => Just(Strides::Contiguous),
        1 => proptest::array::uniform::<_, R>(0..4usize).prop_map(Strides::Padded),
        3 => explicit,
    ];
    let place = prop_oneof![
        2 => Just(Place::Own),
        1 => (0..5usize, 0..3usize).prop_map(|(other, shift)| Place::Share { other, shift }),
    ];
    let offset = prop_oneof![3 => 0..4usize, 1 => proptest::sample::select(HUGE.to_vec())];
    let short = prop_oneof![3 => Just(0usize), 1 => Just(1usize)];
    let adversarial =
        (strides, offset, place, short).prop_map(|(strides, offset, place, short)| Draw {
            strides,
            offset,
            place,
            short,
        });
    // Mostly well-formed, so that whole calls get through and their results
    // are compared; each tensor adversarial one time in six.
    prop_oneof![5 => benign, 1 => adversarial]
}

impl<const R: usize> Strides<R> {
    /// The strides for `shape` (`None`: none given, row-major).
    fn resolve(&self, shape: [usize; R]) -> Option<[usize; R]> {
        match self {
            Self::Contiguous => None,
            Self::Padded(pads) => {
                let mut s = [1usize; R];
                for a in (0..R - 1).rev() {
                    s[a] = s[a + 1]
                        .saturating_mul(shape[a + 1])
                        .saturating_add(pads[a]);
                }
                Some(s)
            }
            Self::Permuted(order) => {
                let mut s = [1usize; R];
                let mut step = 1usize;
                for &a in order.iter().rev() {
                    s[a] = step;
                    step = step.saturating_mul(shape[a]);
                }
                Some(s)
            }
            Self::Explicit(s) => Some(*s),
        }
    }
}

/// A problem's dimensions; now and then one axis far too long.
#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    seqlen_q: usize,
    seqlen_k: usize,
    heads_kv: usize,
    group: usize,
    head_dim: usize,
}

fn dims() -> impl Strategy<Value = Dims> {
    let len = |hi: usize| {
        prop_oneof![
            24 => 1..hi,
            2 => Just(0usize),
            1 => proptest::sample::select(HUGE.to_vec()),
        ]
    };
    (
        len(3),
        len(6),
        len(6),
        1..3usize,
        1..3usize,
        prop_oneof![Just(8usize), Just(16)],
    )
        .prop_map(
            |(batch, seqlen_q, seqlen_k, heads_kv, group, head_dim)| Dims {
                batch,
                seqlen_q,
                seqlen_k,
                heads_kv,
                group,
                head_dim,
            },
        )
}

/// Element offsets of a view in its memory, row-major; `None` when it
/// addresses more than `limit` elements or an offset beyond u64.
fn addresses<const R: usize>(
    shape: [usize; R],
    strides: [usize; R],
    offset: usize,
    limit: usize,
) -> Option<Vec<u128>> {
    if shape.contains(&0) {
        return Some(Vec::new());
    }
    let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
    if count > limit {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for mut flat in 0..count {
        let mut at = offset as u128;
        for axis in (0..R).rev() {
            at += (flat % shape[axis]) as u128 * strides[axis] as u128;
            flat /= shape[axis];
        }
        out.push(at);
    }
    Some(out)
}

fn row_major<const R: usize>(shape: [usize; R]) -> [usize; R] {
    let mut s = [1usize; R];
    for a in (0..R - 1).rev() {
        s[a] = s[a + 1].saturating_mul(shape[a + 1]);
    }
    s
}

/// The arena: 32-bit words, so bf16 and f32 views both align. Every tensor
/// gets a region of its own (what its layout needs, capped), at a start
/// that can instead be another tensor's.
struct Arena {
    words: Vec<u32>,
    /// The words' start, taken once from `as_mut_ptr`: every view (read or
    /// write) derives from it, so writing through a view is sound while the
    /// `Vec` itself is not touched.
    base: *mut u8,
}

/// One tensor of the draw, resolved: where its memory starts (in bytes),
/// how many elements it holds, its layout.
#[derive(Debug, Clone)]
struct Resolved<const R: usize> {
    byte_start: usize,
    len: usize,
    shape: [usize; R],
    strides: [usize; R],
    explicit: bool,
    offset: usize,
}

/// Regions are capped at this many elements: larger layouts get a buffer
/// that is too small (they must be refused).
const REGION_CAP: usize = 1 << 12;

impl<const R: usize> Resolved<R> {
    fn needed(shape: [usize; R], strides: [usize; R], offset: usize) -> usize {
        if shape.contains(&0) {
            return 0;
        }
        let last = shape
            .iter()
            .zip(&strides)
            .map(|(&n, &s)| (n as u128 - 1).saturating_mul(s as u128))
            .fold(0u128, u128::saturating_add);
        let end = (offset as u128).saturating_add(last).saturating_add(1);
        end.min(REGION_CAP as u128) as usize
    }

    fn addresses(&self) -> Option<Vec<u128>> {
        addresses(self.shape, self.strides, self.offset, 1 << 16)
    }
}

/// Lays out tensors of `elem` bytes one after the other (each region
/// rounded up to 16 bytes), resolving shared places afterwards.
struct Planner {
    next: usize,
    starts: Vec<usize>,
}

impl Planner {
    fn plan<const R: usize>(&mut self, shape: [usize; R], d: &Draw<R>, elem: usize) -> Resolved<R> {
        let given = d.strides.resolve(shape);
        let strides = given.unwrap_or_else(|| row_major(shape));
        let needed = Resolved::needed(shape, strides, d.offset);
        let len = needed.saturating_sub(d.short);
        let own = self.next;
        self.next += (len * elem).div_ceil(16) * 16 + 16;
        let byte_start = match d.place {
            Place::Own => own,
            Place::Share { other, shift } => self
                .starts
                .get(other)
                .map_or(own, |&start| start + shift * 4),
        };
        self.starts.push(byte_start);
        Resolved {
            byte_start,
            len,
            shape,
            strides,
            explicit: given.is_some(),
            offset: d.offset,
        }
    }
}

impl Arena {
    fn new(bytes: usize, seed: u64) -> Self {
        let mut x = seed | 1;
        let words = (0..bytes.div_ceil(4) + 4)
            .map(|_| {
                // xorshift: random bits, many of them NaNs when read as f32,
                // all of them finite when read as bf16 pairs often enough.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let w = x as u32;
                // Keep every bf16 half finite and small: exponent bits
                // limited (inputs must be finite for the comparison).
                w & 0x3F7F_3F7F
            })
            .collect();
        Self::of(words)
    }

    fn of(mut words: Vec<u32>) -> Self {
        let base = words.as_mut_ptr().cast();
        Self { words, base }
    }

    /// The arena's bytes (no view of it may be alive).
    fn bytes(&self) -> &[u8] {
        // SAFETY: u32 has no padding; the bytes are the words' memory, which
        // no live view writes (the call that took them has returned).
        unsafe { std::slice::from_raw_parts(self.base, self.words.len() * 4) }
    }

    /// The start of `r`'s memory in the arena.
    fn start<T, const R: usize>(&self, r: &Resolved<R>) -> *mut T {
        self.base.wrapping_add(r.byte_start).cast()
    }

    fn tensor<'a, T, const R: usize>(&'a self, r: &Resolved<R>) -> Tensor<'a, T, R> {
        // SAFETY: the region [byte_start, byte_start + len·size_of::<T>())
        // lies inside the arena (planned that way, and shared starts point
        // at other regions' starts), which lives for 'a and is written only
        // through views passed to the same call.
        let t =
            unsafe { Tensor::from_raw_parts(self.start::<T, R>(r).cast_const(), r.len, r.shape) };
        let t = if r.explicit {
            t.with_strides(r.strides)
        } else {
            t
        };
        t.with_offset(r.offset)
    }

    fn tensor_mut<'a, T, const R: usize>(&'a self, r: &Resolved<R>) -> TensorMut<'a, T, R> {
        // SAFETY: as in `tensor`; the arena's words are only written through
        // these views, by the one call they are passed to.
        let t = unsafe { TensorMut::from_raw_parts(self.start(r), r.len, r.shape) };
        let t = if r.explicit {
            t.with_strides(r.strides)
        } else {
            t
        };
        t.with_offset(r.offset)
    }

    /// The view's elements, row-major (the view is valid: the call took it).
    fn gather<T: Copy, const R: usize>(&self, r: &Resolved<R>) -> Vec<T> {
        let base = r.byte_start;
        r.addresses()
            .expect("an accepted view is small")
            .into_iter()
            .map(|at| {
                let byte = base + at as usize * size_of::<T>();
                // SAFETY: an accepted view lies within its region.
                unsafe { self.bytes().as_ptr().add(byte).cast::<T>().read_unaligned() }
            })
            .collect()
    }

    /// The bytes an accepted output view occupies.
    fn occupied<const R: usize>(&self, r: &Resolved<R>, elem: usize, into: &mut HashSet<usize>) {
        for at in r.addresses().expect("an accepted view is small") {
            let byte = r.byte_start + at as usize * elem;
            into.extend(byte..byte + elem);
        }
    }
}

impl Arena {
    /// The arena as it was: `bytes` from before the call.
    fn from_bytes(bytes: &[u8]) -> Self {
        let words = bytes
            .chunks(4)
            .map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        Self::of(words)
    }

    /// The first bytes that differ from `before` outside the elements of
    /// `outputs` (16-bit views).
    fn stray_writes<const R: usize>(&self, before: &[u8], outputs: &[&Resolved<R>]) -> Vec<usize> {
        let mut allowed = HashSet::new();
        for output in outputs {
            self.occupied(output, 2, &mut allowed);
        }
        self.stray_writes_outside(before, &allowed)
    }

    fn stray_writes_outside(&self, before: &[u8], allowed: &HashSet<usize>) -> Vec<usize> {
        before
            .iter()
            .zip(self.bytes())
            .enumerate()
            .filter(|(i, (a, b))| a != b && !allowed.contains(i))
            .map(|(i, _)| i)
            .take(5)
            .collect()
    }
}

struct Shapes {
    q: [usize; 4],
    kv: [usize; 4],
    lse: [usize; 3],
}

fn shapes(d: &Dims) -> Shapes {
    let heads_q = d.heads_kv * d.group;
    Shapes {
        q: [d.batch, d.seqlen_q, heads_q, d.head_dim],
        kv: [d.batch, d.seqlen_k, d.heads_kv, d.head_dim],
        lse: [d.batch, heads_q, d.seqlen_q],
    }
}

proptest! {
    #![proptest_config(fa3_tests::cases::config(cases()))]

    #[test]
    fn forward_views(
        dims in dims(),
        draws in (draw::<4>(80), draw::<4>(80), draw::<4>(80), draw::<4>(80), draw::<3>(40)),
        causal in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let s = shapes(&dims);
        let mut plan = Planner { next: 0, starts: Vec::new() };
        let q = plan.plan(s.q, &draws.0, 2);
        let k = plan.plan(s.kv, &draws.1, 2);
        let v = plan.plan(s.kv, &draws.2, 2);
        let out = plan.plan(s.q, &draws.3, 2);
        let lse = plan.plan(s.lse, &draws.4, 4);
        let arena = Arena::new(plan.next, seed);
        let before = arena.bytes().to_vec();
        let options = AttentionOptions::new().causal(causal);
        let result = Device::cpu().forward_into(
            Qkv { q: arena.tensor::<bf16, 4>(&q), k: arena.tensor(&k), v: arena.tensor(&v) },
            ForwardInto { out: arena.tensor_mut::<bf16, 4>(&out), lse: arena.tensor_mut::<f32, 3>(&lse) },
            &options,
        );
        match result {
            Err(e) => {
                prop_assert!(arena.bytes() == &before[..], "{e} but the arena changed");
            }
            Ok(()) => {
                let mut allowed = HashSet::new();
                arena.occupied(&out, 2, &mut allowed);
                arena.occupied(&lse, 4, &mut allowed);
                let stray = arena.stray_writes_outside(&before, &allowed);
                prop_assert!(stray.is_empty(), "bytes {stray:?} written outside the outputs");
                // The inputs as they were (outputs may not overlap them).
                let old = Arena::from_bytes(&before);
                let (lq, lk, lv): (Vec<bf16>, Vec<bf16>, Vec<bf16>) = (old.gather(&q), old.gather(&k), old.gather(&v));
                let want = Device::cpu().forward(
                    Qkv { q: Tensor::host(&lq, s.q), k: Tensor::host(&lk, s.kv), v: Tensor::host(&lv, s.kv) },
                    &options,
                ).unwrap();
                prop_assert_eq!(bits(&arena.gather::<bf16, 4>(&out)), bits(want.out.as_host().unwrap()));
                prop_assert_eq!(bits(&arena.gather::<f32, 3>(&lse)), bits(want.lse.as_host().unwrap()));
            }
        }
    }

    #[test]
    fn backward_views(
        dims in dims(),
        inputs in (draw::<4>(80), draw::<4>(80), draw::<4>(80)),
        grads in (draw::<4>(80), draw::<4>(80), draw::<4>(80)),
        seed in any::<u64>(),
    ) {
        let s = shapes(&dims);
        let mut plan = Planner { next: 0, starts: Vec::new() };
        let q = plan.plan(s.q, &inputs.0, 2);
        let k = plan.plan(s.kv, &inputs.1, 2);
        let dout = plan.plan(s.q, &inputs.2, 2);
        let dq = plan.plan(s.q, &grads.0, 2);
        let dk = plan.plan(s.kv, &grads.1, 2);
        let dv = plan.plan(s.kv, &grads.2, 2);
        let arena = Arena::new(plan.next, seed);
        let before = arena.bytes().to_vec();
        let options = AttentionOptions::new();
        // v = k, and out/lse from a forward of contiguous copies when q and
        // k are valid (else any out/lse: the call must refuse q or k).
        let (tq, tk, tdout) = (arena.tensor::<bf16, 4>(&q), arena.tensor::<bf16, 4>(&k), arena.tensor::<bf16, 4>(&dout));
        let fwd = Device::cpu().forward(Qkv { q: tq, k: tk, v: tk }, &options);
        let filler_out = vec![bf16::ZERO; 1];
        let filler_lse = vec![0.0f32; 1];
        let (out_view, lse_view) = match &fwd {
            Ok(f) => (f.out.view(), f.lse.view()),
            Err(_) => (
                Tensor::host(&filler_out, [1, 1, 1, 8]).with_strides([0, 0, 0, 0]),
                Tensor::host(&filler_lse, [1, 1, 1]),
            ),
        };
        let result = Device::cpu().backward_into(
            BackwardInputs { q: tq, k: tk, v: tk, out: out_view, lse: lse_view, dout: tdout },
            GradientsInto { dq: arena.tensor_mut::<bf16, 4>(&dq), dk: arena.tensor_mut(&dk), dv: arena.tensor_mut(&dv) },
            &options,
        );
        match result {
            Err(e) => {
                prop_assert!(arena.bytes() == &before[..], "{e} but the arena changed");
            }
            Ok(()) => {
                let fwd = fwd.expect("the backward took q and k, so did the forward");
                let stray = arena.stray_writes(&before, &[&dq, &dk, &dv]);
                prop_assert!(stray.is_empty(), "bytes {stray:?} written outside the gradients");
                let old = Arena::from_bytes(&before);
                let (lq, lk, ld): (Vec<bf16>, Vec<bf16>, Vec<bf16>) = (old.gather(&q), old.gather(&k), old.gather(&dout));
                let (tq, tk) = (Tensor::host(&lq, s.q), Tensor::host(&lk, s.kv));
                let want = Device::cpu().backward(
                    BackwardInputs { q: tq, k: tk, v: tk, out: fwd.out.view(), lse: fwd.lse.view(), dout: Tensor::host(&ld, s.q) },
                    &options,
                ).unwrap();
                prop_assert_eq!(bits(&arena.gather::<bf16, 4>(&dq)), bits(want.dq.as_host().unwrap()));
                prop_assert_eq!(bits(&arena.gather::<bf16, 4>(&dk)), bits(want.dk.as_host().unwrap()));
                prop_assert_eq!(bits(&arena.gather::<bf16, 4>(&dv)), bits(want.dv.as_host().unwrap()));
            }
        }
    }
}
