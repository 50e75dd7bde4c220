//! CPU checks of the embedded kernel module: the PTX rules always, and with
//! ptxas every kernel's resources (`cargo xtask test` filters the `ptxas_`
//! tests out, saying so, when ptxas is missing).

use fa3_kernels::abi::BWD_KERNELS;
use fa3_kernels::attn::tiles::DqAdd;
use fa3_kernels_builder::{KERNELS, inspect, ptx, tools};

#[test]
fn module_is_self_contained_sm_90a_with_every_table_entry() {
    let text = fa3::kernel_image::ptx();
    ptx::check_module(text, KERNELS).unwrap_or_else(|e| panic!("{e}"));
    assert!(ptx::unresolved_calls(text).is_empty());
    assert!(text.lines().any(|l| l.trim() == ".target sm_90a"));
    let entries = ptx::entries(text);
    for k in KERNELS {
        assert!(entries.contains(&k.entry), "missing entry {}", k.entry);
        assert_eq!(
            ptx::launch_bounds_of(text, k.entry),
            Some((k.max_threads_per_block, k.min_blocks_per_sm)),
            "launch bounds of {}",
            k.entry
        );
    }
    assert_eq!(entries.len(), KERNELS.len());
}

#[test]
fn ptxas_every_kernel_assembles_without_spills_or_local_memory() {
    let kernels = inspected();
    assert_eq!(kernels.len(), KERNELS.len());
    for k in kernels {
        assert!(
            k.usage.registers > 0,
            "ptxas reported no registers for {}",
            k.kernel
        );
        assert!(k.violations.is_empty(), "{}: {:?}", k.kernel, k.violations);
    }
}

#[test]
fn embedded_cubin_matches_the_build_tools() {
    // A cubin is embedded exactly when the build found ptxas.
    let cubin = fa3::kernel_image::cubin();
    if let Some(bytes) = cubin {
        assert_eq!(&bytes[..4], b"\x7fELF", "the cubin is not an ELF image");
    } else {
        assert!(
            tools::find(tools::Tool::Ptxas).is_none()
                || std::env::var_os(tools::TOOLS_ENV).is_none(),
            "ptxas was given to the build (FA3_CUDA_TOOLS) but no cubin is embedded"
        );
    }
}

/// The structure of the primitive self-tests is real: tensor-core
/// instructions where wgmma is used, TMA where it loads, and the pingpong
/// consumers running above the 168-register entry cap without spilling.
#[test]
fn ptxas_primitive_kernels_show_their_instructions_in_sass() {
    let kernels = inspected();
    let class =
        |k: &inspect::KernelInspection, c: &str| k.sass_classes.get(c).copied().unwrap_or(0);
    let mut wgmma_kernels = 0;
    for k in kernels {
        let name = k.kernel.as_str();
        let uses_wgmma = name.starts_with("fa3_selftest_gemm")
            || name == "fa3_selftest_chain"
            || name.starts_with("fa3_selftest_pingpong");
        if uses_wgmma {
            let tensor_core = if name.contains("e4m3") {
                class(k, "QGMMA")
            } else {
                class(k, "HGMMA")
            };
            assert!(tensor_core > 0, "{name}: no wgmma in SASS");
            assert!(class(k, "UTMALDG") > 0, "{name}: no TMA load in SASS");
            assert_eq!(class(k, "LDL/STL"), 0, "{name}: local memory");
            wgmma_kernels += 1;
        }
        if name.starts_with("fa3_selftest_pingpong") {
            assert_eq!(k.setmaxnreg_in_ptx, 2, "{name}: one setmaxnreg per role");
            assert_eq!(
                k.usage.registers, 168,
                "{name}: 384 threads x 1 block cap at entry"
            );
            assert!(
                k.max_register > 168,
                "{name}: consumers use R{} at most",
                k.max_register
            );
        }
        if name.starts_with("fa3_selftest_tma") {
            assert!(
                class(k, "UTMALDG") > 0 && class(k, "UTMASTG") > 0,
                "{name}: TMA load and store"
            );
        }
    }
    assert_eq!(
        wgmma_kernels, 18,
        "wgmma kernels: 15 GEMM shapes, the chain, 2 pingpong rings"
    );
}

/// What every warp-specialized attention kernel shows: setmaxnreg for the
/// two roles in the PTX and in the SASS (ptxas drops it, warning C7508,
/// when it cannot bound a role's registers), the 168-register cap of 384
/// threads x 1 block at entry, TMA loads and wgmma in the SASS, no local
/// memory, no ptxas warning, no rule broken.
fn assert_warp_specialized(k: &inspect::KernelInspection) {
    let name = &k.kernel;
    let class = |c: &str| k.sass_classes.get(c).copied().unwrap_or(0);
    assert_eq!(k.setmaxnreg_in_ptx, 2, "{name}: one setmaxnreg per role");
    assert_eq!(class("USETMAXREG"), 2, "{name}: setmaxnreg in SASS");
    assert_eq!(
        k.usage.registers, 168,
        "{name}: 384 threads x 1 block cap at entry"
    );
    // FP8 kernels' wgmma is QGMMA, the 16-bit ones' HGMMA.
    let wgmma = if name.contains("e4m3") {
        "QGMMA"
    } else {
        "HGMMA"
    };
    assert!(class(wgmma) > 0, "{name}: no {wgmma} in SASS");
    assert!(class("UTMALDG") > 0, "{name}: no TMA load in SASS");
    assert_eq!(class("LDL/STL"), 0, "{name}: local memory");
    assert!(k.warnings.is_empty(), "{name}: {:?}", k.warnings);
    assert!(k.violations.is_empty(), "{name}: {:?}", k.violations);
}

/// The forward kernels are warp specialized as designed: setmaxnreg for the
/// two roles in the PTX and the SASS, TMA loads and wgmma in the SASS
/// (QGMMA for the FP8 kernels), no spills, and the overlapped consumers at
/// hdim 128/256 running above the 168-register entry cap.
#[test]
fn ptxas_forward_kernels_are_warp_specialized() {
    let kernels = inspected();
    let forward: Vec<_> = kernels
        .iter()
        .filter(|k| k.kernel.starts_with("fa3_fwd_"))
        .collect();
    assert_eq!(
        forward.len(),
        14,
        "6 forward kernels, 2 long-sequence hdim 64 ones, 3 ablation builds, 3 FP8 kernels"
    );
    for k in forward {
        let name = &k.kernel;
        assert_warp_specialized(k);
        // The overlapped schedule holds S, P and O at once: at hdim 128 and
        // 256 its consumers need registers above the entry cap (hdim 64
        // fits under it).
        let overlapped = !name.ends_with("no_overlap") && !name.ends_with("plain");
        if overlapped && !name.contains("hdim64") {
            assert!(
                k.max_register > 168,
                "{name}: consumers use R{} at most",
                k.max_register
            );
        }
    }
}

/// The backward kernels are built as designed: the main kernels warp
/// specialized (setmaxnreg for both roles in PTX and SASS, consumers above
/// the 168-register entry cap), with TMA loads of Q, dO, K, V, bulk copies
/// of the row statistics, wgmma, and the dQ partials added by bulk
/// reductions; no spills, local memory or serialized wgmma in any of them.
#[test]
fn ptxas_backward_kernels_are_warp_specialized() {
    let kernels = inspected();
    let class =
        |k: &inspect::KernelInspection, c: &str| k.sass_classes.get(c).copied().unwrap_or(0);
    let backward: Vec<_> = kernels
        .iter()
        .filter(|k| k.kernel.starts_with("fa3_bwd_"))
        .collect();
    assert_eq!(
        backward.len(),
        BWD_KERNELS.len() + 4,
        "main kernels, 2 preprocess and 2 conversion kernels"
    );
    let mut main = 0;
    for k in backward {
        let name = &k.kernel;
        assert_eq!(class(k, "LDL/STL"), 0, "{name}: local memory");
        assert!(k.warnings.is_empty(), "{name}: {:?}", k.warnings);
        assert!(k.violations.is_empty(), "{name}: {:?}", k.violations);
        let Some(table_row) = BWD_KERNELS.iter().find(|b| b.spec.entry == name) else {
            continue;
        };
        main += 1;
        assert_warp_specialized(k);
        assert!(
            k.max_register > 168,
            "{name}: consumers use R{} at most",
            k.max_register
        );
        assert!(class(k, "UBLKCP") > 0, "{name}: no bulk copy in SASS");
        match table_row.tiling.dq_add {
            DqAdd::Staged => assert!(
                class(k, "UBLKRED") > 0,
                "{name}: no dQ bulk reduction in SASS"
            ),
            // 16-byte additions besides the semaphore increments (at most
            // one per consumer path).
            DqAdd::FromRegisters => assert!(
                class(k, "REDG") > 2 && class(k, "UBLKRED") == 0,
                "{name}: dQ not added from registers"
            ),
        }
    }
    assert_eq!(main, BWD_KERNELS.len());
}

/// Every kernel of the embedded module, assembled by ptxas and disassembled
/// by cuobjdump once per test binary (the `ptxas_` tests need both; `cargo
/// xtask test` filters them out, saying so, when either is missing).
fn inspected() -> &'static [inspect::KernelInspection] {
    static KERNELS: std::sync::OnceLock<Vec<inspect::KernelInspection>> =
        std::sync::OnceLock::new();
    KERNELS.get_or_init(|| {
        let ptxas = tools::find(tools::Tool::Ptxas)
            .expect("ptxas not found: run `cargo xtask tools`, set CUDA_HOME, or filter with `--skip ptxas_`");
        let cuobjdump = tools::find(tools::Tool::Cuobjdump)
            .expect("cuobjdump not found: run `cargo xtask tools`, set CUDA_HOME, or filter with `--skip ptxas_`");
        let work = std::env::temp_dir().join(format!("fa3-ptxas-{}", std::process::id()));
        let kernels = inspect::assemble_and_inspect(fa3::kernel_image::ptx(), &ptxas, Some(&cuobjdump), &work)
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_dir_all(&work);
        kernels
    })
}
