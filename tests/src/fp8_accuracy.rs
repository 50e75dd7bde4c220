//! The FA3 paper's FP8 accuracy experiment (its Table 3): inputs N(0, 1)
//! plus, with probability 0.001, an N(0, 10²) outlier; the RMSE of O
//! against the `f64` attention of the unquantized inputs, for the bf16
//! forward and the FP8 forward after each quantization (per tensor, per
//! block, incoherent processing, both), and two host rows on the same
//! e4m3 bytes that bound them ([`Bounds`]). The GPU test asserts the bars
//! on it; `fa3-bench --fp8-accuracy` adds the official FA3's FP8 forward on
//! the per-tensor inputs and reports the table.

use crate::{fresh_rng, normal};
use fa3::reference::{self, Precision};
use fa3::{
    AttentionOptions, Device, DeviceBuffer, F8E4M3, ForwardInto, Fp8BlockDescale, Fp8Descale,
    Fp8Quantize, Fp8QuantizedInto, Fp8Scales, Fp8Scaling, Gpu, Qkv, Real, Tensor, TensorMut, bf16,
    fp8_block_rows,
};
use rand::Rng;

/// The experiment's `(batch, seqlen, heads, head_dim)`: 32 Mi scores per
/// head group, enough outliers (about 4k per tensor) for the quantization
/// schemes to differ, and an `f64` reference of seconds on the GPU
/// machine's 16 cores.
pub const SHAPE: [usize; 4] = [1, 2048, 16, 128];

/// The bar: block quantization with incoherent processing at most
/// the paper's FA3 FP8 RMSE, and per-tensor FP8 at least this many times
/// worse; and its goal.
///
/// The second is out of reach on the paper's quantized inputs: fa3's
/// per-tensor kernel and the naive per-tensor FP8
/// ([`Bounds::naive_per_tensor`]) both sit about 2.0x above
/// [`Bounds::floor`], the error of the block + incoherent inputs under
/// exact attention (H200, 2026-12-02: 1.62e-2 and 1.63e-2 against 8.10e-3;
/// the paper's 2.4e-2 baseline is worse than either). The GPU test asserts
/// [`BAR`] and [`ABOVE_FLOOR`]; `fa3-bench --fp8-accuracy` reports the
/// ratio.
pub const BAR: f64 = 9.1e-3;
pub const BELOW_PER_TENSOR: f64 = 2.5;
pub const GOAL: f64 = 7e-3;
/// At most this much above [`Bounds::floor`]: what the fused kernel's own
/// arithmetic (P in e4m3, the tensor cores' truncating accumulation) may
/// add to the error of the quantized inputs (measured 1.04x).
pub const ABOVE_FLOOR: f64 = 1.25;

/// The RMSE of every [`Method`], in [`Method::ALL`]'s order, and the
/// bounds on the same bytes.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub rows: [(Method, f64); 5],
    pub bounds: Bounds,
}

/// Two host rows on the GPU's e4m3 bytes: what the FP8 rows are measured
/// against.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The exact (`f64`) attention of the block + incoherent inputs: the
    /// error of quantizing Q, K and V alone, below which no kernel on them
    /// can go.
    pub floor: f64,
    /// The paper's baseline FP8: the naive FP8 attention
    /// (`reference::naive_forward_fp8`, P rounded to e4m3, the tensor
    /// cores' accumulation) of the per-tensor inputs.
    pub naive_per_tensor: f64,
}

impl Table {
    pub fn of(&self, method: Method) -> f64 {
        self.rows
            .iter()
            .find(|(m, _)| *m == method)
            .map_or(f64::NAN, |r| r.1)
    }

    /// Block + incoherent processing: the row the bars are about.
    pub fn both(&self) -> f64 {
        self.of(Method::BlockHadamard)
    }

    /// Whether the bars are met: [`BAR`], [`BELOW_PER_TENSOR`] under the
    /// paper's baseline and [`ABOVE_FLOOR`].
    pub fn meets_bar(&self) -> bool {
        let both = self.both();
        both <= BAR
            && self.bounds.naive_per_tensor >= BELOW_PER_TENSOR * both
            && both <= ABOVE_FLOOR * self.bounds.floor
    }
}

/// N(0, 1) plus, with probability 0.001, N(0, 10²): the FA3 paper's FP8
/// inputs.
pub fn paper_inputs<T: Real>(len: usize) -> Vec<T> {
    let mut rng = fresh_rng();
    let outliers = normal(&mut rng, len);
    normal(&mut rng, len)
        .into_iter()
        .zip(outliers)
        .map(|(x, o)| {
            let o = if rng.random::<f64>() < 0.001 {
                10.0 * o
            } else {
                0.0
            };
            T::from_f32(x + o)
        })
        .collect()
}

/// How O is computed: one row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The bf16 forward on the bf16 inputs.
    Bf16,
    /// FP8, one scale per tensor (the paper's baseline FP8).
    PerTensor,
    /// FP8, one scale per block of the kernel's tile rows.
    Block,
    /// FP8, per tensor, Q and K rotated by the same random Hadamard.
    Hadamard,
    /// FP8, per block and rotated (the paper's FA3 FP8).
    BlockHadamard,
}

impl Method {
    pub const ALL: [Self; 5] = [
        Self::Bf16,
        Self::PerTensor,
        Self::Block,
        Self::Hadamard,
        Self::BlockHadamard,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Bf16 => "bf16",
            Self::PerTensor => "FP8 per tensor",
            Self::Block => "FP8 block quantization",
            Self::Hadamard => "FP8 incoherent processing",
            Self::BlockHadamard => "FP8 block quantization + incoherent processing",
        }
    }

    fn blocks(self) -> bool {
        matches!(self, Self::Block | Self::BlockHadamard)
    }

    fn rotates(self) -> bool {
        matches!(self, Self::Hadamard | Self::BlockHadamard)
    }
}

/// The inputs, on the host and the GPU, and the exact output.
#[derive(Debug)]
pub struct Experiment {
    pub shape: [usize; 4],
    pub host: [Vec<bf16>; 3],
    device: [DeviceBuffer<bf16>; 3],
    /// O of the unquantized inputs in `f64`, row-major like `out`.
    pub exact: Vec<f64>,
    /// The rotation's signs.
    seed: u64,
}

/// Quantized `q`, `k`, `v` on the GPU and their scales on the host.
#[derive(Debug)]
pub struct Quantized {
    pub data: [DeviceBuffer<F8E4M3>; 3],
    pub scales: [Vec<f32>; 3],
}

impl Experiment {
    /// Fresh inputs of `shape` uploaded to `gpu`, and their exact output.
    pub fn new(gpu: &Gpu, shape: [usize; 4]) -> fa3::Result<Self> {
        let len = shape.iter().product();
        let host = [(); 3].map(|()| paper_inputs::<bf16>(len));
        let qkv = Qkv {
            q: Tensor::host(&host[0], shape),
            k: Tensor::host(&host[1], shape),
            v: Tensor::host(&host[2], shape),
        };
        let exact = fa3::reference::forward(qkv, &options(), fa3::reference::Precision::F64)?.out;
        let device = [
            gpu.upload(&host[0])?,
            gpu.upload(&host[1])?,
            gpu.upload(&host[2])?,
        ];
        let seed = fresh_rng().random();
        Ok(Self {
            shape,
            host,
            device,
            exact,
            seed,
        })
    }

    /// `sqrt(mean((out − exact)²))`.
    pub fn rmse<T: Real>(&self, out: &[T]) -> f64 {
        let sum: f64 = out
            .iter()
            .zip(&self.exact)
            .map(|(o, e)| (o.to_f64() - e).powi(2))
            .sum();
        (sum / self.exact.len() as f64).sqrt()
    }

    /// Every method's RMSE, and the bounds, each FP8 method's bytes
    /// quantized once for its GPU row and its host row.
    pub fn table(&self, device: &Device) -> fa3::Result<Table> {
        let mut rows = Method::ALL.map(|m| (m, f64::NAN));
        let mut bounds = Bounds {
            floor: f64::NAN,
            naive_per_tensor: f64::NAN,
        };
        for (method, rmse) in &mut rows {
            if *method == Method::Bf16 {
                *rmse = self.rmse(&self.run_bf16(device)?);
                continue;
            }
            let quantized = self.quantize(device, *method)?;
            *rmse = self.rmse(&self.run_fp8(device, &quantized, *method)?);
            match method {
                Method::PerTensor => {
                    bounds.naive_per_tensor =
                        self.rmse(&self.on_host(device, &quantized, *method, |qkv, scales| {
                            Ok(reference::naive_forward_fp8(qkv, scales, &options())?.out)
                        })?);
                }
                Method::BlockHadamard => {
                    bounds.floor =
                        self.rmse(&self.on_host(device, &quantized, *method, |qkv, scales| {
                            Ok(
                                reference::forward_fp8(qkv, scales, &options(), Precision::F64)?
                                    .out,
                            )
                        })?);
                }
                _ => {}
            }
        }
        Ok(Table { rows, bounds })
    }

    /// `attend` on the host, on the e4m3 bytes and scales of `quantized`
    /// (quantized for `method`).
    fn on_host<T>(
        &self,
        device: &Device,
        quantized: &Quantized,
        method: Method,
        attend: impl FnOnce(Qkv<'_, F8E4M3, 4>, Fp8Scales<'_>) -> fa3::Result<Vec<T>>,
    ) -> fa3::Result<Vec<T>> {
        let gpu = gpu_of(device)?;
        let [q, k, v] = &quantized.data;
        let host = [gpu.download(q)?, gpu.download(k)?, gpu.download(v)?];
        let qkv = Qkv {
            q: Tensor::host(&host[0], self.shape),
            k: Tensor::host(&host[1], self.shape),
            v: Tensor::host(&host[2], self.shape),
        };
        self.with_scales(quantized, method, |scales| attend(qkv, scales))
    }

    /// `q`, `k`, `v` quantized on the GPU as `method` says (an FP8 method).
    pub fn quantize(&self, device: &Device, method: Method) -> fa3::Result<Quantized> {
        let (q_rows, k_rows) = self.block_rows()?;
        // V is not rotated: (QM)(KM)ᵀ = QKᵀ needs Q and K only.
        let (q, sq) = self.quantize_one(device, 0, method, q_rows, method.rotates())?;
        let (k, sk) = self.quantize_one(device, 1, method, k_rows, method.rotates())?;
        let (v, sv) = self.quantize_one(device, 2, method, k_rows, false)?;
        Ok(Quantized {
            data: [q, k, v],
            scales: [sq, sk, sv],
        })
    }

    /// Input `i` quantized per tensor or per block of `rows`, rotated when
    /// `rotate`: the data on the GPU, the scales on the host.
    fn quantize_one(
        &self,
        device: &Device,
        i: usize,
        method: Method,
        rows: usize,
        rotate: bool,
    ) -> fa3::Result<(DeviceBuffer<F8E4M3>, Vec<f32>)> {
        let gpu = gpu_of(device)?;
        let scaling = if method.blocks() {
            Fp8Scaling::PerBlock { rows }
        } else {
            Fp8Scaling::PerTensor
        };
        let options = Fp8Quantize {
            scaling,
            hadamard_seed: rotate.then_some(self.seed),
        };
        let scales_shape = scaling.scales_shape(self.shape);
        let mut data = gpu.alloc::<F8E4M3>(self.host[i].len())?;
        let mut scales = gpu.alloc::<f32>(scales_shape.iter().product())?;
        device.quantize_fp8_into(
            Tensor::device(&self.device[i], self.shape),
            Fp8QuantizedInto {
                data: TensorMut::device(&mut data, self.shape),
                scales: TensorMut::device(&mut scales, scales_shape),
            },
            &options,
        )?;
        Ok((data, gpu.download(&scales)?))
    }

    /// O of the bf16 forward on the GPU.
    fn run_bf16(&self, device: &Device) -> fa3::Result<Vec<bf16>> {
        let [q, k, v] = &self.device;
        self.forward_out(device, |into| {
            device.forward_into(self.qkv([q, k, v]), into, &options())
        })
    }

    /// O of the FP8 forward on the GPU, on `quantized` (quantized for
    /// `method`).
    fn run_fp8(
        &self,
        device: &Device,
        quantized: &Quantized,
        method: Method,
    ) -> fa3::Result<Vec<bf16>> {
        let [q, k, v] = &quantized.data;
        self.forward_out(device, |into| {
            self.with_scales(quantized, method, |scales| {
                device.forward_fp8_into(self.qkv([q, k, v]), scales, into, &options())
            })
        })
    }

    /// The output `forward` writes into fresh, poisoned buffers.
    fn forward_out(
        &self,
        device: &Device,
        forward: impl FnOnce(ForwardInto<'_, bf16, 4, 3>) -> fa3::Result<()>,
    ) -> fa3::Result<Vec<bf16>> {
        let gpu = gpu_of(device)?;
        let [batch, seqlen, heads, _] = self.shape;
        let mut out = gpu.upload(&vec![bf16::NAN; self.exact.len()])?;
        let mut lse = gpu.alloc::<f32>(batch * heads * seqlen)?;
        forward(ForwardInto {
            out: TensorMut::device(&mut out, self.shape),
            lse: TensorMut::device(&mut lse, [batch, heads, seqlen]),
        })?;
        gpu.download(&out)
    }

    /// `f` given the scales of `quantized` in the convention of `method`.
    fn with_scales<R>(
        &self,
        quantized: &Quantized,
        method: Method,
        f: impl FnOnce(Fp8Scales<'_>) -> fa3::Result<R>,
    ) -> fa3::Result<R> {
        let [batch, _, heads, _] = self.shape;
        let [sq, sk, sv] = &quantized.scales;
        if method.blocks() {
            let (q_rows, k_rows) = self.block_rows()?;
            return f(Fp8Scales::from(&Fp8BlockDescale {
                q: sq,
                k: sk,
                v: sv,
                q_rows,
                k_rows,
            }));
        }
        // Per tensor: the one scale for every (batch, kv head).
        let broadcast = |s: &[f32]| vec![s[0]; batch * heads];
        let (q, k, v) = (broadcast(sq), broadcast(sk), broadcast(sv));
        f(Fp8Scales::from(&Fp8Descale {
            q: &q,
            k: &k,
            v: &v,
        }))
    }

    fn qkv<'a, T: fa3::Element>(&self, [q, k, v]: [&'a DeviceBuffer<T>; 3]) -> Qkv<'a, T, 4> {
        Qkv {
            q: Tensor::device(q, self.shape),
            k: Tensor::device(k, self.shape),
            v: Tensor::device(v, self.shape),
        }
    }

    fn block_rows(&self) -> fa3::Result<(usize, usize)> {
        fp8_block_rows(self.shape[3]).ok_or(fa3::Error::Unsupported {
            feature: "the FP8 forward at this head dim",
        })
    }
}

/// Non-causal, the default scale: the paper's setting.
fn options() -> AttentionOptions {
    AttentionOptions::new()
}

fn gpu_of(device: &Device) -> fa3::Result<&Gpu> {
    device.as_gpu().ok_or(fa3::Error::Unsupported {
        feature: "the FP8 accuracy experiment on a CPU device",
    })
}
