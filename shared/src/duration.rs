//! Go `time.Duration` strings as used in `spec.timeout` (`5m`, `3000s`, `1h30m`, `500ms`).
//!
//! Our own parser, not `kube::core::Duration` (kube 5.0): tenants write `spec.timeout`, and
//! kube's parser panics on some of it (`5m-3s`, or past `u64` seconds like `99999999999999999999h`,
//! in `std::time::Duration::mul_f64`) and takes what Go's `time.ParseDuration` refuses (`""` as
//! zero, `5m0`, `+-5m`). The tests below pin each case.

use std::time::Duration;

/// Why a timeout is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time: invalid duration {0:?}; write it like 5m, 90s or 1h30m")]
pub struct DurationError(pub String);

/// Parses a non-negative Go duration: a sequence of decimal numbers with units
/// `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`. A bare `0` is allowed.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(s.to_owned());
    let body = s.strip_prefix('+').unwrap_or(s);
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() {
        return Err(err());
    }
    let mut total = 0f64;
    let mut rest = body;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_len == 0 {
            return Err(err());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1e0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        total += value * nanos_per;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(err());
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("3000s"), Ok(Duration::from_secs(3000)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        for bad in ["", "5", "m", "5x", "-5m", "5m3", "1..5s", "5m0", "+-5m", "5m+3s"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // Errors, not panics, where kube's parser panics.
        let huge = format!("{}h", "1".repeat(400));
        for bad in ["5m-3s", "99999999999999999999h", huge.as_str()] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse("5").unwrap_err().to_string(),
            "time: invalid duration \"5\"; write it like 5m, 90s or 1h30m"
        );
    }
}
