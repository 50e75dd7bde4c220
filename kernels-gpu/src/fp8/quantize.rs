//! The FP8 quantizer (`abi::fp8::Fp8QuantizeParams`, the GPU backend of
//! `fa3::Device::quantize_fp8_into`). Each thread holds 8 consecutive
//! values of a row (16 bytes), so a row takes head_dim / 8 lanes of a warp.
//! With incoherent processing the row is rotated in registers, in the
//! order of the CPU backend's fast Walsh–Hadamard transform (in f32 here,
//! f64 there): signs, the butterflies among the thread's 8 values, those
//! between the row's lanes (shuffles), then 1/√d.

use super::hadamard_sign;
use crate::abi::fp8::Fp8QuantizeParams;
use crate::arch::fragment::{pack_e4m3x4, shfl_xor, warp_max};
use crate::arch::global::{load_16_bytes, reduce_max_u32_gpu, store_8_bytes};
use crate::arch::thread::{block_index_3d, lane, thread_index};
use crate::half::HalfElem;

const THREADS: u32 = 256;
/// Values of a row per thread: 16 bytes of 16-bit inputs.
const ELEMS: u32 = 8;
/// e4m3's largest finite magnitude.
const E4M3_MAX: f32 = 448.0;

/// # Safety
/// Launched as `Fp8QuantizeParams` documents: `x`, `data` and `scales`
/// validated views of this call's shapes, `amax` one word per scale
/// (zeroed before pass 0; pass 1 after pass 0 on the same stream).
pub(crate) unsafe fn run<E: HalfElem>(p: Fp8QuantizeParams) {
    let (x_block, head, batch) = block_index_3d();
    let thread = thread_index();
    let lanes = p.head_dim / ELEMS;
    let rows_per_pass = THREADS / lanes;
    let (sub_row, part) = (thread / lanes, thread % lanes);
    let col = ELEMS * part;
    let (group, chunk) = (x_block / p.chunks_per_group, x_block % p.chunks_per_group);
    let group_start = group * p.group_rows;
    let r0 = group_start + chunk * p.chunk_rows;
    let r1 = (r0 + p.chunk_rows)
        .min(group_start + p.group_rows)
        .min(p.seqlen);
    let [ab, ah, an] = p.amax_strides;
    let slot = (batch * ab + head * ah + group * an) as usize;
    // SAFETY: one word per scale (contract); slot indexes this group's.
    let amax = unsafe { p.amax.as_mut_ptr().add(slot) };
    let scale = if p.pass == 0 {
        1.0
    } else {
        // SAFETY: as above; pass 0 finished before this launch.
        let largest = f32::from_bits(unsafe { *amax });
        if largest == 0.0 {
            1.0
        } else {
            largest / E4M3_MAX
        }
    };
    let [sb, sh, sn] = p.scale_strides;
    // The group's first chunk writes its scale once: in the first CTA
    // along every axis the scales do not have.
    let writer = chunk == 0 && thread == 0 && (ab != 0 || batch == 0) && (ah != 0 || head == 0);
    if p.pass == 1 && writer {
        let at = batch as u64 * sb + head as u64 * sh + group as u64 * sn;
        // SAFETY: the group's element of the validated scales view.
        unsafe { *p.scales.as_mut_ptr().add(at as usize) = scale };
    }
    let signs: [f32; ELEMS as usize] =
        core::array::from_fn(|e| hadamard_sign(p.seed, col + e as u32));
    let [xb, xs, xh] = p.x_strides;
    let [db, ds, dh] = p.data_strides;
    let mut largest = 0.0f32;
    let passes = r1.saturating_sub(r0).div_ceil(rows_per_pass);
    for i in 0..passes {
        let row = r0 + i * rows_per_pass + sub_row;
        let inside = row < r1;
        let mut v = [0.0f32; ELEMS as usize];
        if inside {
            let at = batch as u64 * xb + row as u64 * xs + head as u64 * xh + col as u64;
            // SAFETY: 8 values of row `row` (< seqlen) of the validated
            // view, 16-byte aligned (aligned rows, col a multiple of 8).
            let words = unsafe { load_16_bytes(p.x.address() + 2 * at) };
            for k in 0..4 {
                (v[2 * k], v[2 * k + 1]) = E::unpack2(words[k]);
            }
        }
        if p.rotation_norm != 0.0 {
            // Every lane shuffles, rows inside or not.
            rotate(&mut v, &signs, part, lanes, p.rotation_norm);
        }
        if p.pass == 0 {
            largest = v.iter().fold(largest, |m, x| m.max(x.abs()));
        } else if inside {
            let q = v.map(|x| x / scale);
            let words = [
                pack_e4m3x4([q[0], q[1], q[2], q[3]]),
                pack_e4m3x4([q[4], q[5], q[6], q[7]]),
            ];
            let at = batch as u64 * db + row as u64 * ds + head as u64 * dh + col as u64;
            // SAFETY: 8 bytes of row `row` of the validated data view,
            // 8-byte aligned (aligned rows, col a multiple of 8).
            unsafe { store_8_bytes(p.data.address() + at, words) };
        }
    }
    if p.pass == 0 {
        // The chunk lies inside one group: the warp's maximum is one
        // candidate for it.
        let m = warp_max(largest);
        if lane() == 0 && m > 0.0 {
            // SAFETY: the group's word, touched only by these reductions
            // during pass 0.
            unsafe { reduce_max_u32_gpu(amax as u64, m.to_bits()) };
        }
    }
}

/// `v · diag(signs) · H / √d` for the thread's 8 values of a row spread
/// over `lanes` lanes (`part` = this lane's place in the row).
#[inline(always)]
fn rotate(
    v: &mut [f32; ELEMS as usize],
    signs: &[f32; ELEMS as usize],
    part: u32,
    lanes: u32,
    norm: f32,
) {
    for (x, s) in v.iter_mut().zip(signs) {
        *x *= s;
    }
    // Butterflies of distance 1, 2, 4 among the thread's values (three
    // calls, not a loop over an array of distances: that array went to
    // local memory).
    let within = |v: &mut [f32; ELEMS as usize], half: usize| {
        for i in 0..ELEMS as usize {
            if i & half == 0 {
                let (u, w) = (v[i], v[i + half]);
                (v[i], v[i + half]) = (u + w, u - w);
            }
        }
    };
    within(v, 1);
    within(v, 2);
    within(v, 4);
    // Distance 8 · m: lane part ^ m holds the partner; the lower lane keeps
    // the sum, the upper the difference.
    let across = |v: &mut [f32; ELEMS as usize], m: u32| {
        if m < lanes {
            let upper = part & m != 0;
            for x in v.iter_mut() {
                let other = shfl_xor(*x, m);
                *x = if upper { other - *x } else { *x + other };
            }
        }
    };
    across(v, 1);
    across(v, 2);
    across(v, 4);
    across(v, 8);
    across(v, 16);
    for x in v.iter_mut() {
        *x *= norm;
    }
}
