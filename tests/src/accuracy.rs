//! FA3's accuracy rule (`hopper/test_flash_attn.py`): a result is accurate
//! when its error against the high-precision reference is at most `k` times
//! the error of the same-precision naive implementation, plus the `f32`
//! noise of the reference:
//!
//! `max|got − ref| ≤ k · max|naive − ref| + atol`, `k` = 2 (3 with
//! soft-capping), `atol = 2 · max|(ref + 0.3 − 0.3) − ref|` evaluated in `f32`.
//!
//! A NaN anywhere fails. Equal infinities (fully masked rows' `lse = -inf`)
//! count as no error.
//!
//! A tensor of a handful of values (the lse of one query row per head) can
//! hand the naive implementation an error far below its precision: a max
//! over 12 rounding errors may be 4% of the half ulp. [`check_floored`]
//! then takes the naive error as at least its mean rounding error at the
//! reference's largest value (a quarter ulp of the naive's element type),
//! which the max over many values exceeds anyway.

use std::fmt;

/// The three maxima of one check, and the bound they were held to.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// What was checked (`out`, `dq`, ...).
    pub name: String,
    /// `max|got − ref|`.
    pub error: f64,
    /// `max|naive − ref|`.
    pub naive_error: f64,
    /// The `f32` noise of the reference.
    pub atol: f64,
    /// `k`: 2, or 3 with soft-capping.
    pub factor: f64,
    /// The least naive error taken ([`check_floored`]; else 0).
    pub naive_floor: f64,
}

impl Report {
    /// `k · max(max|naive − ref|, floor) + atol`.
    pub fn bound(&self) -> f64 {
        self.factor * self.naive_error.max(self.naive_floor) + self.atol
    }
}

/// Tensors of fewer values get [`check_floored`]'s floor.
pub const FEW_VALUES: usize = 64;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: max|got − ref| = {:.3e}, bound {}·{:.3e} (naive{}) + {:.3e} (atol) = {:.3e}",
            self.name,
            self.error,
            self.factor,
            self.naive_error.max(self.naive_floor),
            if self.naive_floor > self.naive_error {
                ", its rounding floor"
            } else {
                ""
            },
            self.atol,
            self.bound()
        )
    }
}

/// `|a − b|`, 0 for equal values (infinities included), NaN when either is.
fn distance(a: f64, b: f64) -> f64 {
    if a == b { 0.0 } else { (a - b).abs() }
}

/// The largest distance and where it is; `Err` on NaN.
fn max_distance(
    name: &str,
    what: &str,
    values: &[f64],
    reference: &[f64],
) -> Result<(f64, usize), String> {
    let mut worst = (0.0f64, 0usize);
    for (i, (&x, &r)) in values.iter().zip(reference).enumerate() {
        let d = distance(x, r);
        if d.is_nan() {
            return Err(format!(
                "{name}: {what}[{i}] = {x} against reference {r}: NaN"
            ));
        }
        if d > worst.0 {
            worst = (d, i);
        }
    }
    Ok(worst)
}

/// `2 · max|(ref + 0.3 − 0.3) − ref|` in `f32`, over finite values.
pub fn f32_noise(reference: &[f64]) -> f64 {
    let noise = reference
        .iter()
        .map(|&r| r as f32)
        .filter(|r| r.is_finite())
        .map(|r| ((r + 0.3 - 0.3) - r).abs())
        .fold(0.0f32, f32::max);
    2.0 * f64::from(noise)
}

/// Checks `got` against `reference` by FA3's rule, `naive` being the
/// same-precision naive result. `Err` carries a readable message.
pub fn check<G, N>(
    name: &str,
    got: &[G],
    reference: &[f64],
    naive: &[N],
    softcap: bool,
) -> Result<Report, String>
where
    G: Copy + Into<f64>,
    N: Copy + Into<f64>,
{
    check_floored(name, got, reference, naive, softcap, None)
}

/// A quarter ulp, at `fraction_bits` fraction bits, of the largest finite
/// `|reference|`: the mean error of rounding it.
pub fn rounding_floor(reference: &[f64], fraction_bits: i32) -> f64 {
    let top = reference
        .iter()
        .filter(|r| r.is_finite())
        .fold(0.0f64, |m, r| m.max(r.abs()));
    if top == 0.0 {
        return 0.0;
    }
    2f64.powi(top.log2().floor() as i32 - fraction_bits) / 4.0
}

/// [`check`], the naive error taken as at least [`rounding_floor`] when
/// `reference` holds fewer than [`FEW_VALUES`] finite values and the
/// naive's element type has `naive_fraction_bits` (7 for bf16).
pub fn check_floored<G, N>(
    name: &str,
    got: &[G],
    reference: &[f64],
    naive: &[N],
    softcap: bool,
    naive_fraction_bits: Option<i32>,
) -> Result<Report, String>
where
    G: Copy + Into<f64>,
    N: Copy + Into<f64>,
{
    if got.len() != reference.len() || naive.len() != reference.len() {
        return Err(format!(
            "{name}: lengths differ: got {}, reference {}, naive {}",
            got.len(),
            reference.len(),
            naive.len()
        ));
    }
    if let Some(i) = reference.iter().position(|r| r.is_nan()) {
        return Err(format!("{name}: reference[{i}] is NaN"));
    }
    let got: Vec<f64> = got.iter().map(|&x| x.into()).collect();
    let naive: Vec<f64> = naive.iter().map(|&x| x.into()).collect();
    let (error, at) = max_distance(name, "got", &got, reference)?;
    let (naive_error, _) = max_distance(name, "naive", &naive, reference)?;
    let report = Report {
        name: name.to_string(),
        error,
        naive_error,
        atol: f32_noise(reference),
        factor: if softcap { 3.0 } else { 2.0 },
        naive_floor: match naive_fraction_bits {
            Some(bits) if reference.iter().filter(|r| r.is_finite()).count() < FEW_VALUES => {
                rounding_floor(reference, bits)
            }
            _ => 0.0,
        },
    };
    if report.error <= report.bound() {
        Ok(report)
    } else {
        Err(format!(
            "{report} — too large (worst at index {at}: got {}, reference {})",
            got[at], reference[at]
        ))
    }
}

/// [`check`], panicking with its message on failure.
pub fn assert_accurate<G, N>(
    name: &str,
    got: &[G],
    reference: &[f64],
    naive: &[N],
    softcap: bool,
) -> Report
where
    G: Copy + Into<f64>,
    N: Copy + Into<f64>,
{
    check(name, got, reference, naive, softcap).unwrap_or_else(|message| panic!("{message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: [f64; 4] = [1.0, -2.5, 0.125, f64::NEG_INFINITY];

    #[test]
    fn a_result_as_good_as_the_naive_one_passes() {
        let naive = [1.01, -2.49, 0.125, f64::NEG_INFINITY];
        let report = check("out", &naive, &REFERENCE, &naive, false).unwrap();
        assert!((report.naive_error - 0.01).abs() < 1e-12);
        assert_eq!(report.error, report.naive_error);
        assert_eq!(report.factor, 2.0);
        assert!(report.atol > 0.0 && report.atol < 1e-6);
    }

    #[test]
    fn a_result_worse_than_twice_the_naive_error_fails() {
        let naive = [1.01, -2.5, 0.125, f64::NEG_INFINITY];
        let bad = [1.04, -2.5, 0.125, f64::NEG_INFINITY];
        let message = check("out", &bad, &REFERENCE, &naive, false).unwrap_err();
        assert!(
            message.contains("out") && message.contains("index 0"),
            "{message}"
        );
        // Soft-capping allows three times the naive error.
        let ok = [1.0299, -2.5, 0.125, f64::NEG_INFINITY];
        assert!(check("out", &ok, &REFERENCE, &naive, true).is_ok());
        assert!(check("out", &bad, &REFERENCE, &naive, true).is_err());
    }

    #[test]
    fn nan_anywhere_fails() {
        let nan = [1.0, f64::NAN, 0.125, f64::NEG_INFINITY];
        assert!(check("lse", &nan, &REFERENCE, &REFERENCE, false).is_err());
        assert!(check("lse", &REFERENCE, &REFERENCE, &nan, false).is_err());
        assert!(check("lse", &REFERENCE, &nan, &REFERENCE, false).is_err());
    }

    #[test]
    fn a_wrong_infinity_or_length_fails() {
        let finite = [1.0, -2.5, 0.125, -1e30];
        assert!(check("lse", &finite, &REFERENCE, &REFERENCE, false).is_err());
        assert!(check("lse", &finite[..3], &REFERENCE, &REFERENCE, false).is_err());
    }

    #[test]
    fn a_perfect_naive_leaves_only_the_f32_noise() {
        let reference = [1.0, 3.0];
        // 1 + 0.3 − 0.3 is 1 − 2^-24 in f32: atol = 2^-23.
        assert_eq!(f32_noise(&reference), 2f64.powi(-23));
        let tiny = [1.0 + 1e-7, 3.0];
        assert!(check("dq", &tiny, &reference, &reference, false).is_ok());
        let big = [1.0 + 1e-6, 3.0];
        assert!(check("dq", &big, &reference, &reference, false).is_err());
    }

    #[test]
    fn a_few_values_take_the_naive_error_as_at_least_its_rounding() {
        // bf16 at 0.077: ulp 2^-11, floor 2^-13.
        let reference = [0.077, -0.01];
        assert_eq!(rounding_floor(&reference, 7), 2f64.powi(-13));
        let lucky = [0.077 + 1e-6, -0.01];
        let got = [0.077 + 1e-4, -0.01];
        assert!(check("lse", &got, &reference, &lucky, false).is_err());
        let report = check_floored("lse", &got, &reference, &lucky, false, Some(7)).unwrap();
        assert_eq!(report.naive_floor, 2f64.powi(-13));
        // Many values: the naive's own max stands.
        let many = vec![0.077; FEW_VALUES];
        let (mut got, mut lucky) = (many.clone(), many.clone());
        got[0] += 1e-4;
        lucky[0] += 1e-6;
        assert!(check_floored("lse", &got, &many, &lucky, false, Some(7)).is_err());
    }
}
