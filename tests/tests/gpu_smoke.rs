//! The smoke kernel end to end: build, load, launch, every element checked.

use fa3::{Error, Gpu, ModuleSource};
use fa3_tests::{POISON_F32, random_f32, random_scalar};

#[test]
fn opening_a_gpu_gives_a_gpu_or_a_typed_reason() {
    match Gpu::new(0) {
        Ok(gpu) => assert!(!gpu.name().is_empty()),
        Err(Error::NoDriver | Error::NoDevice { .. } | Error::UnsupportedGpu { .. }) => {}
        Err(other) => panic!("unexpected error kind: {other}"),
    }
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn smoke_axpy_is_exact_on_random_data() {
    let gpu = Gpu::new(0).expect("a Hopper GPU");
    // Lengths around the block size, and one past the 65535-block grid cap so
    // the grid-stride loop runs more than once.
    for len in [1, 255, 256, 257, 100_003, 65_535 * 256 + 1000] {
        let alpha = random_scalar(-3.0, 3.0);
        let (x, y) = (random_f32(len), random_f32(len));
        let dx = gpu.upload(&x).unwrap();
        let dy = gpu.upload(&y).unwrap();
        let mut out = gpu.upload(&vec![POISON_F32; len]).unwrap();
        gpu.smoke_axpy(alpha, &dx, &dy, &mut out).unwrap();
        let got = gpu.download(&out).unwrap();
        for i in 0..len {
            let want = alpha * x[i] + y[i];
            assert_eq!(
                got[i].to_bits(),
                want.to_bits(),
                "len {len}, element {i}: {} vs {want}",
                got[i]
            );
        }
    }
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn cubin_and_ptx_jit_both_load_and_agree() {
    let jit = Gpu::with_module(0, ModuleSource::PtxJit).expect("the PTX loads through the JIT");
    assert_eq!(jit.module_source(), ModuleSource::PtxJit);
    if fa3::kernel_image::cubin().is_none() {
        // Built without ptxas: asking for the cubin must fail, typed.
        let err = Gpu::with_module(0, ModuleSource::Cubin).unwrap_err();
        assert!(matches!(err, Error::ModuleLoad { .. }), "{err}");
        assert_eq!(Gpu::new(0).unwrap().module_source(), ModuleSource::PtxJit);
        return;
    }
    let cubin = Gpu::with_module(0, ModuleSource::Cubin).expect("the embedded cubin loads");
    assert_eq!(cubin.module_source(), ModuleSource::Cubin);
    assert_eq!(
        Gpu::new(0).unwrap().module_source(),
        ModuleSource::Cubin,
        "cubin preferred"
    );
    let (x, y) = (random_f32(4099), random_f32(4099));
    let outs: Vec<Vec<f32>> = [&cubin, &jit]
        .iter()
        .map(|gpu| {
            let (dx, dy) = (gpu.upload(&x).unwrap(), gpu.upload(&y).unwrap());
            let mut out = gpu.upload(&vec![POISON_F32; x.len()]).unwrap();
            gpu.smoke_axpy(1.5, &dx, &dy, &mut out).unwrap();
            gpu.download(&out).unwrap()
        })
        .collect();
    assert!(
        outs[0]
            .iter()
            .zip(&outs[1])
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn smoke_axpy_rejects_mismatched_lengths_and_leaves_out_untouched() {
    let gpu = Gpu::new(0).expect("a Hopper GPU");
    let x = gpu.upload(&random_f32(100)).unwrap();
    let y = gpu.upload(&random_f32(99)).unwrap();
    let poison = random_f32(100);
    let mut out = gpu.upload(&poison).unwrap();
    let err = gpu.smoke_axpy(1.0, &x, &y, &mut out).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { argument: "y", .. }),
        "{err}"
    );
    assert_eq!(gpu.download(&out).unwrap(), poison);
}

#[test]
#[ignore = "needs an NVIDIA Hopper GPU"]
fn spin_holds_the_stream_for_its_cycles() {
    let gpu = Gpu::new(0).expect("a Hopper GPU");
    // No Hopper SM clock runs above 2.5 GHz (an H200's boost is 1.98):
    // 2.5M cycles last at least 1 ms, 10M at least 4 ms.
    for (cycles, at_least_ms) in [(2_500_000u64, 1.0f32), (10_000_000, 4.0)] {
        let ms = gpu.time_ms(|| gpu.spin_cycles(cycles)).unwrap();
        assert!(
            ms >= at_least_ms,
            "{cycles} cycles took {ms} ms, under {at_least_ms}"
        );
    }
    // Zero cycles return at once.
    let ms = gpu.time_ms(|| gpu.spin_cycles(0)).unwrap();
    assert!(ms < 1.0, "0 cycles took {ms} ms");
}
