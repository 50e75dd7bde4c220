//! The forward kernel's scheduling techniques, one at a time, to measure
//! what each is worth (FA3's ablation: pingpong and the intra-warpgroup
//! overlap of softmax with the GEMMs).

pub use crate::attention::gpu_forward::Schedule;
use crate::error::Result;
use crate::{AttentionElement, AttentionOptions, Device, ForwardInto, Qkv};

/// [`Device::forward_into`] with the kernel build of `schedule`. Every
/// schedule computes the same function; the builds other than
/// [`Schedule::Full`] exist for bf16 with head_dim 128 (other problems get
/// `Error::Unsupported`). The CPU backend ignores the schedule.
pub fn forward_with_schedule<T: AttentionElement>(
    device: &Device,
    schedule: Schedule,
    qkv: Qkv<'_, T, 4>,
    into: ForwardInto<'_, T, 4, 3>,
    options: &AttentionOptions,
) -> Result<()> {
    device.forward_into_scheduled(qkv, into, options, schedule)
}
