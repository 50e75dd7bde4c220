//! Tile sizes of the attention kernels, per head dim, in one table: the
//! forward's rows first, the backward's below ([`BwdTiling`]).
//!
//! Every forward kernel has 128 query rows per CTA (two consumer warpgroups of 64
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
/// The split of the FP8 forward, whose producer warpgroup also transposes
/// V (`fwd::transposer`): two 4 x 4-byte blocks in flight per lane need
/// more than 40 registers (8-16 bytes of stack at hdim 128 and 256), and
/// its consumers peak at R217 (hdim 256, `cargo xtask inspect`).
pub const FP8_PRODUCER_REGISTERS: u32 = 56;
pub const FP8_CONSUMER_REGISTERS: u32 = 224;
const _: () = assert!(FP8_PRODUCER_REGISTERS * 128 + FP8_CONSUMER_REGISTERS * 256 <= 168 * 384);

/// The tiling of one head dim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    pub head_dim: u32,
    /// Keys per block (the N of S = Q·Kᵀ, the K of O = P·V).
    pub block_n: u32,
    /// K/V stages in the ring.
    pub stages: u32,
    /// Whether the overlapped loop runs in three parts (blocks the band's
    /// right edge cuts, those it leaves whole, those its left edge cuts:
    /// FA3's structure), so the unmasked part carries no mask code;
    /// otherwise one loop asks per block whether to mask.
    pub peel_masked: bool,
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
///
/// `peel_masked` (session 8, H200, A/B of the peeled loop against the one
/// loop): +1-4% at hdim 128 and 256, -1-7% at hdim 64 (where the three
/// loops' code, 2936 -> 4304 instructions, costs more than the mask test it
/// saves); session 12 (H200, A/B, bf16 TFLOPs/s nc 512 / 2k / 8k, then
/// causal): hdim 128 479/633/677, 272/522/649 -> 486/660/713, 277/533/673;
/// hdim 256 501/701/775, 318/592/731 -> 511/727/805, 315/607/760. The FP8
/// rows are measured beside theirs.
pub const TILINGS: [Tiling; 3] = [HDIM64, HDIM128, HDIM256];

/// The rows of [`TILINGS`] and [`LONG_TILINGS`], by name, for the kernel
/// table (`abi::table`).
pub const HDIM64: Tiling = Tiling {
    head_dim: 64,
    block_n: 128,
    stages: 4,
    peel_masked: false,
};
pub const HDIM128: Tiling = Tiling {
    head_dim: 128,
    block_n: 128,
    stages: 3,
    peel_masked: true,
};
pub const HDIM256: Tiling = Tiling {
    head_dim: 256,
    block_n: 80,
    stages: 2,
    peel_masked: true,
};
pub const HDIM64_LONG: Tiling = Tiling {
    head_dim: 64,
    block_n: 192,
    stages: 3,
    peel_masked: false,
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

/// Tilings of the FP8 (e4m3) forward. Blocks of 128 keys: V is transposed
/// in shared memory by 128 x 128-byte tiles (`layout::fp8_transpose`), and
/// a block-quantized K or V has one scale per block of the kernel's keys.
/// - hdim 128: S 64 + P 16 + O 64 registers; 3 stages of K, V as loaded
///   and Vᵀ (16 + 3 x 48 KiB).
/// - hdim 64: 64-byte rows (the 64-byte swizzle); S 64 + P 16 + O 32
///   registers; 4 stages (8 + 4 x 24 KiB), as the 16-bit hdim 64.
/// - hdim 256: S 64 + P 16 + O 128 registers; 2 stages (32 + 2 x 96 KiB
///   = 224 KiB). FA3's FP8 tile is the same 128 x 128.
///
/// `peel_masked` (session 12, H200, A/B over the PRMT transpose, FP8
/// TFLOPs/s nc 2k / 8k, causal 2k / 8k): hdim 128 684/727/563/708 ->
/// 711/777/575/746 (+2-7%), on; hdim 64 444/478/357/460 -> 437/470/351/451
/// (-1.5%), off. hdim 256 runs the schedule without the overlap
/// (`abi::table`), which has one loop either way: off.
pub const FP8_TILINGS: [Tiling; 3] = [FP8_HDIM64, FP8_HDIM128, FP8_HDIM256];

/// The rows of [`FP8_TILINGS`], by name, for the kernel table.
pub const FP8_HDIM64: Tiling = Tiling {
    head_dim: 64,
    block_n: 128,
    stages: 4,
    peel_masked: false,
};
pub const FP8_HDIM128: Tiling = Tiling {
    head_dim: 128,
    block_n: 128,
    stages: 3,
    peel_masked: true,
};
pub const FP8_HDIM256: Tiling = Tiling {
    head_dim: 256,
    block_n: 128,
    stages: 2,
    peel_masked: false,
};

/// The FP8 forward's tiling for `head_dim`, if a kernel exists.
#[inline(always)]
pub const fn fp8_tiling(head_dim: u32) -> Option<Tiling> {
    find(&FP8_TILINGS, head_dim)
}

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

/// The row a forward kernel of `elem_bytes`-byte inputs with these tiles
/// was built from, if any: the kernels find theirs here (a compile-time
/// error when there is none) and read its choices.
#[inline(always)]
pub const fn kernel_tiling(
    elem_bytes: u32,
    head_dim: u32,
    block_n: u32,
    stages: u32,
) -> Option<Tiling> {
    let rows = if transposes_v(elem_bytes) {
        [find(&FP8_TILINGS, head_dim), None]
    } else {
        [find(&TILINGS, head_dim), find(&LONG_TILINGS, head_dim)]
    };
    let mut i = 0;
    while i < rows.len() {
        if let Some(t) = rows[i]
            && t.block_n == block_n
            && t.stages == stages
        {
            return Some(t);
        }
        i += 1;
    }
    None
}

/// The row of `$table` (a slice of rows with a `head_dim`) for `$head_dim`,
/// if any: the lookup of both directions' tables (a macro, as const fns
/// cannot be generic over the row type's fields).
macro_rules! row_for_head_dim {
    ($table:expr, $head_dim:expr) => {{
        let (table, head_dim) = ($table, $head_dim);
        let mut i = 0;
        let mut found = None;
        while i < table.len() {
            if table[i].head_dim == head_dim {
                found = Some(table[i]);
                break;
            }
            i += 1;
        }
        found
    }};
}

#[inline(always)]
const fn find(table: &[Tiling], head_dim: u32) -> Option<Tiling> {
    row_for_head_dim!(table, head_dim)
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
/// V at `v + s * stage_bytes`, of Vᵀ at `vt + s * stage_bytes`), then the
/// rings' mbarriers, then the tile feed's 4-byte slots. Vᵀ and its ring
/// exist for 1-byte elements only (FP8 wgmma reads V K-major, so the
/// producer warpgroup transposes each stage); otherwise they take no bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmemLayout {
    pub k: u32,
    pub v: u32,
    pub vt: u32,
    /// Bytes between two stages of K (and of V, Vᵀ).
    pub stage_bytes: u32,
    /// Q's one-stage ring.
    pub q_ring: u32,
    /// The tile feed's ring of [`FEED_SLOTS`] stages.
    pub feed_ring: u32,
    pub k_ring: u32,
    pub v_ring: u32,
    pub vt_ring: u32,
    pub tile_slots: u32,
    /// Total dynamic shared memory.
    pub bytes: u32,
}

/// Whether a forward of `elem_bytes`-byte elements transposes V in shared
/// memory (e4m3: FP8 wgmma has no transposed B).
pub const fn transposes_v(elem_bytes: u32) -> bool {
    elem_bytes == 1
}

/// The shared-memory layout of a forward CTA for `elem_bytes`-byte elements.
pub const fn smem_layout(t: Tiling, elem_bytes: u32) -> SmemLayout {
    let vt_stages = if transposes_v(elem_bytes) {
        t.stages
    } else {
        0
    };
    let q = BLOCK_M * t.head_dim * elem_bytes;
    let stage_bytes = t.block_n * t.head_dim * elem_bytes;
    let k = q;
    let v = k + t.stages * stage_bytes;
    let vt = v + t.stages * stage_bytes;
    let q_ring = vt + vt_stages * stage_bytes;
    let feed_ring = q_ring + ring_bytes(1);
    let k_ring = feed_ring + ring_bytes(FEED_SLOTS);
    let v_ring = k_ring + ring_bytes(t.stages);
    let vt_ring = v_ring + ring_bytes(t.stages);
    let tile_slots = vt_ring + ring_bytes(vt_stages);
    SmemLayout {
        k,
        v,
        vt,
        stage_bytes,
        q_ring,
        feed_ring,
        k_ring,
        v_ring,
        vt_ring,
        tile_slots,
        bytes: tile_slots + 4 * FEED_SLOTS,
    }
}

/// How the two consumer warpgroups of a backward CTA share its tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BwdConsumers {
    /// Each owns 64 of the tile's 128 keys (its Sᵀ, dPᵀ, dK and dV) and
    /// one 64 x 64 block of each query block's dQ partial. dPᵀ is issued
    /// with Sᵀ, into a second f32 block, so its GEMM runs under the
    /// exponentials, and dSᵀ comes from the f32 Pᵀ (FA3's order and
    /// arithmetic; PERF.md, backward v5 and session 7).
    SplitKeys,
    /// Both work on the tile's 64 keys: consumer 0 computes Sᵀ, Pᵀ (which
    /// it also stores for consumer 1) and dV, consumer 1 dPᵀ, dSᵀ and dK;
    /// each computes half of dQ's columns. For head dims whose dK and dV
    /// of 64 keys do not fit one consumer (256 registers at hdim 256).
    SplitRoles,
}

/// How a consumer adds its dQ partial into the f32 accumulator in global
/// memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DqAdd {
    /// Staged in shared memory in fragment order, then one bulk
    /// reduce-add (`cp.reduce.async.bulk .add.f32`) per query block.
    Staged,
    /// From registers, one `red.global.add.v4.f32` per 16 bytes in the
    /// same fragment order: no staging memory, no barriers.
    FromRegisters,
}

/// The tiling of one head dim in the backward: a CTA owns
/// [`BwdTiling::block_n`] keys (shared by the two consumer warpgroups as
/// `consumers` says, with dK and dV in f32 registers) and visits the query
/// blocks of `block_m` rows that see them, `stages` of Q/dO in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BwdTiling {
    pub head_dim: u32,
    pub block_m: u32,
    pub stages: u32,
    pub consumers: BwdConsumers,
    pub dq_add: DqAdd,
}

/// Registers per backward producer thread after `setmaxnreg.dec`: FA3's
/// 24. It fits because the producer reads the mask, the tile count and the
/// grid size where it uses them (`arch::regs::opaque`): held through its
/// loops instead, they spilled 40-48 bytes.
pub const BWD_PRODUCER_REGISTERS: u32 = 24;
/// Registers per backward consumer thread: the rest of the 168 x 384
/// (FA3's 240).
pub const BWD_CONSUMER_REGISTERS: u32 = 240;
const _: () = assert!(BWD_PRODUCER_REGISTERS * 128 + BWD_CONSUMER_REGISTERS * 256 <= 168 * 384);

/// Keys per backward consumer warpgroup (one wgmma M of Sᵀ = K·Qᵀ).
pub const BWD_KEYS_PER_CONSUMER: u32 = 64;

/// Columns of dQ per fragment-order block (`layout::fragment`).
pub const DQ_BLOCK_COLS: u32 = 64;

/// The backward rows, chosen from the register budget (a consumer thread
/// holds dK and dV of its 64 keys, head_dim registers, or with split roles
/// one of them, plus one f32 block of 64 x block_m for Sᵀ and then dPᵀ,
/// block_m / 2, plus the 16-bit Pᵀ and dSᵀ fragments, block_m / 4 each;
/// its dQ part comes after them: at hdim 128 ptxas fits it all in R229 of
/// 232, where separate Sᵀ and dPᵀ blocks spilled 164 bytes) and shared
/// memory (K, V, `stages` x (Q, dO), two dS tiles, the dQ staging blocks):
/// - 128 keys with split keys: dQ's partial is summed over both
///   consumers' keys before it is reduced into global memory, each
///   consumer reducing one 64 x 64 block of it; L2 then adds 4 / (10 ·
///   block_n) bytes per FLOP, about 2 TB/s at 600 TFLOPs/s (per-consumer
///   partials over 64 keys each doubled that: hdim 64 ran at 0.66x FA3
///   with them, and decoupling the consumers changed nothing);
/// - hdim 128: 64 query rows per step (FA3's choice for causal; its 80
///   for non-causal does not divide into our 64-column dS tiles), the
///   consumers split dQ's columns; dQ staged (adding it from registers
///   measured 2-3% slower; the writer warp issuing the bulk adds instead
///   of the consumers +4-5%); dPᵀ issued after the exponentials (with Sᵀ
///   measured 2-6% slower);
/// - hdim 64: 128 query rows (FA3's choice), the consumers split dQ's
///   rows; dQ staged for the writer warp (+1-1.5% at 8k, -1.5% causal 2k
///   over 16-byte atomics from registers, which had beaten staging by
///   4-5% while the consumers issued the bulk add themselves); dPᵀ
///   issued with Sᵀ (+6-7% over issuing it after the exponentials);
/// - hdim 256: 64 x 64 (FA3 uses 64 x 80 with S = Q·Kᵀ untransposed, one dO
///   and two Q stages; 80 keys do not fit our transposed M = 64 per
///   consumer) with split roles, each consumer holding
///   one 64 x 256 gradient (128 registers) and computing 64 x 128 of dQ;
///   K, V, Q, dO are 32 KiB each, so two Q/dO stages leave no room for
///   dQ staging: dQ from registers (two stages instead of one staged:
///   294 -> 436 TFLOPs/s at 8k).
pub const BWD_TILINGS: [BwdTiling; 3] = [BWD_HDIM64, BWD_HDIM128, BWD_HDIM256];

/// The rows of [`BWD_TILINGS`] by name, for the kernel table.
pub const BWD_HDIM64: BwdTiling = BwdTiling {
    head_dim: 64,
    block_m: 128,
    stages: 2,
    consumers: BwdConsumers::SplitKeys,
    dq_add: DqAdd::Staged,
};
pub const BWD_HDIM128: BwdTiling = BwdTiling {
    head_dim: 128,
    block_m: 64,
    stages: 2,
    consumers: BwdConsumers::SplitKeys,
    dq_add: DqAdd::Staged,
};
pub const BWD_HDIM256: BwdTiling = BwdTiling {
    head_dim: 256,
    block_m: 64,
    stages: 2,
    consumers: BwdConsumers::SplitRoles,
    dq_add: DqAdd::FromRegisters,
};

/// The backward tiling for `head_dim`, if a kernel exists.
#[inline(always)]
pub const fn bwd_tiling(head_dim: u32) -> Option<BwdTiling> {
    row_for_head_dim!(&BWD_TILINGS, head_dim)
}

/// Fragment-order dQ blocks of a query block of `block_m` rows at
/// `head_dim` (what the preprocess clears per query block).
pub const fn dq_blocks(head_dim: u32, block_m: u32) -> u32 {
    (head_dim / DQ_BLOCK_COLS) * (block_m / DQ_BLOCK_COLS)
}

impl BwdTiling {
    /// Keys per CTA: 64 per consumer with split keys, the consumers' shared
    /// 64 with split roles.
    pub const fn block_n(self) -> u32 {
        match self.consumers {
            BwdConsumers::SplitKeys => 2 * BWD_KEYS_PER_CONSUMER,
            BwdConsumers::SplitRoles => BWD_KEYS_PER_CONSUMER,
        }
    }

    /// 64-column blocks of dQ (`head_dim / 64`).
    pub const fn dq_parts(self) -> u32 {
        self.head_dim / DQ_BLOCK_COLS
    }

    /// 64-row blocks of dQ per query block (`block_m / 64`).
    pub const fn dq_row_blocks(self) -> u32 {
        self.block_m / DQ_BLOCK_COLS
    }

    /// Fragment-order dQ blocks per query block.
    pub const fn dq_blocks(self) -> u32 {
        dq_blocks(self.head_dim, self.block_m)
    }

    /// dQ blocks each consumer computes and reduces per query block: the
    /// consecutive blocks from `dq_blocks_per_consumer() · c` (rows first,
    /// [`BwdTiling::dq_block`]); they are consecutive in the accumulator,
    /// so one bulk reduce-add sends them all.
    pub const fn dq_blocks_per_consumer(self) -> u32 {
        self.dq_blocks() / 2
    }

    /// Block `b` of a query block's dQ as `(64-row block, 64-column
    /// block)`: block `b` of the query block in the accumulator
    /// (`abi::bwd`), which is also block `(row block, column block)` of
    /// the (64-row blocks, column blocks) grid the conversion walks.
    pub const fn dq_block(self, b: u32) -> (u32, u32) {
        (b / self.dq_parts(), b % self.dq_parts())
    }

    /// The index, among the dQ accumulator's fragment-order blocks, of
    /// block `b` ([`BwdTiling::dq_block`]) of query block `m` of head row
    /// `head_row` (batch · heads + head), with `m_blocks` query blocks per
    /// head: how the main kernel addresses its reductions and the
    /// preprocess what it clears.
    pub const fn dq_accum_block(self, head_row: u32, m_blocks: u32, m: u32, b: u32) -> u32 {
        (head_row * m_blocks + m) * self.dq_blocks() + b
    }

    /// Whether the consumers stage dQ in shared memory ([`DqAdd`]).
    pub const fn dq_staged(self) -> bool {
        matches!(self.dq_add, DqAdd::Staged)
    }

    /// Bytes of one consumer's dQ staging (0 when not staged).
    pub const fn dq_stage_bytes(self) -> u32 {
        if self.dq_staged() {
            self.dq_blocks_per_consumer() * crate::layout::fragment::FRAG_BLOCK_BYTES
        } else {
            0
        }
    }
}

/// The index of fragment-order block `(row_block, part)` of source head
/// row `head_row` in a workspace of `row_blocks` 64-row blocks of `parts`
/// 64-column blocks per head: how the conversion kernel reads dQ (and
/// GQA's dK/dV). For dQ it names the same block as
/// [`BwdTiling::dq_accum_block`]
/// (tested).
pub const fn fragment_block(
    head_row: u32,
    row_blocks: u32,
    parts: u32,
    row_block: u32,
    part: u32,
) -> u32 {
    (head_row * row_blocks + row_block) * parts + part
}

/// Byte offsets in a backward CTA's shared memory: K at 0 and V (the
/// CTA's key block), stage `s` of Q at `q + s * tile_stage_bytes` and of dO
/// at `dout + s * tile_stage_bytes`, the two dS tiles, the consumers' dQ
/// staging blocks, stage `s` of the statistics (LSE·log2e then
/// rowsum(dO∘O), `block_m` f32 each, then one u32 the producer writes) at
/// `stats + s * stats_stage_bytes`,
/// then the rings' mbarriers and the tile feed's slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BwdSmemLayout {
    pub v: u32,
    pub q: u32,
    pub dout: u32,
    pub tile_stage_bytes: u32,
    /// dS tile `i` at `ds + i * ds_bytes`: block_n keys x block_m queries.
    pub ds: u32,
    pub ds_bytes: u32,
    /// Consumer `c`'s dQ staging at `dq + c * dq_stage_bytes`
    /// ([`BwdTiling::dq_stage_bytes`]).
    pub dq: u32,
    pub stats: u32,
    pub stats_stage_bytes: u32,
    /// The producer's word in a statistics stage (after the two rows).
    pub keys_end: u32,
    /// K and V's one-stage ring.
    pub kv_ring: u32,
    /// Q's ring (with the LSE row and the producer's word), and dO's (with
    /// rowsum(dO∘O)): one stage index for both, a barrier each, so S = K·Qᵀ
    /// starts before dO has landed.
    pub q_ring: u32,
    pub dout_ring: u32,
    pub feed_ring: u32,
    pub tile_slots: u32,
    pub bytes: u32,
}

/// The shared-memory layout of a backward CTA for `elem_bytes`-byte
/// elements.
pub const fn bwd_smem_layout(t: BwdTiling, elem_bytes: u32) -> BwdSmemLayout {
    let kv_bytes = t.block_n() * t.head_dim * elem_bytes;
    let tile_stage_bytes = t.block_m * t.head_dim * elem_bytes;
    let v = kv_bytes;
    let q = v + kv_bytes;
    let dout = q + t.stages * tile_stage_bytes;
    let ds = dout + t.stages * tile_stage_bytes;
    let ds_bytes = t.block_n() * t.block_m * elem_bytes;
    let dq = ds + 2 * ds_bytes;
    let stats = dq + 2 * t.dq_stage_bytes();
    // Two f32 per row and a 16-byte slot for the producer's key-range word.
    let stats_stage_bytes = 2 * t.block_m * 4 + 16;
    let kv_ring = stats + t.stages * stats_stage_bytes;
    let q_ring = kv_ring + ring_bytes(1);
    let dout_ring = q_ring + ring_bytes(t.stages);
    let feed_ring = dout_ring + ring_bytes(t.stages);
    let tile_slots = feed_ring + ring_bytes(FEED_SLOTS);
    BwdSmemLayout {
        v,
        q,
        dout,
        tile_stage_bytes,
        ds,
        ds_bytes,
        dq,
        stats,
        stats_stage_bytes,
        keys_end: 2 * t.block_m * 4,
        kv_ring,
        q_ring,
        dout_ring,
        feed_ring,
        tile_slots,
        bytes: tile_slots + 4 * FEED_SLOTS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The conversion reads each dQ block where the main kernel reduced
    /// it: for every query block and every block of both consumers.
    #[test]
    fn dq_blocks_are_where_the_conversion_reads_them() {
        for t in BWD_TILINGS {
            let (parts, per_m) = (t.dq_parts(), t.dq_row_blocks());
            for (head_row, m_blocks) in [(0, 1), (3, 5), (7, 2)] {
                for m in 0..m_blocks {
                    for b in 0..2 * t.dq_blocks_per_consumer() {
                        let (rb, cb) = t.dq_block(b);
                        assert_eq!(
                            t.dq_accum_block(head_row, m_blocks, m, b),
                            fragment_block(head_row, m_blocks * per_m, parts, m * per_m + rb, cb),
                            "hdim {} head row {head_row} m {m} b {b}",
                            t.head_dim
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_backward_tiling_fits_shared_memory_and_registers() {
        for t in BWD_TILINGS {
            let l = bwd_smem_layout(t, 2);
            assert!(
                l.bytes <= 227 * 1024,
                "hdim {}: {} bytes",
                t.head_dim,
                l.bytes
            );
            // Swizzled tiles start on 1024-byte boundaries.
            for at in [l.v, l.q, l.dout, l.ds, l.dq, l.tile_stage_bytes, l.ds_bytes] {
                assert_eq!(at % 1024, 0, "hdim {}", t.head_dim);
            }
            assert_eq!(l.stats % 16, 0);
            // The gradients one consumer holds: dK and dV of its 64 keys,
            // or one of them for all the tile's 64 keys.
            // Whole consumer key blocks per CTA.
            assert_eq!(t.block_n() % BWD_KEYS_PER_CONSUMER, 0);
            let gradients = match t.consumers {
                BwdConsumers::SplitKeys => t.head_dim,
                BwdConsumers::SplitRoles => t.head_dim / 2,
            };
            // The gradients, and at the peak (Pᵀ being packed) the f32
            // blocks of Sᵀ and dPᵀ (both in flight, split keys) and the Pᵀ
            // fragments, or one block and the Pᵀ and dSᵀ fragments (split
            // roles). dQ's part replaces them. 16 left for addresses and
            // indices (ptxas: 237 of 240 at hdim 64 and 128, no spills).
            let peak = match t.consumers {
                BwdConsumers::SplitKeys => gradients + t.block_m + t.block_m / 4,
                BwdConsumers::SplitRoles => gradients + t.block_m / 2 + 2 * (t.block_m / 4),
            };
            assert!(peak <= BWD_CONSUMER_REGISTERS - 16, "hdim {}", t.head_dim);
            let dq = gradients + 32 * t.dq_blocks_per_consumer();
            assert!(dq <= BWD_CONSUMER_REGISTERS - 40, "hdim {}", t.head_dim);
            assert_eq!(t.dq_blocks() % 2, 0, "dQ blocks split evenly");
            assert_eq!(t.block_m % 64, 0, "dS tiles of 64-query column blocks");
        }
        assert_eq!(bwd_tiling(128), Some(BWD_HDIM128));
        assert_eq!(bwd_tiling(256), Some(BWD_HDIM256));
        assert_eq!(bwd_tiling(96), None);
    }

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
    fn fp8_tilings_fit_and_transpose_whole_tiles() {
        for t in FP8_TILINGS {
            let l = smem_layout(t, 1);
            assert!(
                l.bytes <= 227 * 1024,
                "hdim {}: {} bytes",
                t.head_dim,
                l.bytes
            );
            assert_eq!(l.vt, l.v + t.stages * l.stage_bytes);
            // S + O + P (4 keys per register) leave 16 of the consumers'
            // registers for addresses and the softmax (hdim 256: 208, R217
            // in ptxas without the overlap, under the 224 of the FP8 split).
            assert!(t.block_n / 2 + t.head_dim / 2 + t.block_n / 8 <= FP8_CONSUMER_REGISTERS - 16);
            // V is transposed by 128-key tiles of 64-byte rows or of
            // 128-byte column blocks.
            assert!(
                t.block_n == 128 && (t.head_dim == 64 || t.head_dim % 128 == 0),
                "hdim {}",
                t.head_dim
            );
            assert_eq!(kernel_tiling(1, t.head_dim, t.block_n, t.stages), Some(t));
        }
        assert_eq!(fp8_tiling(128), Some(FP8_HDIM128));
        // 16-bit layouts have no Vᵀ: its stages and ring take no bytes.
        let l = smem_layout(HDIM128, 2);
        assert_eq!(
            (l.vt, l.q_ring, l.vt_ring, l.tile_slots),
            (l.q_ring, l.vt, l.tile_slots, l.vt_ring)
        );
    }

    #[test]
    fn long_tilings_take_over_from_long_keys() {
        assert_eq!(tiling(64, LONG_KEYS - 1), Some(TILINGS[0]));
        assert_eq!(tiling(64, LONG_KEYS), Some(LONG_TILINGS[0]));
        // No long tiling for hdim 128: the short one at any length.
        assert_eq!(tiling(128, u32::MAX), Some(TILINGS[1]));
        for t in TILINGS.into_iter().chain(LONG_TILINGS) {
            assert_eq!(kernel_tiling(2, t.head_dim, t.block_n, t.stages), Some(t));
        }
        let odd = TILINGS[0];
        assert_eq!(kernel_tiling(2, odd.head_dim, 96, odd.stages), None);
        // An FP8 row is no 16-bit kernel's, nor the other way round.
        assert_eq!(
            kernel_tiling(2, 256, FP8_HDIM256.block_n, FP8_HDIM256.stages),
            None
        );
        assert_eq!(kernel_tiling(1, 256, HDIM256.block_n, HDIM256.stages), None);
    }
}
