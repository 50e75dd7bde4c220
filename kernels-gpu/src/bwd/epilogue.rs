//! dK and dV of a consumer's 64 keys out of the tile: rounded to 16 bits
//! into the gradients (one query head per K/V head), or with GQA as f32
//! fragment-order blocks per query head, which `convert` sums over each
//! group in a fixed order. dK is scaled by softmax_scale here (the scores
//! were scale · q·k).

use super::{BLOCK_N, BwdElem, Work};
use crate::abi::bwd::BwdParams;
use crate::arch::global::store_16_bytes;
use crate::arch::wgmma::{Accumulator, Mma};
use crate::attn::tiles::{BWD_KEYS_PER_CONSUMER, fragment_block};
use crate::epilogue::{Rows, for_each_fragment_chunk, store_rows};
use crate::layout::fragment::FRAG_BLOCK_BYTES;

#[inline(always)]
pub(super) fn store<E: BwdElem, const D: u32, const RD: usize>(
    p: &BwdParams,
    w: &Work,
    me: u32,
    thread: u32,
    dk: &mut Accumulator<RD>,
    dv: &Accumulator<RD>,
) where
    Accumulator<RD>: Mma,
{
    let scale = p.scale;
    dk.update(|_, x| x * scale);
    let key0 = w.n_block * BLOCK_N + BWD_KEYS_PER_CONSUMER * me;
    if key0 >= p.seqlen_k {
        return; // the block's second half lies past the last key
    }
    if p.heads_per_kv == 1 {
        let rows = |out: u64, [sb, ss, sh]: [u64; 3]| Rows {
            out,
            base: w.batch as u64 * sb + w.kv_head as u64 * sh,
            row_stride: ss,
            first_row: key0,
            rows: p.seqlen_k,
        };
        // SAFETY: dk and dv are validated on the host (shape, strides
        // inside their buffers, 16-byte aligned base and outer strides,
        // contiguous head dim); these keys below seqlen_k are rows of them.
        unsafe {
            store_rows::<E, RD>(dk, &rows(p.dk.address(), p.dk_strides), thread);
            store_rows::<E, RD>(dv, &rows(p.dv.address(), p.dv_strides), thread);
        }
        return;
    }
    let parts = D / 64;
    let head_row = w.batch * p.heads + w.head;
    let block = fragment_block(head_row, p.key_blocks_64, parts, key0 / 64, 0);
    let offset = block as u64 * FRAG_BLOCK_BYTES as u64;
    // Two calls, not a loop over (accumulator, workspace) pairs: a
    // runtime-indexed array of accumulators would sit in local memory.
    let write = |acc: &Accumulator<RD>, workspace: u64| {
        for_each_fragment_chunk(acc, workspace + offset, thread, |at, words| {
            // SAFETY: the (batch, query head, 64-key block) blocks of the
            // GQA workspace (key0 < seqlen_k, so key0 / 64 <
            // key_blocks_64), written by this consumer only.
            unsafe { store_16_bytes(at, words) };
        });
    };
    write(dk, p.dk_accum.address());
    write(dv, p.dv_accum.address());
}
