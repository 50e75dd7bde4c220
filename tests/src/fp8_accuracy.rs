//! The FA3 paper's FP8 accuracy experiment (its Table 3): inputs N(0, 1)
//! plus, with probability 0.001, an N(0, 10²) outlier; the RMSE of O
//! against the `f64` attention of the unquantized inputs, for the bf16
//! forward and the FP8 forward after each quantization (per tensor, per
//! block, incoherent processing, both). The GPU test asserts the issue's
//! bars on it; `fa3-bench --fp8-accuracy` adds the official FA3's FP8
//! forward on the per-tensor inputs and reports the table.

use crate::{fresh_rng, normal};
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
pub const BAR: f64 = 9.1e-3;
pub const BELOW_PER_TENSOR: f64 = 2.5;
pub const GOAL: f64 = 7e-3;

/// The RMSE of every [`Method`], in [`Method::ALL`]'s order.
#[derive(Debug, Clone, Copy)]
pub struct Table(pub [(Method, f64); 5]);

impl Table {
    pub fn of(&self, method: Method) -> f64 {
        self.0
            .iter()
            .find(|(m, _)| *m == method)
            .map_or(f64::NAN, |r| r.1)
    }

    /// `(block + incoherent, per tensor)`.
    pub fn bar_pair(&self) -> (f64, f64) {
        (self.of(Method::BlockHadamard), self.of(Method::PerTensor))
    }

    /// Whether the bar is met.
    pub fn meets_bar(&self) -> bool {
        let (both, per_tensor) = self.bar_pair();
        both <= BAR && per_tensor >= BELOW_PER_TENSOR * both
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

    /// Every method's RMSE.
    pub fn table(&self, device: &Device) -> fa3::Result<Table> {
        let mut rows = Method::ALL.map(|m| (m, f64::NAN));
        for row in &mut rows {
            row.1 = self.rmse(&self.run(device, row.0)?);
        }
        Ok(Table(rows))
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

    /// O of `method` on the GPU.
    pub fn run(&self, device: &Device, method: Method) -> fa3::Result<Vec<bf16>> {
        let gpu = gpu_of(device)?;
        let [batch, seqlen, heads, _] = self.shape;
        let mut out = gpu.upload(&vec![bf16::NAN; self.exact.len()])?;
        let mut lse = gpu.alloc::<f32>(batch * heads * seqlen)?;
        let into = ForwardInto {
            out: TensorMut::device(&mut out, self.shape),
            lse: TensorMut::device(&mut lse, [batch, heads, seqlen]),
        };
        if method == Method::Bf16 {
            let [q, k, v] = &self.device;
            device.forward_into(self.qkv([q, k, v]), into, &options())?;
            return gpu.download(&out);
        }
        let quantized = self.quantize(device, method)?;
        let [q, k, v] = &quantized.data;
        let [sq, sk, sv] = &quantized.scales;
        let (q_rows, k_rows) = self.block_rows()?;
        // Per tensor: the one scale for every (batch, kv head).
        let broadcast = |s: &[f32]| vec![s[0]; batch * heads];
        let (bq, bk, bv) = (broadcast(sq), broadcast(sk), broadcast(sv));
        let per_tensor = Fp8Descale {
            q: &bq,
            k: &bk,
            v: &bv,
        };
        let per_block = Fp8BlockDescale {
            q: sq,
            k: sk,
            v: sv,
            q_rows,
            k_rows,
        };
        let scales = if method.blocks() {
            Fp8Scales::from(&per_block)
        } else {
            Fp8Scales::from(&per_tensor)
        };
        device.forward_fp8_into(self.qkv([q, k, v]), scales, into, &options())?;
        gpu.download(&out)
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
