//! TMA round trips on the GPU: boxes hanging off every edge read zeros into
//! shared memory, and stores write nothing outside the tensor.

use fa3::Gpu;
use fa3::diagnostics::{TmaCase, TmaElement, tma_round_trip};
use fa3_kernels::layout::swizzle;
use float8::F8E4M3;
use half::bf16;
use rand::Rng;

/// A tensor with random padding between rows and planes, its box shape and
/// origins, run through the round trip and checked element by element.
struct Case {
    dims: [u64; 4],
    rank: usize,
    box_dims: [u32; 4],
    origins: Vec<[i32; 4]>,
}

/// Element types with a bit pattern we can compare and poison with.
trait Bits: TmaElement + Copy {
    fn from_bits(bits: u16) -> Self;
    fn bits(self) -> u16;
}
impl Bits for bf16 {
    fn from_bits(bits: u16) -> Self {
        bf16::from_bits(bits)
    }
    fn bits(self) -> u16 {
        self.to_bits()
    }
}
impl Bits for F8E4M3 {
    fn from_bits(bits: u16) -> Self {
        F8E4M3::from_bits(bits as u8)
    }
    fn bits(self) -> u16 {
        u16::from(self.to_bits())
    }
}

/// Strides (elements) of dimensions 1..4 with random padding that keeps
/// every byte stride a multiple of 16.
fn padded_strides(dims: [u64; 4], elem: u64) -> [u64; 4] {
    let mut rng = fa3_tests::fresh_rng();
    let align = 16 / elem;
    let mut strides = [0u64; 4];
    let mut extent = dims[0];
    for d in 1..4 {
        let pad = align * rng.random_range(0..3);
        strides[d] = (extent + pad).div_ceil(align) * align;
        extent = strides[d] * dims[d];
    }
    strides
}

fn offset(index: [u64; 4], strides: [u64; 4]) -> u64 {
    index[0] + (1..4).map(|d| index[d] * strides[d]).sum::<u64>()
}

fn run<T: Bits>(gpu: &Gpu, case: &Case) {
    let elem = size_of::<T>() as u64;
    let (src_strides, dst_strides) = (
        padded_strides(case.dims, elem),
        padded_strides(case.dims, elem),
    );
    let extent = |s: [u64; 4]| s[3] * case.dims[3];
    let (src_off, dst_off) = (16 / elem as usize * 3, 16 / elem as usize);
    let mut rng = fa3_tests::fresh_rng();
    // Random finite values; the poison is a pattern no value takes (0xff..).
    let src: Vec<T> = (0..src_off + extent(src_strides) as usize + 64)
        .map(|_| {
            T::from_bits(rng.random_range(0x0100..0x7800) & (if elem == 1 { 0x77 } else { 0x7fff }))
        })
        .collect();
    let poison = T::from_bits(0xffff);
    let dst_init = vec![poison; dst_off + extent(dst_strides) as usize + 64];
    let rank = case.rank;
    let result = tma_round_trip(
        gpu,
        &TmaCase {
            src: &src,
            src_offset: src_off,
            dst: &dst_init,
            dst_offset: dst_off,
            dims: &case.dims[..rank],
            src_strides: &src_strides[1..rank],
            dst_strides: &dst_strides[1..rank],
            box_dims: &case.box_dims[..rank],
            origins: &case.origins,
        },
    )
    .expect("round trip runs");

    // Expected destination: covered elements copied, everything else poison.
    let mut want = dst_init.clone();
    let inside = |o: i64, d: usize, i: u64| {
        let x = o + i as i64;
        (x >= 0 && (x as u64) < case.dims[d]).then_some(x as u64)
    };
    for (b, origin) in case.origins.iter().enumerate() {
        let smem = &result.smem[b];
        let mut row = 0u32;
        for i3 in 0..u64::from(case.box_dims[3].max(1)) {
            for i2 in 0..u64::from(case.box_dims[2].max(1)) {
                for i1 in 0..u64::from(case.box_dims[1]) {
                    for i0 in 0..u64::from(case.box_dims[0]) {
                        let idx = [i0, i1, i2, i3];
                        let global: Option<Vec<u64>> = (0..4)
                            .map(|d| {
                                if d < rank {
                                    inside(origin[d] as i64, d, idx[d])
                                } else {
                                    Some(0)
                                }
                            })
                            .collect();
                        let byte = swizzle::offset(row, (i0 * elem) as u32) as usize;
                        let got = &smem[byte..byte + elem as usize];
                        let expect_bits = match &global {
                            Some(g) => {
                                let g = [g[0], g[1], g[2], g[3]];
                                let v = src[src_off + offset(g, src_strides) as usize];
                                want[dst_off + offset(g, dst_strides) as usize] = v;
                                v.bits()
                            }
                            None => 0, // out of bounds reads as zero
                        };
                        let got_bits = if elem == 1 {
                            u16::from(got[0])
                        } else {
                            u16::from_le_bytes([got[0], got[1]])
                        };
                        assert_eq!(
                            got_bits, expect_bits,
                            "box {b} at {origin:?}, element {idx:?} in shared memory"
                        );
                    }
                    row += 1;
                }
            }
        }
    }
    let bad: Vec<usize> = (0..want.len())
        .filter(|&i| result.dst[i].bits() != want[i].bits())
        .collect();
    assert!(
        bad.is_empty(),
        "{} destination elements differ, first at {:?}",
        bad.len(),
        bad.first()
    );
}

/// A box starts inside the tensor with its first column on a 16-byte
/// boundary (TMA faults otherwise); it may hang off the far edges.
fn column(x: i32, elem: usize) -> i32 {
    let step = (16 / elem) as i32;
    x.div_euclid(step) * step
}

fn origins_2d(dims: [u64; 4], box_dims: [u32; 4], elem: usize) -> Vec<[i32; 4]> {
    let (w, h) = (dims[0] as i32, dims[1] as i32);
    let (bw, bh) = (box_dims[0] as i32, box_dims[1] as i32);
    let mut rng = fa3_tests::fresh_rng();
    // Interior, right edge, bottom edge, bottom-right corner, last column.
    let mut o = vec![
        [0, 0],
        [w - bw / 3, 0],
        [0, h - bh / 2],
        [w - bw / 2, h - bh / 3],
        [w - 1, h - 1],
    ];
    for _ in 0..7 {
        o.push([rng.random_range(0..w), rng.random_range(0..h)]);
    }
    o.into_iter()
        .map(|[x, y]| [column(x, elem), y, 0, 0])
        .collect()
}

fn origins_4d(dims: [u64; 4], elem: usize) -> Vec<[i32; 4]> {
    let mut rng = fa3_tests::fresh_rng();
    let mut o: Vec<[i32; 4]> = (0..10)
        .map(|_| core::array::from_fn(|d| rng.random_range(0..dims[d] as i32)))
        .collect();
    // The far corner: the box hangs off all four dimensions at once.
    o.push(core::array::from_fn(|d| dims[d] as i32 - 1));
    for origin in &mut o {
        origin[0] = column(origin[0], elem);
    }
    o
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn tma_round_trip_bf16_2d() {
    let gpu = Gpu::new(0).expect("a Hopper GPU");
    let (dims, box_dims) = ([200, 300, 1, 1], [64, 64, 1, 1]);
    run::<bf16>(
        &gpu,
        &Case {
            dims,
            rank: 2,
            box_dims,
            origins: origins_2d(dims, box_dims, 2),
        },
    );
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn tma_round_trip_fp8_2d() {
    let gpu = Gpu::new(0).expect("a Hopper GPU");
    // 304-byte rows: whole 16-byte chunks (required), and boxes of 128 still
    // hang off the right edge.
    let (dims, box_dims) = ([304, 200, 1, 1], [128, 32, 1, 1]);
    run::<F8E4M3>(
        &gpu,
        &Case {
            dims,
            rank: 2,
            box_dims,
            origins: origins_2d(dims, box_dims, 1),
        },
    );
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn tma_round_trip_bf16_4d() {
    let gpu = Gpu::new(0).expect("a Hopper GPU");
    let (dims, box_dims) = ([96, 5, 37, 3], [64, 2, 8, 2]);
    run::<bf16>(
        &gpu,
        &Case {
            dims,
            rank: 4,
            box_dims,
            origins: origins_4d(dims, 2),
        },
    );
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn tma_round_trip_fp8_4d() {
    let gpu = Gpu::new(0).expect("a Hopper GPU");
    let (dims, box_dims) = ([160, 3, 9, 2], [128, 2, 4, 1]);
    run::<F8E4M3>(
        &gpu,
        &Case {
            dims,
            rank: 4,
            box_dims,
            origins: origins_4d(dims, 1),
        },
    );
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn tma_round_trip_refuses_boxes_that_would_fault() {
    let gpu = Gpu::new(0).expect("a Hopper GPU");
    let src = vec![bf16::ONE; 64 * 64];
    let dst = vec![bf16::ZERO; 64 * 64];
    for origin in [[3, 0, 0, 0], [-8, 0, 0, 0], [0, 64, 0, 0]] {
        let err = tma_round_trip(
            &gpu,
            &TmaCase {
                src: &src,
                src_offset: 0,
                dst: &dst,
                dst_offset: 0,
                dims: &[64, 64],
                src_strides: &[64],
                dst_strides: &[64],
                box_dims: &[64, 64],
                origins: &[origin],
            },
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                fa3::Error::InvalidArgument {
                    argument: "origins",
                    ..
                }
            ),
            "{origin:?}: {err}"
        );
    }
    // The context is still healthy: a valid box goes through.
    assert!(gpu.upload(&src).is_ok());
}
