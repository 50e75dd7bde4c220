//! Host memory the CPU backend and the reference ask for before they run,
//! so that a problem too large for this machine (inputs of zero stride can
//! describe far more elements than they occupy) is a typed error, not a
//! capacity-overflow panic or an abort halfway through.

use crate::error::{Error, Result};

/// Errors with [`Error::Allocation`] unless `bytes` of host memory can be
/// reserved now. The reservation is given back at once: it asks the
/// allocator (and the kernel's overcommit rule) the question the
/// computation's own allocations will ask, before anything is written.
pub(crate) fn probe(what: &'static str, bytes: u128) -> Result<()> {
    let fail = || Error::Allocation { what, bytes };
    let len = usize::try_from(bytes)
        .ok()
        .filter(|&len| isize::try_from(len).is_ok())
        .ok_or_else(fail)?;
    let mut reservation: Vec<u8> = Vec::new();
    reservation.try_reserve_exact(len).map_err(|_| fail())
}

/// `len` copies of `value`, or [`Error::Allocation`].
pub(crate) fn filled<T: Clone>(what: &'static str, len: usize, value: T) -> Result<Vec<T>> {
    let mut vec = Vec::new();
    vec.try_reserve_exact(len).map_err(|_| Error::Allocation {
        what,
        bytes: len as u128 * size_of::<T>() as u128,
    })?;
    vec.resize(len, value);
    Ok(vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_sizes_are_errors() {
        for bytes in [u128::MAX, 1 << 64, 1 << 63] {
            assert!(matches!(
                probe("test", bytes),
                Err(Error::Allocation { what: "test", .. })
            ));
        }
        assert!(probe("test", 1 << 20).is_ok());
        assert!(matches!(
            filled("test", usize::MAX / 2, 0u32),
            Err(Error::Allocation { .. })
        ));
        assert_eq!(filled("test", 3, 7u8).unwrap(), [7, 7, 7]);
    }
}
