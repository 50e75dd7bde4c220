//! Tile sizes of the forward kernel, per head dim, in one table.
//!
//! Every kernel has 128 query rows per CTA (two consumer warpgroups of 64
//! rows) and one producer warpgroup. A consumer thread holds S (BLOCK_N / 2
//! registers), O (head_dim / 2) and P as A fragments (BLOCK_N / 4), which
//! must fit the `CONSUMER_REGISTERS` `setmaxnreg` gives it; shared memory
//! holds Q and STAGES stages of K and V within 227 KiB.

/// Query rows per CTA.
pub const BLOCK_M: u32 = 128;
/// Query rows per consumer warpgroup (one wgmma M).
pub const ROWS_PER_CONSUMER: u32 = 64;

/// Registers per producer thread after `setmaxnreg.dec`. FA3 gives 24; our
/// producer walks the persistent tile loop (tile decode, block range, TMA
/// coordinates) and spilled 12 bytes at 32 (`cargo xtask inspect`).
pub const PRODUCER_REGISTERS: u32 = 40;
/// Registers per consumer thread after `setmaxnreg.inc`: what the 168 x
/// 384 registers of the CTA leave once the producer has its share.
pub const CONSUMER_REGISTERS: u32 = 232;
const _: () = assert!(PRODUCER_REGISTERS * 128 + CONSUMER_REGISTERS * 256 <= 168 * 384);

/// The tiling of one head dim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    pub head_dim: u32,
    /// Keys per block (the N of S = Q·Kᵀ, the K of O = P·V).
    pub block_n: u32,
    /// K/V stages in the ring.
    pub stages: u32,
}

/// Chosen by ptxas's register report of the overlapped schedule, where S of
/// the next block, P of the current one and O are live at once (cargo xtask
/// inspect), and by the benchmark (bench/BENCHMARKS.md, 2026-11-21):
/// - hdim 64: blocks of 128 keys (S 64 + P 32 + O 32 registers), R163; 4
///   stages (Q 16 KiB + 4 x 32 KiB). 192 keys fit (R232) but ran slower at
///   every length (8k: 417 vs 457 TFLOPs/s; 512 keys: 3 blocks, one short).
/// - hdim 128: 128 keys (S 64 + P 32 + O 64) peak at R228; 3 stages (32 +
///   3 x 64 KiB = 224 KiB). 112 keys ran 616 TFLOPs/s at 8k, 128 keys 628
///   (v3); 144, 160 and 176 keys with 2 stages spill 8-24 bytes under the
///   232-register budget.
/// - hdim 256: O alone is 128 registers; 80 keys (FA3's 128 x 80: S 40 +
///   P 20) peak at R221; 2 stages (64 + 2 x 80 KiB = 224 KiB). With 48 keys
///   S = Q·Kᵀ reads Q again for every 48 keys: by our estimate about 147
///   bytes of shared memory per clock at full wgmma rate, above the 128 an
///   SM has (80 keys: about 115). Measured
///   on the persistent kernel (H200, 8k, non-causal / causal): 48 keys x 3
///   stages 624 / 611, 64 x 2 653-694 / 673, 80 x 2 755 / 725 (64 keys win
///   only at 512: 508 vs 497). Before the persistent grid (v3), 80 x 2 ran
///   at 454 vs 613 for 48 x 3.
pub const TILINGS: [Tiling; 3] = [HDIM64, HDIM128, HDIM256];

/// The rows of [`TILINGS`] and [`LONG_TILINGS`], by name, for the kernel
/// table (`abi::table`).
pub const HDIM64: Tiling = Tiling {
    head_dim: 64,
    block_n: 128,
    stages: 4,
};
pub const HDIM128: Tiling = Tiling {
    head_dim: 128,
    block_n: 128,
    stages: 3,
};
pub const HDIM256: Tiling = Tiling {
    head_dim: 256,
    block_n: 80,
    stages: 2,
};
pub const HDIM64_LONG: Tiling = Tiling {
    head_dim: 64,
    block_n: 192,
    stages: 3,
};

/// Keys from which a head dim with a long-sequence tiling uses it.
pub const LONG_KEYS: u32 = 4096;

/// Tilings for `seqlen_k >= LONG_KEYS`, where they beat `TILINGS`:
/// - hdim 64: 192 keys x 3 stages (S 96 + P 48 + O 32 registers, R229;
///   16 + 3 x 48 KiB). A/B against 128 x 4 (fa3 only, H200): 8k 461-465 vs
///   443 non-causal, 437-439 vs 424-428 causal; but 512 266 vs 331 and 2k
///   405 vs 419, where a tile has 3-11 blocks and the longer block costs
///   more at the tail than it saves.
pub const LONG_TILINGS: [Tiling; 1] = [HDIM64_LONG];

/// The tiling for `head_dim` and `seqlen_k` keys, if a kernel exists.
#[inline(always)]
pub const fn tiling(head_dim: u32, seqlen_k: u32) -> Option<Tiling> {
    if seqlen_k >= LONG_KEYS
        && let Some(t) = find(&LONG_TILINGS, head_dim)
    {
        return Some(t);
    }
    find(&TILINGS, head_dim)
}

/// True when `t` is one of the tables' tilings (the kernels check theirs).
#[inline(always)]
pub const fn is_tiling(t: Tiling) -> bool {
    matches!(find(&TILINGS, t.head_dim), Some(u) if same(t, u))
        || matches!(find(&LONG_TILINGS, t.head_dim), Some(u) if same(t, u))
}

#[inline(always)]
const fn same(a: Tiling, b: Tiling) -> bool {
    a.head_dim == b.head_dim && a.block_n == b.block_n && a.stages == b.stages
}

#[inline(always)]
const fn find(table: &[Tiling], head_dim: u32) -> Option<Tiling> {
    let mut i = 0;
    while i < table.len() {
        if table[i].head_dim == head_dim {
            return Some(table[i]);
        }
        i += 1;
    }
    None
}

/// Bytes of an mbarrier ring of `stages` stages: a full and an empty
/// 8-byte mbarrier per stage (`arch::pipeline::TmaPipeline::BYTES`, checked
/// equal where the kernel places its rings).
pub const fn ring_bytes(stages: u32) -> u32 {
    2 * stages * 8
}

/// Slots of the tile feed that passes tiles from the producer to the
/// consumers (`sched::TileFeed`): the next tile can be published while the
/// current one is read.
pub const FEED_SLOTS: u32 = 2;

/// Byte offsets in a forward CTA's shared memory, the one place they are
/// computed: the tiles (Q at 0; stage `s` of K at `k + s * stage_bytes`, of
/// V at `v + s * stage_bytes`), then the rings' mbarriers, then the tile
/// feed's 4-byte slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmemLayout {
    pub k: u32,
    pub v: u32,
    /// Bytes between two stages of K (and of V).
    pub stage_bytes: u32,
    /// Q's one-stage ring.
    pub q_ring: u32,
    /// The tile feed's ring of [`FEED_SLOTS`] stages.
    pub feed_ring: u32,
    pub k_ring: u32,
    pub v_ring: u32,
    pub tile_slots: u32,
    /// Total dynamic shared memory.
    pub bytes: u32,
}

/// The shared-memory layout of a forward CTA for `elem_bytes`-byte elements.
pub const fn smem_layout(t: Tiling, elem_bytes: u32) -> SmemLayout {
    let q = BLOCK_M * t.head_dim * elem_bytes;
    let stage_bytes = t.block_n * t.head_dim * elem_bytes;
    let k = q;
    let v = k + t.stages * stage_bytes;
    let q_ring = v + t.stages * stage_bytes;
    let feed_ring = q_ring + ring_bytes(1);
    let k_ring = feed_ring + ring_bytes(FEED_SLOTS);
    let v_ring = k_ring + ring_bytes(t.stages);
    let tile_slots = v_ring + ring_bytes(t.stages);
    SmemLayout {
        k,
        v,
        stage_bytes,
        q_ring,
        feed_ring,
        k_ring,
        v_ring,
        tile_slots,
        bytes: tile_slots + 4 * FEED_SLOTS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tiling_fits_shared_memory_and_registers() {
        for t in TILINGS.into_iter().chain(LONG_TILINGS) {
            let bytes = smem_layout(t, 2).bytes;
            assert!(bytes <= 227 * 1024, "hdim {}: {bytes} bytes", t.head_dim);
            // S + O + P registers under the consumers' budget, with room
            // to spare.
            assert!(
                t.block_n / 2 + t.head_dim / 2 + t.block_n / 4 <= CONSUMER_REGISTERS - 32,
                "hdim {}",
                t.head_dim
            );
            assert_eq!(t.block_n % 16, 0, "P·V steps of 16 keys");
        }
        assert_eq!(tiling(96, 0), None);
    }

    #[test]
    fn long_tilings_take_over_from_long_keys() {
        assert_eq!(tiling(64, LONG_KEYS - 1), Some(TILINGS[0]));
        assert_eq!(tiling(64, LONG_KEYS), Some(LONG_TILINGS[0]));
        // No long tiling for hdim 128: the short one at any length.
        assert_eq!(tiling(128, u32::MAX), Some(TILINGS[1]));
        assert!(TILINGS.into_iter().chain(LONG_TILINGS).all(is_tiling));
        let odd = Tiling {
            block_n: 96,
            ..TILINGS[0]
        };
        assert!(!is_tiling(odd));
    }
}
