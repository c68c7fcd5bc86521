//! Numbers as the dashboard shows them: short, fixed-width friendly, and never misleading
//! (a rate below one per second is not shown as 0).

use std::time::Duration;

/// Events per second over an interval.
pub fn per_second(count: u64, interval: Duration) -> f64 {
    let seconds = interval.as_secs_f64();
    if seconds <= 0.0 {
        0.0
    } else {
        count as f64 / seconds
    }
}

/// `0`, `0.5`, `12`, `1.2k`, `3.4M`, `5.6G`
pub fn rate(value: f64) -> String {
    if value <= 0.0 {
        "0".to_string()
    } else if value < 10.0 {
        let text = format!("{value:.1}");
        text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
    } else {
        count(value.round() as u64)
    }
}

/// A percentage in at most 5 characters: `0`, `0.5`, `9.9`, `12`, `250`, `9999`, `10k`
pub fn percent(value: f64) -> String {
    if value < 9.95 {
        rate(value)
    } else if value < 9999.5 {
        format!("{value:.0}")
    } else {
        count(value.round() as u64)
    }
}

/// A count and its noun, singular for one: `1 process`, `2 processes`, `0 threads`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `999`, `1.2k`, `12k`, `3.4M`
pub fn count(value: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1_000_000_000_000, "T"),
        (1_000_000_000, "G"),
        (1_000_000, "M"),
        (1_000, "k"),
    ];
    for (unit, suffix) in UNITS {
        if value >= unit {
            let scaled = value as f64 / unit as f64;
            return if scaled < 10.0 {
                format!("{scaled:.1}{suffix}")
            } else {
                format!("{:.0}{suffix}", scaled.floor())
            };
        }
    }
    value.to_string()
}

/// `512 B`, `1.5 KiB`, `12 MiB`, `3.0 GiB`
pub fn bytes(value: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (unit, suffix) in UNITS {
        if value >= unit {
            let scaled = value as f64 / unit as f64;
            return if scaled < 10.0 {
                format!("{scaled:.1} {suffix}")
            } else {
                format!("{:.0} {suffix}", scaled.floor())
            };
        }
    }
    format!("{value} B")
}

/// Signed bytes: `-1.5 MiB`
pub fn signed_bytes(value: i64) -> String {
    if value < 0 {
        format!("-{}", bytes(value.unsigned_abs()))
    } else {
        bytes(value as u64)
    }
}

/// A duration in nanoseconds, with three significant digits (up to a second):
/// `850ns`, `1.63µs`, `12.4µs`, `123µs`, `1.25ms`, `12.3ms`, `123ms`, `1.20s`
pub fn nanos(ns: u64) -> String {
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    let (value, unit) = match ns {
        // The limits are where rounding would carry into a fourth digit.
        ..999_500 => (ns as f64 / 1e3, "µs"),
        999_500..999_500_000 => (ns as f64 / 1e6, "ms"),
        _ => return format!("{:.2}s", ns as f64 / 1e9),
    };
    if value < 9.995 {
        format!("{value:.2}{unit}")
    } else if value < 99.95 {
        format!("{value:.1}{unit}")
    } else {
        format!("{value:.0}{unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(rate(0.0), "0");
        assert_eq!(rate(0.5), "0.5");
        assert_eq!(rate(2.0), "2");
        assert_eq!(rate(9.96), "10");
        assert_eq!(rate(12.4), "12");
        assert_eq!(rate(1234.0), "1.2k");
        assert_eq!(rate(2_100_000.0), "2.1M");
        assert_eq!(per_second(5, Duration::from_millis(500)), 10.0);
        assert_eq!(per_second(5, Duration::ZERO), 0.0);
    }

    #[test]
    fn percentages_fit_five_characters() {
        assert_eq!(percent(0.0), "0");
        assert_eq!(percent(0.51), "0.5");
        assert_eq!(percent(9.94), "9.9");
        assert_eq!(percent(9.96), "10");
        assert_eq!(percent(99.6), "100");
        assert_eq!(percent(250.0), "250");
        assert_eq!(percent(9999.4), "9999");
        assert_eq!(percent(12_345.0), "12k");
    }

    #[test]
    fn counts_and_bytes() {
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1.0k");
        assert_eq!(count(12_345), "12k");
        assert_eq!(count(3_456_789), "3.5M");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12 << 20), "12 MiB");
        assert_eq!(signed_bytes(-1536), "-1.5 KiB");
    }

    #[test]
    fn durations() {
        assert_eq!(nanos(850), "850ns");
        assert_eq!(nanos(1_630), "1.63µs");
        assert_eq!(nanos(12_400), "12.4µs");
        assert_eq!(nanos(123_456), "123µs");
        assert_eq!(nanos(1_250_000), "1.25ms");
        assert_eq!(nanos(12_345_678), "12.3ms");
        assert_eq!(nanos(123_456_789), "123ms");
        assert_eq!(nanos(1_200_000_000), "1.20s");
        // Rounding never shows a fourth digit.
        assert_eq!(nanos(9_999), "10.0µs");
        assert_eq!(nanos(999_999), "1.00ms");
        assert_eq!(nanos(999_999_999), "1.00s");
    }

    #[test]
    fn one_is_singular() {
        assert_eq!(plural(1, "process", "processes"), "1 process");
        assert_eq!(plural(0, "process", "processes"), "0 processes");
        assert_eq!(plural(2, "thread", "threads"), "2 threads");
    }
}
