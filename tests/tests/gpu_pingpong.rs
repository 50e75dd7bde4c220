//! Warp specialization on the GPU: a TMA producer warpgroup streams tiles
//! through 2- and 3-stage rings to two consumer warpgroups that take turns
//! (named barriers), with setmaxnreg moving registers to the consumers.

use fa3::Gpu;
use fa3::diagnostics::pingpong;
use fa3_tests::{random_grid, repeats};
use half::bf16;

const ROWS: usize = 192;
const TILES: usize = 128;

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn producer_streams_tiles_to_pingpong_consumers_exactly_and_repeatably() {
    let gpu = Gpu::new(0).expect("a Hopper GPU");
    // Small integers: every product and sum is exact, so the checksum is too.
    let a = random_grid(2 * 64 * 64, 1.0, 2.0);
    let b = random_grid(TILES * ROWS * 64, 1.0, 2.0);
    let bf = |x: &[f32]| x.iter().map(|&v| bf16::from_f32(v)).collect::<Vec<_>>();
    let (a16, b16) = (bf(&a), bf(&b));

    // D[c][p][i][j] = sum over tiles t with t % 2 == p of A_c[i] · B_t[j].
    let mut want = vec![0.0f32; 4 * 64 * ROWS];
    for c in 0..2 {
        for t in 0..TILES {
            let block = (2 * c + t % 2) * 64 * ROWS;
            for i in 0..64 {
                for j in 0..ROWS {
                    let dot: f32 = (0..64)
                        .map(|x| a[c * 4096 + i * 64 + x] * b[(t * ROWS + j) * 64 + x])
                        .sum();
                    want[block + i * ROWS + j] += dot;
                }
            }
        }
    }
    let turns: Vec<(u32, u32)> = (0..TILES as u32).flat_map(|t| [(0, t), (1, t)]).collect();

    for stages in [2, 3] {
        let first = pingpong(&gpu, stages, &a16, &b16).expect("ring runs");
        assert_eq!(first.d, want, "{stages} stages: checksum");
        assert_eq!(
            first.order, turns,
            "{stages} stages: consumers must alternate"
        );
        for run in 1..repeats() {
            let again = pingpong(&gpu, stages, &a16, &b16).expect("ring runs");
            let same = again
                .d
                .iter()
                .zip(&first.d)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(
                same && again.order == turns,
                "{stages} stages: run {run} differs"
            );
        }
    }
}
