//! Warp specialization in miniature: a producer warpgroup streams tiles by
//! TMA through an S-stage ring; two consumer warpgroups with more registers
//! take turns (named barriers) to issue their GEMMs on every tile.

use crate::abi::selftest::{PINGPONG_TILE_ROWS, PingpongParams};
use crate::arch::elem::{Bf16, KMajor};
use crate::arch::global::fetch_add_gpu;
use crate::arch::pipeline::{PipelineState, TmaPipeline};
use crate::arch::regs;
use crate::arch::smem::{self, Tile};
use crate::arch::sync::sync_block;
use crate::arch::thread::{Warpgroup, elect_one, trap, warp_index};
use crate::arch::tma;
use crate::arch::turns::Turns;
use crate::arch::wgmma::{self, Accumulator, FragA, Mma, ScaleD};
use crate::layout::fragment::{a_operand_k16, accumulator};

type BTile = Tile<Bf16, PINGPONG_TILE_ROWS, 64, KMajor>;
/// m64 n192: 96 registers per accumulator, two of them (even and odd tiles),
/// plus 16 for A: more than the 168 a thread has before `setmaxnreg`.
type Acc = Accumulator<96>;

/// # Safety
/// Launched with 384 threads and `pingpong_smem_bytes(S)` bytes of dynamic
/// shared memory; map and buffers as `PingpongParams` documents.
pub(crate) unsafe fn run<const S: usize>(p: PingpongParams) {
    let base = smem::base();
    if base & 1023 != 0 {
        trap();
    }
    // SAFETY: pingpong_smem_bytes(S): S tiles, then the ring's barriers.
    let ring = unsafe { TmaPipeline::<S>::at(base + S as u32 * BTile::BYTES) };
    if warp_index() == 0
        && let Some(one) = elect_one()
    {
        ring.init(&one, 8); // one arrival per consumer warp
    }
    sync_block();

    // SAFETY: each warpgroup enters its role branch whole and converged.
    let wg = unsafe { Warpgroup::enter() };
    match wg.index() {
        0 => {
            regs::release::<24>(&wg);
            if warp_index() == 0
                && let Some(one) = elect_one()
            {
                tma::prefetch(p.b_map);
                let mut state = PipelineState::<S>::producer();
                for t in 0..p.tiles {
                    ring.producer_acquire(state);
                    let full = ring.producer_expect(state, BTile::BYTES);
                    let row = (t * PINGPONG_TILE_ROWS) as i32;
                    // SAFETY: the stage is free (acquired) and its barrier
                    // expects the tile's bytes.
                    unsafe {
                        tma::load(&one, p.b_map, stage(base, state.index()), &full, [0, row])
                    };
                    state.advance();
                }
            }
        }
        c @ (1 | 2) => {
            regs::acquire::<240>(&wg);
            consume::<S>(&wg, c - 1, &ring, base, &p);
        }
        _ => trap(),
    }
}

#[inline(always)]
fn stage(base: u32, index: u32) -> u32 {
    base + index * BTile::BYTES
}

#[inline(always)]
fn consume<const S: usize>(
    wg: &Warpgroup,
    me: u32,
    ring: &TmaPipeline<S>,
    base: u32,
    p: &PingpongParams,
) {
    let thread = wg.thread();
    let a: [FragA<Bf16>; 4] = core::array::from_fn(|step| {
        FragA::new(core::array::from_fn(|reg| {
            let (row, col) = a_operand_k16(thread, reg as u32);
            let word = me * 64 * 64 / 2 + (row * 64 + step as u32 * 16 + col) / 2;
            // SAFETY: A_0 and A_1 are 64 x 64 bf16 each (launch contract).
            unsafe { *p.a.as_mut_ptr().add(word as usize) }
        }))
    });
    let turns = Turns::new(me, true); // consumer 0 goes first
    let (mut even, mut odd) = (Acc::zeroed(), Acc::zeroed());
    let mut state = PipelineState::<S>::consumer();
    for t in 0..p.tiles {
        ring.consumer_wait(state);
        turns.begin();
        if thread == 0 {
            log_turn(p, me, t);
        }
        // SAFETY: the stage holds tile t (consumer_wait).
        let tile = unsafe { BTile::at(stage(base, state.index())) };
        let last = t + 1 == p.tiles;
        // Each branch names its accumulator: a runtime choice between two
        // register arrays would put both in local memory.
        if t % 2 == 0 {
            gemm(wg, &mut even, &a, &tile, &turns, last);
        } else {
            gemm(wg, &mut odd, &a, &tile, &turns, last);
        }
        ring.warp_release(state);
        state.advance();
    }
    store(p, thread, 2 * me, &even);
    store(p, thread, 2 * me + 1, &odd);
}

/// Issues this tile's GEMM, hands the turn on, waits for the result.
#[inline(always)]
fn gemm(
    wg: &Warpgroup,
    acc: &mut Acc,
    a: &[FragA<Bf16>; 4],
    tile: &BTile,
    turns: &Turns,
    last: bool,
) {
    acc.fence_operands();
    wgmma::fence(wg);
    for (step, frag) in a.iter().enumerate() {
        acc.mma_rs_bf16(wg, *frag, tile.desc(step as u32), ScaleD::Accumulate);
    }
    wgmma::commit_group(wg);
    turns.end(last);
    acc.wait::<0>(wg);
}

/// Writes accumulator block `block` of D.
#[inline(always)]
fn store(p: &PingpongParams, thread: u32, block: u32, acc: &Acc) {
    let offset = block * 64 * PINGPONG_TILE_ROWS;
    acc.for_each(|reg, x| {
        let (row, col) = accumulator(thread, reg);
        // SAFETY: four 64 x 192 blocks (launch contract).
        unsafe {
            *p.d.as_mut_ptr()
                .add((offset + row * PINGPONG_TILE_ROWS + col) as usize) = x
        };
    });
}

/// Appends `(consumer, tile)` to the issue-order log.
#[inline(always)]
fn log_turn(p: &PingpongParams, consumer: u32, tile: u32) {
    // SAFETY: the counter the host allocated, touched only atomically;
    // every slot it hands out is inside `order` (one per turn).
    unsafe {
        let slot = fetch_add_gpu(p.order_len, 1);
        *p.order.as_mut_ptr().add(slot as usize) = (consumer << 16) | tile;
    }
}
