//! The attention API: tensors, options, validation, the [`Device`]
//! entry points, and the CPU backend behind [`Device::cpu`].
//!
//! Conventions follow FA3's `flash_attn_interface`: `q` `(batch, seqlen_q,
//! heads_q, head_dim)`, `k`/`v` `(batch, seqlen_k, heads_kv, head_dim /
//! head_dim_v)`, `out` like `q` with `head_dim_v`, `lse` `(batch, heads_q,
//! seqlen_q)` in `f32`; packed variable-length tensors with
//! `cu_seqlens_q/k`; GQA/MQA whenever `heads_q % heads_kv == 0`.

mod alias;
mod args;
mod backward;
mod cpu;
mod device;
mod element;
mod forward;
mod fp8;
mod gpu_backward;
pub(crate) mod gpu_forward;
mod gpu_fp8;
mod layout;
mod options;
mod owned;
mod residency;
mod shape;
mod strided;
mod tensor;
mod validate;
mod varlen;

pub use args::{
    BackwardInputs, ForwardInto, Fp8BlockDescale, Fp8Descale, Fp8Quantize, Fp8QuantizedInto,
    Fp8Scales, Fp8Scaling, GradientsInto, Qkv, Varlen,
};
pub use device::{Device, Precision};
pub use element::{AttentionElement, Real};
pub use fp8::{E4M3_MAX, fp8_block_rows, hadamard_rotate, hadamard_sign};
pub use options::AttentionOptions;
pub use owned::{ForwardOutput, Gradients, OwnedTensor, Storage};
pub use tensor::{Tensor, TensorMut};

pub(crate) use cpu::{
    LseLayout, Operand, forward_rows, lse_to_api, packed_qkv, read, reserve, row_factors,
};
pub(crate) use layout::Checked;
pub(crate) use options::ScoreParams;
pub(crate) use residency::Target;
pub(crate) use shape::{FixedDims, PackedDims};
pub(crate) use validate::{
    CheckedForward, descale as validate_descale, forward as validate_forward,
    reference_backward as validate_reference_backward,
};
pub(crate) use varlen::seqlens as varlen_seqlens;
