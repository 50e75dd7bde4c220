//! The pieces of a backward consumer's query block, shared by both ways
//! of splitting a tile between the consumers (`consumer`, `roles`): the
//! transposed score GEMMs, the probabilities and score gradients in
//! registers, dSᵀ (or Pᵀ) through a shared-memory tile, the RS gradient
//! GEMMs and dQ's SS GEMM.

use super::{BwdElem, Smem};
use crate::arch::elem::{KMajor, MnMajor};
use crate::arch::fragment::{exp2, fma};
use crate::arch::smem::{self, Tile};
use crate::arch::sync::fence_proxy_async_shared;
use crate::arch::thread::{WARPGROUP, Warpgroup, thread_index_here};
use crate::arch::wgmma::{self, Accumulator, FragA, Mma, ScaleD};
use crate::attn::mask::Band;
use crate::layout::fragment::{accumulator, matrix_row_k16};
use crate::layout::swizzle;

/// What one consumer knows while it works on a tile of `N` keys and query
/// blocks of `M` rows.
pub(super) struct Step<'a, const D: u32, const M: u32, const N: u32> {
    pub wg: &'a Warpgroup,
    /// The consumer (0 or 1).
    pub me: u32,
    pub thread: u32,
    pub mem: &'a Smem,
    pub band: Band,
    pub scale_log2: f32,
    /// The first of this consumer's 64 keys among the tile's.
    pub first_row: u32,
    /// Global index of that key.
    pub key0: u32,
    pub unmasked: (u32, u32),
}

impl<const D: u32, const M: u32, const N: u32> Step<'_, D, M, N> {
    /// `acc = A·Bᵀ` over head_dim for this consumer's keys: A is K (Sᵀ =
    /// K·Qᵀ) or V (dPᵀ = V·dOᵀ), `b` the stage's Q or dO; one commit group.
    #[inline(always)]
    pub fn issue_transposed<E: BwdElem, const RM: usize>(
        &self,
        acc: &mut Accumulator<RM>,
        a: u32,
        b: u32,
    ) where
        Accumulator<RM>: Mma,
    {
        // SAFETY: K or V and the stage's Q or dO (bwd_smem_layout), 1024-byte
        // aligned; the caller waited for them.
        let (a, b) = unsafe {
            (
                Tile::<E, N, D, KMajor>::at(a),
                Tile::<E, M, D, KMajor>::at(b),
            )
        };
        let first_row = self.first_row;
        acc.fence_operands();
        wgmma::fence(self.wg);
        for step in 0..D / 16 {
            let scale = ScaleD::from_step(step);
            E::qk(
                acc,
                self.wg,
                a.desc_from_row(first_row, step),
                b.desc(step),
                scale,
            );
        }
        wgmma::commit_group(self.wg);
    }

    /// Sᵀ → Pᵀ in place: exp2(s · scale·log2e − LSE·log2e) of each (key,
    /// query), 0 where query block `m` needs the mask and hides the score.
    #[inline(always)]
    pub fn probabilities<const RM: usize>(&self, s: &mut Accumulator<RM>, stats: u32, m: u32)
    where
        Accumulator<RM>: Mma,
    {
        let (thread, scale_log2) = (self.thread, self.scale_log2);
        s.update(|reg, x| {
            let (_, c) = accumulator(thread, reg);
            // SAFETY: the stage's statistics (waited for); c < M.
            let neg_lse_log2 = unsafe { smem::load_f32(stats + 4 * c) };
            exp2(fma(x, scale_log2, neg_lse_log2))
        });
        let (lo, hi) = self.unmasked;
        if m < lo || m >= hi {
            let (band, key0, q0) = (self.band, self.key0, m * M);
            s.update(|reg, x| {
                let (r, c) = accumulator(thread, reg);
                let (first, last) = band.queries_seeing(key0 + r);
                let i = (q0 + c) as i32;
                if i >= first && i <= last { x } else { 0.0 }
            });
        }
    }

    /// dPᵀ → dSᵀ in place: pᵀ ∘ (dpᵀ − D) with D = rowsum(dO∘O) of each
    /// query and `p(reg)` the pᵀ of accumulator register `reg`: the f32 Pᵀ
    /// (FA3's arithmetic) or as rounded for dV's GEMM ([`unpacked`]).
    #[inline(always)]
    pub fn score_gradients<const RM: usize>(
        &self,
        p: impl Fn(u32) -> f32,
        dp: &mut Accumulator<RM>,
        stats: u32,
    ) where
        Accumulator<RM>: Mma,
    {
        let thread = self.thread;
        dp.update(|reg, x| {
            let (_, c) = accumulator(thread, reg);
            // SAFETY: as in `probabilities`; rowsum follows the LSE.
            let d = unsafe { smem::load_f32(stats + 4 * (M + c)) };
            p(reg) * (x - d)
        });
    }

    /// Writes fragments of this consumer's keys (dSᵀ as packed for dK's
    /// GEMM, or Pᵀ as packed for dV's) into rows `first_row ..` of the
    /// tile at `tile` (N keys x M queries, queries contiguous in 64-column
    /// blocks, 128-byte swizzle), one `stmatrix` per k-step, then fences
    /// it for wgmma. From the fragments, not the f32 block: that one is
    /// dead by now.
    #[inline(always)]
    pub fn store_transposed<E: BwdElem, const KM: usize>(&self, frags: &[FragA<E>; KM], tile: u32) {
        for (kb, frag) in frags.iter().enumerate() {
            // SAFETY: this consumer's rows of the tile, one 16-byte row
            // segment per lane; its readers have finished with its previous
            // contents (the caller's barriers); the warpgroup is converged.
            unsafe { smem::store_matrix_x4(self.transposed_row(tile, kb as u32), frag.regs) };
        }
        fence_proxy_async_shared();
    }

    /// The fragments `store_transposed` wrote into `tile`, read back.
    ///
    /// # Safety
    /// The tile holds them: the writer's stores happened before a barrier
    /// this consumer has passed.
    #[inline(always)]
    pub unsafe fn load_transposed<E: BwdElem, const KM: usize>(&self, tile: u32) -> [FragA<E>; KM] {
        core::array::from_fn(|kb| {
            // SAFETY: as `store_transposed` wrote them (contract).
            FragA::new(unsafe { smem::load_matrix_x4(self.transposed_row(tile, kb as u32)) })
        })
    }

    /// The shared address of the row segment this thread names for
    /// `stmatrix`/`ldmatrix` of k-step `kb` in a transposed tile.
    #[inline(always)]
    fn transposed_row(&self, tile: u32, kb: u32) -> u32 {
        let (r, c) = matrix_row_k16(thread_index_here() % WARPGROUP, kb);
        let block = tile + (c / 64) * N * 128;
        block + swizzle::offset(self.first_row + r, 2 * (c % 64))
    }

    /// Issues one gradient, `acc += frags · b` (RS, dV += Pᵀ·dO or dK +=
    /// dSᵀ·Q; `b` the stage's dO or Q read MN-major: the queries are the
    /// contraction; one commit group). The fragments must stay untouched
    /// until the wait.
    #[inline(always)]
    pub fn issue_gradient<E: BwdElem, const RD: usize, const KM: usize>(
        &self,
        acc: &mut Accumulator<RD>,
        frags: &[FragA<E>; KM],
        b: u32,
    ) where
        Accumulator<RD>: Mma,
    {
        // SAFETY: the stage's Q or dO (the caller waited for it).
        let b = unsafe { Tile::<E, M, D, MnMajor>::at(b) };
        acc.fence_operands();
        wgmma::fence(self.wg);
        for (kb, frag) in frags.iter().enumerate() {
            E::pv(acc, self.wg, *frag, b.desc(kb as u32));
        }
        wgmma::commit_group(self.wg);
    }

    /// Issues this consumer's `COLS / 64` blocks of dQ (from block
    /// `dq_blocks_per_consumer() · me`, `BwdTiling::dq_block`: 64 query
    /// rows, `COLS` columns) over the tile's N keys, from dS tile `ds` and
    /// K (one commit group).
    #[inline(always)]
    pub fn issue_dq<E: BwdElem, const R: usize, const COLS: u32>(
        &self,
        dq: &mut Accumulator<R>,
        ds: u32,
    ) where
        Accumulator<R>: Mma,
    {
        const { assert!(2 * R as u32 == COLS, "64 rows x COLS of f32") };
        let tiling = self.mem.tiling;
        let (row_block, col_block) = tiling.dq_block(self.me * tiling.dq_blocks_per_consumer());
        // SAFETY: the dS tile both consumers wrote (synchronized by the
        // caller): the column block of this consumer's queries; K's column
        // blocks of its dQ columns. Both MN-major over the keys.
        let (ds, k) = unsafe {
            (
                Tile::<E, N, 64, MnMajor>::at(ds + row_block * N * 128),
                Tile::<E, N, COLS, MnMajor>::at(self.mem.k() + col_block * N * 128),
            )
        };
        dq.fence_operands();
        wgmma::fence(self.wg);
        for step in 0..N / 16 {
            let scale = ScaleD::from_step(step);
            E::ss_t(dq, self.wg, ds.desc(step), k.desc(step), scale);
        }
        wgmma::commit_group(self.wg);
    }
}

#[inline(always)]
pub(super) fn fragments<E: BwdElem, const RM: usize, const KM: usize>(
    acc: &Accumulator<RM>,
) -> [FragA<E>; KM] {
    core::array::from_fn(|kb| E::p_fragment(acc, kb as u32))
}

/// Element `reg` of the f32 block packed into `frags` (A fragments of
/// k16 steps), back in f32: register 8kb + 2i + h is half h of fragment
/// register i of k-step kb (`accumulator_to_a_k16`).
#[inline(always)]
pub(super) fn unpacked<E: BwdElem, const KM: usize>(frags: &[FragA<E>; KM], reg: u32) -> f32 {
    let word = frags[(reg / 8) as usize].regs[((reg % 8) / 2) as usize];
    let (lo, hi) = E::unpack2(word);
    if reg.is_multiple_of(2) { lo } else { hi }
}
