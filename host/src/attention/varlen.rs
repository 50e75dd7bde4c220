//! Checks FA3's variable-length description (`cu_seqlens_q/k`,
//! `max_seqlen_q/k`) against the packed tensors.

use super::args::Varlen;
use super::shape::PackedDims;
use crate::error::{Error, Result};
use crate::reference::seqlen::Seqlens;

/// The sequences `varlen` describes, checked against the packed token counts.
pub(crate) fn seqlens(varlen: &Varlen<'_>, dims: &PackedDims) -> Result<Seqlens> {
    let q = cumulative("cu_seqlens_q", varlen.cu_seqlens_q, dims.total_q, "q")?;
    let k = cumulative("cu_seqlens_k", varlen.cu_seqlens_k, dims.total_k, "k")?;
    if q.len() != k.len() {
        return Err(Error::InvalidCuSeqlens {
            argument: "cu_seqlens_k",
            problem: format!(
                "{} entries, but cu_seqlens_q has {}; both need batch + 1 entries",
                k.len(),
                q.len()
            ),
        });
    }
    for (argument, cu, given) in [
        ("max_seqlen_q", &q, varlen.max_seqlen_q),
        ("max_seqlen_k", &k, varlen.max_seqlen_k),
    ] {
        let needed = cu.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        if given < needed {
            return Err(Error::MaxSeqlenTooSmall {
                argument,
                given,
                needed,
            });
        }
    }
    Ok(Seqlens::packed(q, k))
}

/// Cumulative offsets: at least one entry, from 0, never decreasing, ending
/// at `total` (the token count of `tensor`).
fn cumulative(
    argument: &'static str,
    cu: &[i32],
    total: usize,
    tensor: &str,
) -> Result<Vec<usize>> {
    let invalid = |problem: String| Error::InvalidCuSeqlens { argument, problem };
    let Some(&first) = cu.first() else {
        return Err(invalid(
            "no entries; accepted: batch + 1 entries (at least one), starting at 0".into(),
        ));
    };
    if first != 0 {
        return Err(invalid(format!(
            "starts at {first}; the first entry must be 0"
        )));
    }
    if let Some(i) = cu.windows(2).position(|w| w[1] < w[0]) {
        return Err(invalid(format!(
            "decreases from {} to {} at index {}; entries must never decrease",
            cu[i],
            cu[i + 1],
            i + 1
        )));
    }
    // From 0 and never decreasing: every entry is non-negative.
    let cu: Vec<usize> = cu.iter().map(|&x| x.unsigned_abs() as usize).collect();
    let last = cu[cu.len() - 1];
    if last != total {
        return Err(invalid(format!(
            "ends at {last}, but `{tensor}` packs {total} tokens; the last entry must equal it"
        )));
    }
    Ok(cu)
}
