//! What the JSON records about the GPU: name, SM count, clocks, power
//! limit, driver, and the device copy rate of the L2-flush kernel.

use crate::results::GpuInfo;
use cudarc::driver::{CudaContext, sys};
use std::process::Command;

/// The fields nvidia-smi reports, in this order.
const SMI_FIELDS: &str = "name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit";

/// Reads what it can; a missing nvidia-smi leaves its fields empty.
pub fn collect(gpu: &fa3::Gpu, copy_gb_per_s: Option<f64>) -> GpuInfo {
    let smi = nvidia_smi(gpu.ordinal()).unwrap_or_default();
    GpuInfo {
        name: gpu.name().to_string(),
        sm_count: sm_count(gpu.ordinal()),
        sm_clock_mhz: smi.sm_clock_mhz,
        max_sm_clock_mhz: smi.max_sm_clock_mhz,
        memory_clock_mhz: smi.memory_clock_mhz,
        power_limit_w: smi.power_limit_w,
        driver: smi.driver,
        cuda_driver_api: cuda_driver_api(),
        fa3_module: format!("{:?}", gpu.module_source()),
        copy_gb_per_s,
    }
}

fn sm_count(ordinal: usize) -> Option<u32> {
    // The primary context, the one fa3 already holds.
    let ctx = CudaContext::new(ordinal).ok()?;
    let n = ctx
        .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
        .ok()?;
    u32::try_from(n).ok()
}

/// The CUDA version the driver supports, e.g. `13.0`.
fn cuda_driver_api() -> Option<String> {
    let mut version = 0;
    // SAFETY: libcuda is loaded (fa3 opened the GPU); the call only writes
    // the int it is given.
    let status = unsafe { sys::cuDriverGetVersion(&mut version) };
    (status == sys::CUresult::CUDA_SUCCESS)
        .then(|| format!("{}.{}", version / 1000, version % 1000 / 10))
}

#[derive(Debug, Default, PartialEq)]
struct Smi {
    driver: Option<String>,
    sm_clock_mhz: Option<u32>,
    max_sm_clock_mhz: Option<u32>,
    memory_clock_mhz: Option<u32>,
    power_limit_w: Option<f64>,
}

fn nvidia_smi(ordinal: usize) -> Option<Smi> {
    let out = Command::new("nvidia-smi")
        .arg(format!("--query-gpu={SMI_FIELDS}"))
        .args(["--format=csv,noheader,nounits", "-i"])
        .arg(ordinal.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_smi(String::from_utf8_lossy(&out.stdout).lines().next()?)
}

/// One CSV line of [`SMI_FIELDS`]; `[N/A]` fields stay empty.
fn parse_smi(line: &str) -> Option<Smi> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [_name, driver, sm, max_sm, mem, power] = fields.as_slice() else {
        return None;
    };
    Some(Smi {
        driver: Some(driver.to_string()).filter(|d| !d.is_empty() && !d.starts_with('[')),
        sm_clock_mhz: sm.parse().ok(),
        max_sm_clock_mhz: max_sm.parse().ok(),
        memory_clock_mhz: mem.parse().ok(),
        power_limit_w: power.parse().ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nvidia_smi_csv() {
        let smi = parse_smi("NVIDIA H200, 580.95.05, 1980, 1980, 3201, 700.00").unwrap();
        assert_eq!(
            smi,
            Smi {
                driver: Some("580.95.05".into()),
                sm_clock_mhz: Some(1980),
                max_sm_clock_mhz: Some(1980),
                memory_clock_mhz: Some(3201),
                power_limit_w: Some(700.0),
            }
        );
        let partial = parse_smi("NVIDIA H100, 550.54, 345, 1980, 2619, [N/A]").unwrap();
        assert_eq!(partial.power_limit_w, None);
        assert_eq!(parse_smi("NVIDIA H100, 550.54"), None);
    }
}
