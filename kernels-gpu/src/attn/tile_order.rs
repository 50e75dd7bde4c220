//! The order in which a persistent grid visits the output tiles (query block,
//! head, batch) of the forward (FA3 `hopper/tile_scheduler.hpp`: static
//! persistent scheduling, longest-first for causal masks).
//!
//! CTA `i` computes tile `i`; CTAs start roughly in index order.
//!
//! Without a causal mask every tile costs the same: query blocks are the
//! fastest index, so the ~132 tiles in flight share one or two heads' K and
//! V in the L2 (the launch order of a plain (m, head, batch) grid).
//!
//! With a causal (or right-bounded window) mask the tiles are ordered
//! longest first (FA3 `hopper/tile_scheduler.hpp`):
//! - head-batch pairs are cut into sections whose K and V fit
//!   [`L2_BUDGET_BYTES`]; a section is finished before the next starts;
//! - within a section the last query blocks come first: under a
//!   bottom-right causal mask they see the most keys, so the grid starts
//!   with its longest tiles and ends with its shortest, and the tail is
//!   short. Head is the fastest index there: heads that share a K/V head
//!   (GQA) run side by side.

/// K/V bytes a section of head-batch pairs may keep in the L2 (H100 and
/// H200 have 50 MiB; the rest is left to the Q and O streams).
pub const L2_BUDGET_BYTES: u64 = 32 << 20;

/// The tile order of one launch, shared by host (grid size) and device.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "nvptx64"), derive(Debug))]
pub struct TileOrder {
    /// Query blocks per head.
    pub m_blocks: u32,
    pub heads: u32,
    /// heads × batch.
    pub head_batches: u32,
    /// Head-batch pairs per section (at least 1).
    pub section: u32,
    /// 1: sections, longest first; 0: query blocks fastest.
    pub longest_first: u32,
}

/// One output tile.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tile {
    pub m_block: u32,
    pub head: u32,
    pub batch: u32,
}

/// What [`TileOrder::new`] needs to know about the problem (host only).
#[cfg(not(target_arch = "nvptx64"))]
#[derive(Clone, Copy, Debug)]
pub struct Problem {
    pub seqlen_q: u32,
    pub seqlen_k: u32,
    pub heads: u32,
    pub batch: u32,
    /// heads / K-V heads.
    pub heads_per_kv: u32,
    pub head_dim: u32,
    pub elem_bytes: u32,
    /// Whether later query blocks see more keys (a causal or right-bounded
    /// window mask).
    pub causal: bool,
}

impl TileOrder {
    /// The order for `problem` with `block_m` query rows per tile; `None`
    /// when there are more than `u32::MAX` tiles (host only).
    #[cfg(not(target_arch = "nvptx64"))]
    pub fn new(problem: &Problem, block_m: u32) -> Option<Self> {
        let m_blocks = problem.seqlen_q.div_ceil(block_m);
        let head_batches = problem.heads.checked_mul(problem.batch)?;
        m_blocks.checked_mul(head_batches)?;
        // K and V of one head-batch pair, shared by the heads of a K/V head.
        let kv_bytes =
            2 * problem.seqlen_k as u64 * problem.head_dim as u64 * problem.elem_bytes as u64
                / problem.heads_per_kv.max(1) as u64;
        let section =
            (L2_BUDGET_BYTES / kv_bytes.max(1)).clamp(1, head_batches.max(1) as u64) as u32;
        Some(Self {
            m_blocks,
            heads: problem.heads,
            head_batches,
            section,
            longest_first: problem.causal as u32,
        })
    }

    /// Tiles in the launch.
    #[inline(always)]
    pub const fn tiles(&self) -> u32 {
        self.m_blocks * self.head_batches
    }

    /// The `t`-th tile (`t < tiles()`).
    #[inline(always)]
    pub fn tile(&self, t: u32) -> Tile {
        if self.longest_first == 0 {
            let head_batch = t / self.m_blocks;
            return Tile {
                m_block: t % self.m_blocks,
                head: head_batch % self.heads,
                batch: head_batch / self.heads,
            };
        }
        let per_section = self.section * self.m_blocks;
        let section = t / per_section;
        let first = section * self.section;
        // The last section may be narrower.
        let width = if self.head_batches - first < self.section {
            self.head_batches - first
        } else {
            self.section
        };
        let local = t - section * per_section;
        let head_batch = first + local % width;
        Tile {
            m_block: self.m_blocks - 1 - local / width,
            head: head_batch % self.heads,
            batch: head_batch / self.heads,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{vec, vec::Vec};

    fn problem(seqlen_q: u32, seqlen_k: u32, heads: u32, batch: u32, head_dim: u32) -> Problem {
        Problem {
            causal: true,
            seqlen_q,
            seqlen_k,
            heads,
            batch,
            heads_per_kv: 1,
            head_dim,
            elem_bytes: 2,
        }
    }

    /// Every tile is visited exactly once.
    #[test]
    fn is_a_bijection() {
        for (sq, sk, h, b, d) in [
            (1, 1, 1, 1, 64),
            (1000, 1000, 6, 3, 128),
            (16384, 16384, 16, 1, 128),
            (512, 512, 32, 32, 64),
            (4224, 4224, 7, 2, 256),
        ] {
            for causal in [false, true] {
                let order = TileOrder::new(
                    &Problem {
                        causal,
                        ..problem(sq, sk, h, b, d)
                    },
                    128,
                )
                .unwrap();
                let mut seen = vec![false; order.tiles() as usize];
                for t in 0..order.tiles() {
                    let tile = order.tile(t);
                    assert!(tile.m_block < order.m_blocks && tile.head < h && tile.batch < b);
                    let i = ((tile.batch * h + tile.head) * order.m_blocks + tile.m_block) as usize;
                    assert!(!seen[i], "{tile:?} twice");
                    seen[i] = true;
                }
            }
        }
    }

    /// Within a section the query blocks come last-first, and a section's
    /// K and V fit the L2 budget.
    #[test]
    fn sections_fit_the_l2_and_run_longest_first() {
        // 16k keys at hdim 128: 8 MiB of K and V per head, 4 heads a section.
        let order = TileOrder::new(&problem(16384, 16384, 16, 1, 128), 128).unwrap();
        assert_eq!(order.section, 4);
        let firsts: Vec<Tile> = (0..5).map(|t| order.tile(t)).collect();
        assert!(firsts[..4].iter().all(|t| t.m_block == 127));
        assert_eq!(firsts[4].m_block, 126);
        assert_eq!(order.tile(4 * 128).head, 4, "second section");
        // Short sequences: everything in one section.
        let order = TileOrder::new(&problem(512, 512, 32, 32, 64), 128).unwrap();
        assert_eq!(order.section, 256);
        assert_eq!(order.tile(0).m_block, 3);
        assert_eq!(order.tile(order.tiles() - 1).m_block, 0);
    }

    #[test]
    fn without_a_causal_mask_query_blocks_are_fastest() {
        let p = Problem {
            causal: false,
            ..problem(1000, 1000, 6, 3, 128)
        };
        let order = TileOrder::new(&p, 128).unwrap();
        let tiles: Vec<Tile> = (0..9).map(|t| order.tile(t)).collect();
        assert_eq!(
            tiles[0],
            Tile {
                m_block: 0,
                head: 0,
                batch: 0
            }
        );
        assert_eq!(
            tiles[7],
            Tile {
                m_block: 7,
                head: 0,
                batch: 0
            }
        );
        assert_eq!(
            tiles[8],
            Tile {
                m_block: 0,
                head: 1,
                batch: 0
            }
        );
    }

    #[test]
    fn too_many_tiles_is_refused() {
        assert!(TileOrder::new(&problem(u32::MAX, 1, 65536, 65536, 64), 128).is_none());
    }
}
