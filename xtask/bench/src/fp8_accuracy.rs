//! `--fp8-accuracy`: the FA3 paper's FP8 accuracy experiment (its Table 3;
//! `fa3_tests::fp8_accuracy`) instead of timing, in one run: the RMSE of O
//! against the `f64` attention of the unquantized inputs for fa3's bf16
//! forward and its FP8 forward after each quantization, and the official
//! FA3's FP8 forward on fa3's per-tensor e4m3 inputs and scales (the same
//! bytes, so the two per-tensor rows differ by their kernels only).

use crate::peers::Peers;
use crate::results::{Availability, PeerVersions};
use fa3::{Device, bf16};
use fa3_tests::fp8_accuracy::{
    ABOVE_FLOOR, BAR, BELOW_PER_TENSOR, Experiment, GOAL, Method, SHAPE,
};
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Runs the experiment, prints its table and writes its JSON into `out`.
/// Exit code 1 when a bar is missed.
pub fn run(
    device: &Device,
    peers: &mut Peers,
    versions: &PeerVersions,
    out: &Path,
    stamp: &str,
) -> Result<ExitCode, String> {
    let gpu = device.as_gpu().ok_or("fa3-bench needs a GPU device")?;
    let experiment = Experiment::new(gpu, SHAPE).map_err(|e| format!("inputs: {e}"))?;
    let table = experiment
        .table(device)
        .map_err(|e| format!("fa3-rs: {e}"))?;
    let mut rows: Vec<(String, Result<f64, String>)> = table
        .rows
        .iter()
        .map(|&(method, rmse)| (method.label().to_string(), Ok(rmse)))
        .collect();
    let bounds = table.bounds;
    rows.push((
        "naive FP8 per tensor (the paper's baseline, host)".into(),
        Ok(bounds.naive_per_tensor),
    ));
    rows.push((
        "exact attention of the block + incoherent e4m3 inputs (floor, host)".into(),
        Ok(bounds.floor),
    ));
    let fa3 = fa3_per_tensor(device, peers, &experiment).map(|o| experiment.rmse(&o));
    let fa3_label = match &versions.fa3 {
        Availability::Version(v) => format!("official FA3 FP8 per tensor ({v})"),
        Availability::Missing(_) => "official FA3 FP8 per tensor".into(),
    };
    rows.push((fa3_label, fa3));

    let both = table.both();
    let per_tensor = table.of(Method::PerTensor);
    println!(
        "FP8 accuracy, the FA3 paper's experiment: (batch, seqlen, heads, hdim) {SHAPE:?}, non-causal"
    );
    println!(
        "inputs N(0,1) + Bernoulli(0.001)·N(0,10²); RMSE of O against the f64 attention of the bf16 inputs"
    );
    println!();
    println!("| method | RMSE | fa3 per tensor / this |");
    println!("|---|---|---|");
    for (label, rmse) in &rows {
        match rmse {
            Ok(r) => println!("| {label} | {r:.2e} | {:.2}x |", per_tensor / r),
            Err(why) => println!("| {label} | missing: {why} | |"),
        }
    }
    let meets = table.meets_bar();
    println!();
    println!(
        "bar: block + incoherent {both:.2e} <= {BAR:.1e} (goal {GOAL:.0e}: {}), {:.2}x below the naive per tensor (>= {BELOW_PER_TENSOR}x), {:.2}x its inputs' floor (<= {ABOVE_FLOOR}x): {}",
        if both <= GOAL { "met" } else { "not met" },
        bounds.naive_per_tensor / both,
        both / bounds.floor,
        if meets { "met" } else { "NOT MET" }
    );
    println!(
        "fa3's own per-tensor kernel is {:.2}x block + incoherent; at most {:.2}x is possible on these inputs (per tensor / floor)",
        per_tensor / both,
        per_tensor / bounds.floor
    );
    let json = json!({
        "experiment": "FA3 paper Table 3 (FP8 accuracy)",
        "shape": SHAPE,
        "started": stamp,
        "peers": versions,
        "rows": rows.iter().map(|(label, r)| match r {
            Ok(rmse) => json!({"method": label, "rmse": rmse}),
            Err(why) => json!({"method": label, "missing": why}),
        }).collect::<Vec<_>>(),
        "bar_met": meets,
    });
    fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let path = out.join(format!("fp8-accuracy-{stamp}.json"));
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    fs::write(&path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    println!("results: {}", path.display());
    Ok(if meets {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The official FA3's FP8 forward on fa3's per-tensor quantization of the
/// experiment's inputs, through files the helper reads and writes.
fn fa3_per_tensor(
    device: &Device,
    peers: &mut Peers,
    experiment: &Experiment,
) -> Result<Vec<bf16>, String> {
    let gpu = device.as_gpu().ok_or("a GPU device")?;
    let quantized = experiment
        .quantize(device, Method::PerTensor)
        .map_err(|e| format!("quantization: {e}"))?;
    let dir = Scratch::new()?;
    let mut paths = Vec::new();
    for (name, data) in ["q", "k", "v"].into_iter().zip(&quantized.data) {
        let bytes: Vec<u8> = gpu
            .download(data)
            .map_err(|e| e.to_string())?
            .iter()
            .map(|x| x.to_bits())
            .collect();
        let path = dir.0.join(format!("{name}.e4m3"));
        fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        paths.push(path);
    }
    let out = dir.0.join("out.bf16");
    let scales: Vec<f32> = quantized.scales.iter().map(|s| s[0]).collect();
    peers.fa3_fp8_out(SHAPE, &paths, &scales, &out)?;
    let bytes = fs::read(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let o: Vec<bf16> = bytes
        .chunks_exact(2)
        .map(|b| bf16::from_bits(u16::from_le_bytes([b[0], b[1]])))
        .collect();
    if o.len() != experiment.exact.len() {
        return Err(format!(
            "FA3 wrote {} values, not {}",
            o.len(),
            experiment.exact.len()
        ));
    }
    Ok(o)
}

/// A temporary folder, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("fa3-bench-fp8-{}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
