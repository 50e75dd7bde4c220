//! Query rows that see no key: out = 0, lse = -inf, zero gradients, never
//! NaN — in the reference (f32, f64), the naive implementation and the CPU
//! backend.

use fa3::reference::{self, Precision};
use fa3::{AttentionOptions, Qkv, Tensor, bf16};
use fa3_tests::{cpu_forward_backward, seeded_f32};

const HEADS: usize = 2;
const D: usize = 8;

fn data(len: usize, seed: u64) -> Vec<bf16> {
    seeded_f32(seed, len)
        .into_iter()
        .map(bf16::from_f32)
        .collect()
}

/// Runs every implementation on (1, seqlen_q, HEADS, D) x (1, seqlen_k, ...)
/// and checks rows `masked` (query positions) are fully masked.
fn check(seqlen_q: usize, seqlen_k: usize, options: &AttentionOptions, masked: &[usize]) {
    let (q, k, v) = (
        data(seqlen_q * HEADS * D, 1),
        data(seqlen_k * HEADS * D, 2),
        data(seqlen_k * HEADS * D, 3),
    );
    let dout = data(seqlen_q * HEADS * D, 4);
    let qkv = Qkv {
        q: Tensor::host(&q, [1, seqlen_q, HEADS, D]),
        k: Tensor::host(&k, [1, seqlen_k, HEADS, D]),
        v: Tensor::host(&v, [1, seqlen_k, HEADS, D]),
    };
    let dout = Tensor::host(&dout, [1, seqlen_q, HEADS, D]);
    let row = |i: usize, h: usize| ((i * HEADS) + h) * D..((i * HEADS) + h + 1) * D;
    let lse_at = |i: usize, h: usize| h * seqlen_q + i;

    for precision in [Precision::F32, Precision::F64] {
        let r = reference::backward(qkv, dout, options, precision).unwrap();
        assert!(r.out.iter().chain(&r.lse).all(|x| !x.is_nan()));
        assert!(r.dq.iter().chain(&r.dk).chain(&r.dv).all(|x| x.is_finite()));
        for &i in masked {
            for h in 0..HEADS {
                assert!(r.out[row(i, h)].iter().all(|&o| o == 0.0));
                assert_eq!(r.lse[lse_at(i, h)], f64::NEG_INFINITY);
                assert!(r.dq[row(i, h)].iter().all(|&g| g == 0.0));
            }
        }
    }

    let naive = reference::naive_forward(qkv, options).unwrap();
    let naive_grads = reference::naive_backward(qkv, dout, options).unwrap();
    assert!(naive.lse.iter().all(|x| !x.is_nan()));
    let all = naive
        .out
        .iter()
        .chain(&naive_grads.dq)
        .chain(&naive_grads.dk)
        .chain(&naive_grads.dv);
    assert!(all.map(|x| x.to_f32()).all(f32::is_finite));

    let (fwd, grads) = cpu_forward_backward(qkv, dout, options);
    let (out, lse) = (fwd.out.as_host().unwrap(), fwd.lse.as_host().unwrap());
    let dq = grads.dq.as_host().unwrap();
    for &i in masked {
        for h in 0..HEADS {
            assert!(out[row(i, h)].iter().all(|o| o.to_f32() == 0.0));
            assert_eq!(lse[lse_at(i, h)], f32::NEG_INFINITY);
            assert!(dq[row(i, h)].iter().all(|g| g.to_f32() == 0.0));
            assert_eq!(naive.lse[lse_at(i, h)], f32::NEG_INFINITY);
            assert!(naive.out[row(i, h)].iter().all(|o| o.to_f32() == 0.0));
        }
    }
    let all = [dq, grads.dk.as_host().unwrap(), grads.dv.as_host().unwrap()];
    assert!(
        all.iter()
            .flat_map(|g| g.iter())
            .all(|g| g.to_f32().is_finite())
    );
}

#[test]
fn causal_with_more_queries_than_keys_masks_the_first_rows() {
    // Bottom-right aligned: query i sees keys j <= i - 3.
    check(6, 3, &AttentionOptions::new().causal(true), &[0, 1, 2]);
}

#[test]
fn a_narrow_window_masks_the_rows_off_the_keys() {
    // seqlen_q 5, seqlen_k 2: query i's diagonal key is i - 3, and the
    // window (0, 1) shows keys i - 3 and i - 2 only.
    check(
        5,
        2,
        &AttentionOptions::new().window(Some(0), Some(1)),
        &[0, 1],
    );
}

#[test]
fn no_keys_masks_every_row() {
    check(4, 0, &AttentionOptions::new(), &[0, 1, 2, 3]);
}

#[test]
fn no_queries_gives_zero_key_gradients() {
    let kv = data(3 * HEADS * D, 5);
    fn t(x: &[bf16], s: usize) -> Tensor<'_, bf16, 4> {
        Tensor::host(x, [1, s, HEADS, D])
    }
    let r = reference::backward(
        Qkv {
            q: t(&[], 0),
            k: t(&kv, 3),
            v: t(&kv, 3),
        },
        t(&[], 0),
        &AttentionOptions::new(),
        Precision::F64,
    )
    .unwrap();
    assert!(r.out.is_empty() && r.dq.is_empty());
    assert!(r.dk.iter().chain(&r.dv).all(|&g| g == 0.0) && r.dk.len() == kv.len());
}
