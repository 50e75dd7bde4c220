//! Random attention problems for property tests: shapes, options, padded
//! strides and seeded data.

use crate::materialized;
use crate::seeded_f32;
use crate::strided::{padded, place, take};
use fa3::{AttentionOptions, Qkv, Real, Tensor, TensorMut, bf16};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// `cases` cases, no regression files written.
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// One fixed-length problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub batch: usize,
    pub seqlen_q: usize,
    pub seqlen_k: usize,
    pub heads_kv: usize,
    /// Query heads per kv head.
    pub group: usize,
    pub head_dim: usize,
    pub head_dim_v: usize,
    pub causal: bool,
    pub window: (Option<usize>, Option<usize>),
    pub softcap: f32,
    pub scale: Option<f32>,
    /// Padding of the non-innermost axes of q, k, v, out (and dout), and
    /// the views' offset.
    pub pads: [[usize; 4]; 4],
    pub offset: usize,
    pub seed: u64,
}

/// Limits of [`fixed`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub batch: usize,
    pub seqlen: usize,
    pub heads_kv: usize,
    pub group: usize,
    /// Head dims are multiples of 8 up to this.
    pub head_dim: usize,
}

/// Random problems within `limits`: GQA, causal/window/softcap/scale,
/// `seqlen_q != seqlen_k`, padded strides.
pub fn fixed(limits: Limits) -> impl Strategy<Value = Case> {
    let dims = (
        1..=limits.batch,
        1..=limits.seqlen,
        1..=limits.seqlen,
        1..=limits.heads_kv,
        1..=limits.group,
        1..=limits.head_dim / 8,
        1..=limits.head_dim / 8,
    );
    let bound = || prop_oneof![Just(None), (0..limits.seqlen).prop_map(Some)];
    let options = (
        any::<bool>(),
        bound(),
        bound(),
        prop_oneof![Just(0.0f32), 0.5f32..8.0],
        prop_oneof![Just(None), (0.05f32..1.5).prop_map(Some)],
    );
    let layout = (
        proptest::array::uniform4(proptest::array::uniform4(0usize..3)),
        0usize..5,
        any::<u64>(),
    );
    (dims, options, layout).prop_map(
        |(
            (batch, seqlen_q, seqlen_k, heads_kv, group, d8, dv8),
            (causal, left, right, softcap, scale),
            (pads, offset, seed),
        )| {
            Case {
                batch,
                seqlen_q,
                seqlen_k,
                heads_kv,
                group,
                head_dim: d8 * 8,
                head_dim_v: dv8 * 8,
                causal,
                // Causal fixes the right bound at 0.
                window: (left, if causal { None } else { right }),
                softcap,
                scale,
                pads,
                offset,
                seed,
            }
        },
    )
}

/// Row-major data of one problem (values of `T`, also kept in `f64`).
#[derive(Debug, Clone)]
pub struct Data<T> {
    pub q: Vec<T>,
    pub k: Vec<T>,
    pub v: Vec<T>,
    pub dout: Vec<T>,
}

impl<T: Real> Data<T> {
    /// Each as `f64`.
    pub fn to_f64(&self) -> Data<f64> {
        let wide = |x: &[T]| x.iter().map(|x| x.to_f64()).collect();
        Data {
            q: wide(&self.q),
            k: wide(&self.k),
            v: wide(&self.v),
            dout: wide(&self.dout),
        }
    }
}

impl Case {
    pub fn heads_q(&self) -> usize {
        self.heads_kv * self.group
    }

    pub fn q_shape(&self) -> [usize; 4] {
        [self.batch, self.seqlen_q, self.heads_q(), self.head_dim]
    }

    pub fn k_shape(&self) -> [usize; 4] {
        [self.batch, self.seqlen_k, self.heads_kv, self.head_dim]
    }

    pub fn v_shape(&self) -> [usize; 4] {
        [self.batch, self.seqlen_k, self.heads_kv, self.head_dim_v]
    }

    pub fn out_shape(&self) -> [usize; 4] {
        [self.batch, self.seqlen_q, self.heads_q(), self.head_dim_v]
    }

    pub fn lse_shape(&self) -> [usize; 3] {
        [self.batch, self.heads_q(), self.seqlen_q]
    }

    /// The shapes of q, k, v, out (dout) in [`Case::pads`] order.
    pub fn shapes(&self) -> [[usize; 4]; 4] {
        [
            self.q_shape(),
            self.k_shape(),
            self.v_shape(),
            self.out_shape(),
        ]
    }

    pub fn options(&self) -> AttentionOptions {
        let mut options = AttentionOptions::new()
            .causal(self.causal)
            .window(self.window.0, self.window.1)
            .softcap(self.softcap);
        if let Some(scale) = self.scale {
            options = options.softmax_scale(scale);
        }
        options
    }

    /// The same problem for the materialized implementation.
    pub fn materialized(&self) -> materialized::Problem {
        materialized::Problem {
            batch: self.batch,
            seqlen_q: self.seqlen_q,
            seqlen_k: self.seqlen_k,
            heads_q: self.heads_q(),
            heads_kv: self.heads_kv,
            head_dim: self.head_dim,
            head_dim_v: self.head_dim_v,
            scale: f64::from(self.options().effective_softmax_scale(self.head_dim)),
            softcap: f64::from(self.softcap),
            left: self.window.0,
            right: if self.causal { Some(0) } else { self.window.1 },
        }
    }

    /// Seeded data in `[-1, 1)`, rounded to `T`.
    pub fn data<T: Real>(&self) -> Data<T> {
        let make = |stream: u64, shape: [usize; 4]| {
            let len = shape.iter().product();
            seeded_f32(self.seed.wrapping_add(stream), len)
                .into_iter()
                .map(T::from_f32)
                .collect()
        };
        Data {
            q: make(0, self.q_shape()),
            k: make(1, self.k_shape()),
            v: make(2, self.v_shape()),
            dout: make(3, self.out_shape()),
        }
    }
}

/// A padded copy of a row-major tensor: its buffer (padding = `fill`), strides and offset.
#[derive(Debug, Clone)]
pub struct Padded<T, const R: usize> {
    pub buffer: Vec<T>,
    pub shape: [usize; R],
    pub strides: [usize; R],
    pub offset: usize,
}

impl<T: Copy, const R: usize> Padded<T, R> {
    pub fn new(values: &[T], fill: T, shape: [usize; R], pads: [usize; R], offset: usize) -> Self {
        let (strides, len) = padded(shape, pads, offset);
        Self {
            buffer: place(values, fill, len, shape, strides, offset),
            shape,
            strides,
            offset,
        }
    }

    pub fn view(&self) -> Tensor<'_, T, R> {
        Tensor::host(&self.buffer, self.shape)
            .with_strides(self.strides)
            .with_offset(self.offset)
    }

    pub fn view_mut(&mut self) -> TensorMut<'_, T, R> {
        TensorMut::host(&mut self.buffer, self.shape)
            .with_strides(self.strides)
            .with_offset(self.offset)
    }

    /// The view's elements, row-major.
    pub fn values(&self) -> Vec<T> {
        take(&self.buffer, self.shape, self.strides, self.offset)
    }

    /// Buffer elements outside the view.
    pub fn padding(&self) -> Vec<T> {
        let inside: std::collections::HashSet<usize> =
            crate::strided::indices(self.shape, self.strides, self.offset)
                .into_iter()
                .collect();
        (0..self.buffer.len())
            .filter(|i| !inside.contains(i))
            .map(|i| self.buffer[i])
            .collect()
    }
}

/// Contiguous views of `data`.
pub fn qkv<'a, T>(case: &Case, data: &'a Data<T>) -> Qkv<'a, T, 4> {
    Qkv {
        q: Tensor::host(&data.q, case.q_shape()),
        k: Tensor::host(&data.k, case.k_shape()),
        v: Tensor::host(&data.v, case.v_shape()),
    }
}

/// `bf16` bit patterns, to compare results bitwise (NaN included).
pub fn bits(values: &[bf16]) -> Vec<u16> {
    values.iter().map(|x| x.to_bits()).collect()
}
