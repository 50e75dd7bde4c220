//! fa3 through its public API on device tensors. Every configuration is
//! checked on a sample against `fa3::reference` by FA3's accuracy rule
//! before it is timed: a wrong kernel gets no number.

use crate::cli::{Dtype, Pass};
use crate::grid::Config;
use crate::results::Outcome;
use crate::sample::{self, Sample};
use crate::timing::{L2Flush, time_reps};
use fa3::diagnostics::{Schedule, forward_with_schedule};
use fa3::{
    AttentionElement, AttentionOptions, BackwardInputs, Device, DeviceBuffer, Element, Error,
    F8E4M3, ForwardInto, Fp8BlockDescale, Fp8Descale, Fp8Scales, Gpu, GradientsInto, Qkv, Real,
    Tensor, TensorMut, bf16, f16,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Random inputs of one element type, on the host (for the checks) and on
/// the GPU. Every configuration of a run has the same element counts
/// (tokens x hidden), so one set per type serves them all.
struct Inputs<T> {
    host: Qkvd<Vec<T>>,
    device: Qkvd<DeviceBuffer<T>>,
}

/// `q`, `k`, `v` and the gradient `dout` of the backward.
struct Qkvd<B> {
    q: B,
    k: B,
    v: B,
    dout: B,
}

/// Times fa3 on one GPU; keeps the inputs between configurations.
pub struct Ours<'a> {
    device: &'a Device,
    gpu: &'a Gpu,
    bf16: Option<Inputs<bf16>>,
    f16: Option<Inputs<f16>>,
    fp8: Option<Inputs<F8E4M3>>,
}

/// How many times to run, and the flush between timed runs.
pub struct Reps<'f> {
    pub reps: usize,
    pub warmup: usize,
    pub flush: &'f mut L2Flush,
}

impl<'a> Ours<'a> {
    /// `None` for a CPU device.
    pub fn new(device: &'a Device) -> Option<Self> {
        Some(Self {
            device,
            gpu: device.as_gpu()?,
            bf16: None,
            f16: None,
            fp8: None,
        })
    }

    pub fn gpu(&self) -> &'a Gpu {
        self.gpu
    }

    /// Checks, then times `config` with the forward kernel build of
    /// `schedule` (`Schedule::Full` but for the ablation).
    pub fn measure(&mut self, config: &Config, reps: Reps<'_>, schedule: Schedule) -> Outcome {
        let (device, gpu) = (self.device, self.gpu);
        let result = match config.dtype {
            Dtype::Bf16 => cached(&mut self.bf16, gpu, config)
                .and_then(|inputs| attention(device, gpu, inputs, config, reps, schedule)),
            Dtype::Fp16 => cached(&mut self.f16, gpu, config)
                .and_then(|inputs| attention(device, gpu, inputs, config, reps, schedule)),
            Dtype::Fp8 => cached(&mut self.fp8, gpu, config)
                .and_then(|inputs| forward_fp8(device, gpu, inputs, config, reps, false)),
        };
        outcome(result)
    }

    /// Checks, then times the FP8 `config` with block scales (factors 1,
    /// one per block of the kernel's tiles) instead of FA3's per (batch,
    /// kv head).
    pub fn measure_block_scales(&mut self, config: &Config, reps: Reps<'_>) -> Outcome {
        let (device, gpu) = (self.device, self.gpu);
        outcome(
            cached(&mut self.fp8, gpu, config)
                .and_then(|inputs| forward_fp8(device, gpu, inputs, config, reps, true)),
        )
    }
}

/// What a measurement's result says: unsupported configurations missing,
/// errors failed.
fn outcome(result: fa3::Result<Outcome>) -> Outcome {
    match result {
        Ok(outcome) => outcome,
        Err(Error::Unsupported { feature }) => Outcome::Missing {
            reason: format!("not implemented yet ({feature})"),
        },
        Err(e) => Outcome::Failed {
            reason: e.to_string(),
        },
    }
}

/// The inputs of `config`'s element type, made on first use.
fn cached<'c, T: Real + Element>(
    slot: &'c mut Option<Inputs<T>>,
    gpu: &Gpu,
    config: &Config,
) -> fa3::Result<&'c Inputs<T>> {
    let (q_len, kv_len) = (numel(q_shape(config)), numel(kv_shape(config)));
    let fits = |i: &Inputs<T>| i.host.q.len() == q_len && i.host.k.len() == kv_len;
    let inputs = match slot.take() {
        Some(inputs) if fits(&inputs) => inputs,
        _ => {
            // Fixed seeds: reruns time the same data.
            let host = Qkvd {
                q: random_normal(1, q_len),
                k: random_normal(2, kv_len),
                v: random_normal(3, kv_len),
                dout: random_normal(4, q_len),
            };
            let device = Qkvd {
                q: gpu.upload(&host.q)?,
                k: gpu.upload(&host.k)?,
                v: gpu.upload(&host.v)?,
                dout: gpu.upload(&host.dout)?,
            };
            Inputs { host, device }
        }
    };
    Ok(slot.insert(inputs))
}

/// Standard normal values (Box-Muller), like `torch.randn`: FA3's
/// benchmarks use them, and zeros would let a kernel skip work.
fn random_normal<T: Real>(seed: u64, len: usize) -> Vec<T> {
    fa3_tests::normal(&mut StdRng::seed_from_u64(seed), len)
        .into_iter()
        .map(T::from_f32)
        .collect()
}

fn q_shape(c: &Config) -> [usize; 4] {
    [c.batch, c.seqlen_q, c.heads_q, c.head_dim]
}

fn kv_shape(c: &Config) -> [usize; 4] {
    [c.batch, c.seqlen_k, c.heads_kv, c.head_dim]
}

fn lse_shape(c: &Config) -> [usize; 3] {
    [c.batch, c.heads_q, c.seqlen_q]
}

fn numel<const R: usize>(shape: [usize; R]) -> usize {
    shape.iter().product()
}

fn device_qkv<'b, T>(inputs: &'b Inputs<T>, c: &Config) -> Qkv<'b, T, 4> {
    Qkv {
        q: Tensor::device(&inputs.device.q, q_shape(c)),
        k: Tensor::device(&inputs.device.k, kv_shape(c)),
        v: Tensor::device(&inputs.device.v, kv_shape(c)),
    }
}

/// The outputs of a forward and a backward, on the GPU.
struct Outputs<T> {
    out: DeviceBuffer<T>,
    lse: DeviceBuffer<f32>,
    dq: DeviceBuffer<T>,
    dk: DeviceBuffer<T>,
    dv: DeviceBuffer<T>,
}

impl<T: AttentionElement> Outputs<T> {
    fn new(gpu: &Gpu, c: &Config) -> fa3::Result<Self> {
        Ok(Self {
            out: gpu.alloc(numel(q_shape(c)))?,
            lse: gpu.alloc(numel(lse_shape(c)))?,
            dq: gpu.alloc(numel(q_shape(c)))?,
            dk: gpu.alloc(numel(kv_shape(c)))?,
            dv: gpu.alloc(numel(kv_shape(c)))?,
        })
    }

    fn forward(
        &mut self,
        device: &Device,
        qkv: Qkv<'_, T, 4>,
        c: &Config,
        schedule: Schedule,
    ) -> fa3::Result<()> {
        let into = ForwardInto {
            out: TensorMut::device(&mut self.out, q_shape(c)),
            lse: TensorMut::device(&mut self.lse, lse_shape(c)),
        };
        forward_with_schedule(device, schedule, qkv, into, &options(c))
    }

    fn backward(&mut self, device: &Device, inputs: &Inputs<T>, c: &Config) -> fa3::Result<()> {
        let qkv = device_qkv(inputs, c);
        let backward_inputs = BackwardInputs {
            q: qkv.q,
            k: qkv.k,
            v: qkv.v,
            out: Tensor::device(&self.out, q_shape(c)),
            lse: Tensor::device(&self.lse, lse_shape(c)),
            dout: Tensor::device(&inputs.device.dout, q_shape(c)),
        };
        let into = GradientsInto {
            dq: TensorMut::device(&mut self.dq, q_shape(c)),
            dk: TensorMut::device(&mut self.dk, kv_shape(c)),
            dv: TensorMut::device(&mut self.dv, kv_shape(c)),
        };
        device.backward_into(backward_inputs, into, &options(c))
    }
}

fn options(c: &Config) -> AttentionOptions {
    AttentionOptions::new().causal(c.causal)
}

/// bf16/f16: forward, backward, or both, checked then timed.
fn attention<T: AttentionElement>(
    device: &Device,
    gpu: &Gpu,
    inputs: &Inputs<T>,
    c: &Config,
    reps: Reps<'_>,
    schedule: Schedule,
) -> fa3::Result<Outcome> {
    let qkv = device_qkv(inputs, c);
    let backward = c.pass != Pass::Fwd;
    let mut outputs = Outputs::<T>::new(gpu, c)?;
    if backward {
        // On zeroed out/lse: says "not implemented" before any forward is
        // needed, and is overwritten below.
        outputs.backward(device, inputs, c)?;
    }
    outputs.forward(device, qkv, c, schedule)?;
    if backward {
        outputs.backward(device, inputs, c)?;
    }
    let check = check_attention(gpu, inputs, &outputs, c, backward)?;
    let check = match check {
        Ok(check) => check,
        Err(reason) => return Ok(Outcome::Failed { reason }),
    };
    let Reps {
        reps,
        warmup,
        flush,
    } = reps;
    let samples = match c.pass {
        Pass::Fwd => time_reps(gpu, Some(flush), reps, warmup, || {
            outputs.forward(device, qkv, c, schedule)
        })?,
        Pass::Bwd => time_reps(gpu, Some(flush), reps, warmup, || {
            outputs.backward(device, inputs, c)
        })?,
        Pass::Fwdbwd => time_reps(gpu, Some(flush), reps, warmup, || {
            outputs.forward(device, qkv, c, schedule)?;
            outputs.backward(device, inputs, c)
        })?,
    };
    Ok(Outcome::timed(c.flops(), samples, check, None))
}

/// FA3's rule on the sample: `out` and `lse`, and the gradients after a
/// backward (`dk`, `dv` only when the sample has every query row).
fn check_attention<T: AttentionElement>(
    gpu: &Gpu,
    inputs: &Inputs<T>,
    outputs: &Outputs<T>,
    c: &Config,
    backward: bool,
) -> fa3::Result<Result<String, String>> {
    let s = Sample::of(c);
    let host = &inputs.host;
    let q = s.queries(&host.q, c);
    let (k, v) = (s.keys(&host.k, c), s.keys(&host.v, c));
    let qkv = Qkv {
        q: Tensor::host(&q, s.q_shape(c)),
        k: Tensor::host(&k, s.kv_shape(c)),
        v: Tensor::host(&v, s.kv_shape(c)),
    };
    let options = options(c);
    let exact = fa3::reference::forward(qkv, &options, fa3::reference::Precision::F32)?;
    let naive = fa3::reference::naive_forward(qkv, &options)?;
    let got_out = s.queries(&gpu.download(&outputs.out)?, c);
    let got_lse = s.lse(&gpu.download(&outputs.lse)?, c);
    let mut checks = vec![
        rule("out", &got_out, &exact.out, &naive.out),
        rule("lse", &got_lse, &exact.lse, &naive.lse),
    ];
    if backward {
        let dout = s.queries(&host.dout, c);
        let dout = Tensor::host(&dout, s.q_shape(c));
        let exact = fa3::reference::backward(qkv, dout, &options, fa3::reference::Precision::F32)?;
        let naive = fa3::reference::naive_backward(qkv, dout, &options)?;
        let got_dq = s.queries(&gpu.download(&outputs.dq)?, c);
        checks.push(rule("dq", &got_dq, &exact.dq, &naive.dq));
        if s.all_rows(c) {
            let got_dk = s.keys(&gpu.download(&outputs.dk)?, c);
            let got_dv = s.keys(&gpu.download(&outputs.dv)?, c);
            checks.push(rule("dk", &got_dk, &exact.dk, &naive.dk));
            checks.push(rule("dv", &got_dv, &exact.dv, &naive.dv));
        }
    }
    Ok(sample::verdict(&s, c, checks))
}

/// FA3's accuracy rule, on values widened to f64.
fn rule<G: Real, N: Real>(
    name: &str,
    got: &[G],
    exact: &[f64],
    naive: &[N],
) -> Result<String, String> {
    fa3_tests::check_accuracy(name, &widen(got), exact, &widen(naive), false)
        .map(|report| report.to_string())
}

fn widen<T: Real>(values: &[T]) -> Vec<f64> {
    values.iter().map(|&v| v.to_f64()).collect()
}

/// FP8 e4m3 forward (bf16 output), descale factors 1 per (batch, kv
/// head) or, with `block_scales`, per block of the kernel's tiles; checked
/// then timed.
fn forward_fp8(
    device: &Device,
    gpu: &Gpu,
    inputs: &Inputs<F8E4M3>,
    c: &Config,
    reps: Reps<'_>,
    block_scales: bool,
) -> fa3::Result<Outcome> {
    let qkv = device_qkv(inputs, c);
    let ones = vec![1.0f32; c.batch * c.heads_kv];
    let per_kv_head = Fp8Descale {
        q: &ones,
        k: &ones,
        v: &ones,
    };
    let (q_rows, k_rows) = fa3::fp8_block_rows(c.head_dim).unwrap_or((1, 1));
    let q_ones = vec![1.0f32; c.batch * c.heads_q * c.seqlen_q.div_ceil(q_rows)];
    let k_ones = vec![1.0f32; c.batch * c.heads_kv * c.seqlen_k.div_ceil(k_rows)];
    let per_block = Fp8BlockDescale {
        q: &q_ones,
        k: &k_ones,
        v: &k_ones,
        q_rows,
        k_rows,
    };
    let descale = if block_scales {
        Fp8Scales::from(&per_block)
    } else {
        Fp8Scales::from(&per_kv_head)
    };
    let mut out = gpu.alloc::<bf16>(numel(q_shape(c)))?;
    let mut lse = gpu.alloc::<f32>(numel(lse_shape(c)))?;
    fp8_call(device, qkv, descale, &mut out, &mut lse, c)?;
    let s = Sample::of(c);
    let host = &inputs.host;
    let (q, k, v) = (
        s.queries(&host.q, c),
        s.keys(&host.k, c),
        s.keys(&host.v, c),
    );
    let sample_qkv = Qkv {
        q: Tensor::host(&q, s.q_shape(c)),
        k: Tensor::host(&k, s.kv_shape(c)),
        v: Tensor::host(&v, s.kv_shape(c)),
    };
    let one = [1.0f32];
    let sample_descale = Fp8Descale {
        q: &one,
        k: &one,
        v: &one,
    };
    let exact = fa3::reference::forward_fp8(
        sample_qkv,
        &sample_descale,
        &options(c),
        fa3::reference::Precision::F32,
    )?;
    let got = widen(&s.queries(&gpu.download(&out)?, c));
    let check = sample::fp8_verdict(&s, c, &got, &exact.out, &widen(&v));
    let check = match check {
        Ok(check) => check,
        Err(reason) => return Ok(Outcome::Failed { reason }),
    };
    let Reps {
        reps,
        warmup,
        flush,
    } = reps;
    let samples = time_reps(gpu, Some(flush), reps, warmup, || {
        fp8_call(device, qkv, descale, &mut out, &mut lse, c)
    })?;
    Ok(Outcome::timed(c.flops(), samples, check, None))
}

fn fp8_call(
    device: &Device,
    qkv: Qkv<'_, F8E4M3, 4>,
    descale: Fp8Scales<'_>,
    out: &mut DeviceBuffer<bf16>,
    lse: &mut DeviceBuffer<f32>,
    c: &Config,
) -> fa3::Result<()> {
    let into = ForwardInto {
        out: TensorMut::device(out, q_shape(c)),
        lse: TensorMut::device(lse, lse_shape(c)),
    };
    device.forward_fp8_into(qkv, descale, into, &options(c))
}
