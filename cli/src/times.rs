//! Times and durations: local time with its zone in tables, RFC 3339 in JSON and CSV.

use chrono::{DateTime, FixedOffset, Local, SecondsFormat, Utc};

/// Unix milliseconds in local time with the zone (`2026-12-02 01:21:07 +01:00`, or `UTC` at
/// offset zero), `-` when unset.
pub fn local(unix_ms: i64) -> String {
    at(unix_ms).map_or_else(
        || "-".to_string(),
        |at| in_zone(at, *at.with_timezone(&Local).offset()),
    )
}

/// Unix milliseconds in RFC 3339, UTC (`2026-12-02T00:21:07.250Z`); "" when unset.
pub fn rfc3339(unix_ms: i64) -> String {
    at(unix_ms)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A span of milliseconds in its two largest units: `45s`, `3m 12s`, `2h 5m`, `1d 4h`.
pub fn duration(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let units = [
        (secs / 86_400, "d"),
        (secs / 3600 % 24, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
    ];
    let first = units.iter().position(|(n, _)| *n > 0).unwrap_or(3);
    units[first..]
        .iter()
        .take(2)
        .filter(|(n, _)| *n > 0 || first == 3)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The instant of a Unix millisecond count, `None` when it is zero or negative (unset).
fn at(unix_ms: i64) -> Option<DateTime<Utc>> {
    (unix_ms > 0)
        .then(|| DateTime::from_timestamp_millis(unix_ms))
        .flatten()
}

/// `at` shown at offset `zone`, the zone written `UTC` or `+01:00`.
fn in_zone(at: DateTime<Utc>, zone: FixedOffset) -> String {
    let shown = at.with_timezone(&zone);
    let name = if zone.local_minus_utc() == 0 {
        "UTC".to_string()
    } else {
        shown.format("%:z").to_string()
    };
    format!("{} {name}", shown.format("%Y-%m-%d %H:%M:%S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEAP_DAY_MS: i64 = 951_782_400_000; // 2000-02-29 00:00:00 UTC

    #[test]
    fn local_times_name_their_zone() {
        let at = at(LEAP_DAY_MS + 250).unwrap();
        assert_eq!(
            in_zone(at, FixedOffset::east_opt(0).unwrap()),
            "2000-02-29 00:00:00 UTC"
        );
        assert_eq!(
            in_zone(at, FixedOffset::east_opt(3600).unwrap()),
            "2000-02-29 01:00:00 +01:00"
        );
        assert_eq!(
            in_zone(at, FixedOffset::west_opt(5 * 3600 + 1800).unwrap()),
            "2000-02-28 18:30:00 -05:30"
        );
        assert_eq!(local(0), "-");
        let shown = local(LEAP_DAY_MS);
        assert!(shown.starts_with("2000-02-"), "{shown}");
    }

    #[test]
    fn rfc3339_is_utc_with_milliseconds() {
        assert_eq!(rfc3339(LEAP_DAY_MS + 250), "2000-02-29T00:00:00.250Z");
        assert_eq!(rfc3339(1_767_225_599_000), "2025-12-31T23:59:59.000Z");
        assert_eq!(rfc3339(0), "");
    }

    #[test]
    fn durations_show_two_units() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(999), "0s");
        assert_eq!(duration(45_000), "45s");
        assert_eq!(duration(192_000), "3m 12s");
        assert_eq!(duration(180_000), "3m");
        assert_eq!(duration((2 * 3600 + 5 * 60 + 7) * 1000), "2h 5m");
        assert_eq!(duration((2 * 3600 + 7) * 1000), "2h");
        assert_eq!(duration((86_400 + 4 * 3600 + 59) * 1000), "1d 4h");
        assert_eq!(duration(-5), "0s");
    }
}
