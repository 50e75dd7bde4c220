//! The UTC time of a run, for the JSON and its file name (no date crate
//! needed for one conversion).

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment in UTC, two ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utc {
    /// `2026-11-21T10:20:30Z`.
    pub iso: String,
    /// `20261121-102030`, for file names.
    pub stamp: String,
}

pub fn now() -> Utc {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    at(seconds)
}

/// `seconds` after the Unix epoch.
fn at(seconds: u64) -> Utc {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    Utc {
        iso: format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z"),
        stamp: format!("{year:04}{month:02}{day:02}-{h:02}{m:02}{s:02}"),
    }
}

/// Howard Hinnant's `civil_from_days`: the Gregorian date `days` after
/// 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_moments() {
        assert_eq!(at(0).iso, "1970-01-01T00:00:00Z");
        assert_eq!(at(1_700_000_000).iso, "2023-11-14T22:13:20Z");
        assert_eq!(at(951_782_400).iso, "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000).stamp, "20231114-221320");
    }
}
