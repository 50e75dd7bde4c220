//! Bulk copies and the backward's two ways of adding f32 blocks into global
//! memory, raced by many blocks into the same sums: exact on small
//! integers (every order of addition gives the same f32 sum). Also the
//! kernel to run compute-sanitizer's racecheck on when the backward's
//! racecheck fails (`kernels-gpu/README.md`).

use fa3::Gpu;
use fa3::diagnostics::{BULK_ADD_WORD_MULTIPLE, bulk_add};
use rand::Rng;

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn bulk_and_register_adds_sum_every_block() {
    let gpu = Gpu::new(0).expect("a Hopper GPU");
    let mut rng = fa3_tests::fresh_rng();
    for (blocks, words) in [(1, BULK_ADD_WORD_MULTIPLE), (264, 4096), (1000, 8192)] {
        // Integers below 2^10 over at most 1000 blocks: sums below 2^24.
        let mut small = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| rng.random_range(-1000..1000) as f32)
                .collect()
        };
        let (src, init) = (small(blocks * words), small(words));
        let got = bulk_add(&gpu, &src, &init).expect("bulk adds run");
        let want: Vec<f32> = (0..words)
            .map(|i| init[i] + (0..blocks).map(|b| src[b * words + i]).sum::<f32>())
            .collect();
        for (name, sum) in [("bulk reduce-add", &got.bulk_sum), ("red.v4", &got.red_sum)] {
            let wrong = sum.iter().zip(&want).position(|(g, w)| g != w);
            assert!(
                wrong.is_none(),
                "{blocks} blocks of {words}: {name} word {wrong:?}: got {:?}, want {:?}",
                wrong.map(|i| sum[i]),
                wrong.map(|i| want[i])
            );
        }
    }
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn bulk_add_refuses_bad_shapes_before_launching() {
    let gpu = Gpu::new(0).expect("a Hopper GPU");
    let err = bulk_add(&gpu, &[0.0; 300], &[0.0; 300]).unwrap_err();
    assert!(err.to_string().contains("multiple of 512"), "{err}");
    let err = bulk_add(&gpu, &[0.0; 700], &[0.0; 512]).unwrap_err();
    assert!(err.to_string().contains("blocks of 512"), "{err}");
}
