//! dK or dV of 64 keys out of the tile: rounded to 16 bits into the
//! gradient (one query head per K/V head), or with GQA as f32
//! fragment-order blocks per query head, which `convert` sums over each
//! group in a fixed order. dK is scaled by softmax_scale here (the scores
//! were scale · q·k).

use super::{BwdElem, Work};
use crate::abi::bwd::BwdParams;
use crate::arch::global::store_16_bytes;
use crate::arch::wgmma::{Accumulator, Mma};
use crate::attn::tiles::fragment_block;
use crate::epilogue::{Rows, for_each_fragment_chunk, store_rows};
use crate::layout::fragment::FRAG_BLOCK_BYTES;

/// Which gradient an accumulator holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Gradient {
    Key,
    Value,
}

/// Writes `acc`, gradient `which` of the 64 keys from `key0` (a multiple
/// of 64) of `w`'s head, 64 x `D`.
#[inline(always)]
pub(super) fn store<E: BwdElem, const D: u32, const RD: usize>(
    p: &BwdParams,
    w: &Work,
    key0: u32,
    thread: u32,
    which: Gradient,
    acc: &mut Accumulator<RD>,
) where
    Accumulator<RD>: Mma,
{
    if which == Gradient::Key {
        let scale = p.scale;
        acc.update(|_, x| x * scale);
    }
    if key0 >= p.seqlen_k {
        return; // the keys lie past the last key (a block's second half)
    }
    if p.heads_per_kv == 1 {
        let (out, [sb, ss, sh]) = match which {
            Gradient::Key => (p.dk.address(), p.dk_strides),
            Gradient::Value => (p.dv.address(), p.dv_strides),
        };
        let rows = Rows {
            out,
            base: w.batch as u64 * sb + w.kv_head as u64 * sh,
            row_stride: ss,
            first_row: key0,
            rows: p.seqlen_k,
        };
        // SAFETY: dk and dv are validated on the host (shape, strides
        // inside their buffers, 16-byte aligned base and outer strides,
        // contiguous head dim); these keys below seqlen_k are rows of them.
        unsafe { store_rows::<E, RD>(acc, &rows, thread) };
        return;
    }
    let parts = D / 64;
    let head_row = w.batch * p.heads + w.head;
    let block = fragment_block(head_row, p.key_blocks_64, parts, key0 / 64, 0);
    let workspace = match which {
        Gradient::Key => p.dk_accum.address(),
        Gradient::Value => p.dv_accum.address(),
    };
    let offset = block as u64 * FRAG_BLOCK_BYTES as u64;
    for_each_fragment_chunk(acc, workspace + offset, thread, |at, words| {
        // SAFETY: the (batch, query head, 64-key block) blocks of the GQA
        // workspace (key0 < seqlen_k, so key0 / 64 < key_blocks_64),
        // written by this consumer only.
        unsafe { store_16_bytes(at, words) };
    });
}
