//! The persistent scheduler's part of a kernel's parameters (FA3 passes
//! one scheduler-params struct to every kernel): the tile order, the claim
//! counter and where this launch's claims start.

use super::ptr::GlobalPtr;
use crate::attn::tile_order::TileOrder;

#[repr(C)]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct SchedParams {
    /// The tile claim counter: a claim that reads `c` takes tile
    /// `grid + c - tile_base` (wrapping). Each launch makes exactly
    /// `order.tiles()` claims, so the next launch's base is this one's plus
    /// that; the counter is never reset.
    pub tile_counter: GlobalPtr<u32>,
    /// Which tile each CTA computes: the launch order of the tiles.
    pub order: TileOrder,
    /// The counter's value when this launch began.
    pub tile_base: u32,
}
