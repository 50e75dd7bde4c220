//! Variable length: each sequence of a packed batch gives exactly what the
//! fixed-length entry points give for it alone (forward, backward, naive;
//! reference and CPU backend).

use fa3::reference::{self, Precision};
use fa3::{
    AttentionOptions, BackwardInputs, Device, ForwardInto, GradientsInto, Qkv, Tensor, TensorMut,
    Varlen, bf16,
};
use fa3_tests::cases::{self, bits};
use fa3_tests::seeded_f32;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct VarCase {
    /// (seqlen_q, seqlen_k) of each sequence; zeros included.
    seqlens: Vec<(usize, usize)>,
    heads_kv: usize,
    group: usize,
    head_dim: usize,
    head_dim_v: usize,
    options: AttentionOptions,
    seed: u64,
}

fn var_case() -> impl Strategy<Value = VarCase> {
    let bound = || prop_oneof![Just(None), (0usize..6).prop_map(Some)];
    (
        proptest::collection::vec((0usize..=8, 0usize..=8), 1..=4),
        1usize..=2,
        1usize..=2,
        1usize..=2,
        1usize..=2,
        (
            any::<bool>(),
            bound(),
            bound(),
            prop_oneof![Just(0.0f32), 0.5f32..5.0],
        ),
        any::<u64>(),
    )
        .prop_map(
            |(seqlens, heads_kv, group, d8, dv8, (causal, left, right, softcap), seed)| VarCase {
                seqlens,
                heads_kv,
                group,
                head_dim: 8 * d8,
                head_dim_v: 8 * dv8,
                options: AttentionOptions::new()
                    .causal(causal)
                    .window(left, if causal { None } else { right })
                    .softcap(softcap),
                seed,
            },
        )
}

/// Packed data and its cumulative lengths.
struct Packed {
    cu_q: Vec<i32>,
    cu_k: Vec<i32>,
    q: Vec<bf16>,
    k: Vec<bf16>,
    v: Vec<bf16>,
    dout: Vec<bf16>,
}

impl VarCase {
    fn heads_q(&self) -> usize {
        self.heads_kv * self.group
    }

    fn packed(&self) -> Packed {
        let cumulative = |pick: fn(&(usize, usize)) -> usize| {
            std::iter::once(0)
                .chain(self.seqlens.iter().scan(0, |total, s| {
                    *total += pick(s) as i32;
                    Some(*total)
                }))
                .collect::<Vec<i32>>()
        };
        let (cu_q, cu_k) = (cumulative(|s| s.0), cumulative(|s| s.1));
        let (tq, tk) = (
            *cu_q.last().unwrap() as usize,
            *cu_k.last().unwrap() as usize,
        );
        let make = |stream: u64, len: usize| -> Vec<bf16> {
            seeded_f32(self.seed ^ stream, len)
                .into_iter()
                .map(bf16::from_f32)
                .collect()
        };
        Packed {
            q: make(1, tq * self.heads_q() * self.head_dim),
            k: make(2, tk * self.heads_kv * self.head_dim),
            v: make(3, tk * self.heads_kv * self.head_dim_v),
            dout: make(4, tq * self.heads_q() * self.head_dim_v),
            cu_q,
            cu_k,
        }
    }
}

impl Packed {
    fn total_q(&self) -> usize {
        *self.cu_q.last().unwrap() as usize
    }

    fn total_k(&self) -> usize {
        *self.cu_k.last().unwrap() as usize
    }

    fn varlen(&self) -> Varlen<'_> {
        let longest = |cu: &[i32]| {
            cu.windows(2)
                .map(|w| (w[1] - w[0]) as usize)
                .max()
                .unwrap_or(0)
        };
        Varlen {
            cu_seqlens_q: &self.cu_q,
            cu_seqlens_k: &self.cu_k,
            max_seqlen_q: longest(&self.cu_q),
            max_seqlen_k: longest(&self.cu_k) + 3,
        }
    }

    /// Query and key token ranges of sequence `b`.
    fn tokens(&self, b: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        (
            self.cu_q[b] as usize..self.cu_q[b + 1] as usize,
            self.cu_k[b] as usize..self.cu_k[b + 1] as usize,
        )
    }
}

/// Rows `tokens` of a packed `[token, heads, dim]` vector.
fn rows<'a, T>(x: &'a [T], tokens: &std::ops::Range<usize>, width: usize) -> &'a [T] {
    &x[tokens.start * width..tokens.end * width]
}

proptest! {
    #![proptest_config(cases::config(64))]

    #[test]
    fn each_sequence_matches_the_fixed_length_entry_points(case in var_case()) {
        let p = case.packed();
        let (hq, hkv, d, dv) = (case.heads_q(), case.heads_kv, case.head_dim, case.head_dim_v);
        let (tq, tk) = (p.total_q(), p.total_k());
        let qkv = Qkv {
            q: Tensor::host(&p.q, [tq, hq, d]),
            k: Tensor::host(&p.k, [tk, hkv, d]),
            v: Tensor::host(&p.v, [tk, hkv, dv]),
        };
        let dout = Tensor::host(&p.dout, [tq, hq, dv]);
        let varlen = p.varlen();
        let options = &case.options;
        let device = Device::cpu();

        let ref_fwd = reference::forward_varlen(qkv, &varlen, options, Precision::F64).unwrap();
        let ref_bwd = reference::backward_varlen(qkv, dout, &varlen, options, Precision::F64).unwrap();
        let naive_fwd = reference::naive_forward_varlen(qkv, &varlen, options).unwrap();
        let naive_bwd = reference::naive_backward_varlen(qkv, dout, &varlen, options).unwrap();
        let mut out = vec![bf16::NAN; tq * hq * dv];
        let mut lse = vec![f32::NAN; hq * tq];
        device.forward_varlen_into(qkv, &varlen, ForwardInto {
            out: TensorMut::host(&mut out, [tq, hq, dv]),
            lse: TensorMut::host(&mut lse, [hq, tq]),
        }, options).unwrap();
        let mut grads = [vec![bf16::NAN; tq * hq * d], vec![bf16::NAN; tk * hkv * d], vec![bf16::NAN; tk * hkv * dv]];
        let [dq, dk, dvs] = &mut grads;
        device.backward_varlen_into(
            BackwardInputs { q: qkv.q, k: qkv.k, v: qkv.v, out: Tensor::host(&out, [tq, hq, dv]), lse: Tensor::host(&lse, [hq, tq]), dout },
            &varlen,
            GradientsInto {
                dq: TensorMut::host(dq, [tq, hq, d]),
                dk: TensorMut::host(dk, [tk, hkv, d]),
                dv: TensorMut::host(dvs, [tk, hkv, dv]),
            },
            options,
        ).unwrap();

        for b in 0..case.seqlens.len() {
            let (qt, kt) = p.tokens(b);
            let (sq, sk) = (qt.len(), kt.len());
            let one = Qkv {
                q: Tensor::host(rows(&p.q, &qt, hq * d), [1, sq, hq, d]),
                k: Tensor::host(rows(&p.k, &kt, hkv * d), [1, sk, hkv, d]),
                v: Tensor::host(rows(&p.v, &kt, hkv * dv), [1, sk, hkv, dv]),
            };
            let one_dout = Tensor::host(rows(&p.dout, &qt, hq * dv), [1, sq, hq, dv]);
            let lse_of = |all: &[f64]| -> Vec<f64> {
                (0..hq).flat_map(|h| qt.clone().map(move |t| all[h * tq + t])).collect()
            };

            let want = reference::forward(one, options, Precision::F64).unwrap();
            prop_assert_eq!(rows(&ref_fwd.out, &qt, hq * dv), &want.out[..]);
            prop_assert_eq!(lse_of(&ref_fwd.lse), want.lse);

            let want = reference::backward(one, one_dout, options, Precision::F64).unwrap();
            prop_assert_eq!(rows(&ref_bwd.dq, &qt, hq * d), &want.dq[..]);
            prop_assert_eq!(rows(&ref_bwd.dk, &kt, hkv * d), &want.dk[..]);
            prop_assert_eq!(rows(&ref_bwd.dv, &kt, hkv * dv), &want.dv[..]);

            let want = reference::naive_forward(one, options).unwrap();
            prop_assert_eq!(bits(rows(&naive_fwd.out, &qt, hq * dv)), bits(&want.out));
            let want = reference::naive_backward(one, one_dout, options).unwrap();
            prop_assert_eq!(bits(rows(&naive_bwd.dk, &kt, hkv * d)), bits(&want.dk));
            prop_assert_eq!(bits(rows(&naive_bwd.dq, &qt, hq * d)), bits(&want.dq));

            let want = device.forward(one, options).unwrap();
            prop_assert_eq!(bits(rows(&out, &qt, hq * dv)), bits(want.out.as_host().unwrap()));
            let got_lse: Vec<f32> = (0..hq).flat_map(|h| qt.clone().map(move |t| (h, t))).map(|(h, t)| lse[h * tq + t]).collect();
            prop_assert_eq!(got_lse, want.lse.as_host().unwrap().to_vec());
            let want = device.backward(
                BackwardInputs { q: one.q, k: one.k, v: one.v, out: want.out.view(), lse: want.lse.view(), dout: one_dout },
                options,
            ).unwrap();
            prop_assert_eq!(bits(rows(&grads[0], &qt, hq * d)), bits(want.dq.as_host().unwrap()));
            prop_assert_eq!(bits(rows(&grads[1], &kt, hkv * d)), bits(want.dk.as_host().unwrap()));
            prop_assert_eq!(bits(rows(&grads[2], &kt, hkv * dv)), bits(want.dv.as_host().unwrap()));
        }
    }
}
