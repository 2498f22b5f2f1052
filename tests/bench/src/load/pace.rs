//! The open-loop schedule (pure): request `i` is due at `i / rate` seconds after the start,
//! whatever happened to the requests before it.

use std::time::Duration;

/// When request `i` is due, from the start.
pub fn due_at(i: u64, rate_per_s: f64) -> Duration {
    Duration::from_secs_f64(i as f64 / rate_per_s)
}

/// How many requests are due `elapsed` after the start (request 0 is due at once).
pub fn due_by(elapsed: Duration, rate_per_s: f64) -> u64 {
    (elapsed.as_secs_f64() * rate_per_s).floor() as u64 + 1
}

/// Requests in a run of `duration` at `rate_per_s` (at least one).
pub fn total(duration: Duration, rate_per_s: f64) -> u64 {
    ((duration.as_secs_f64() * rate_per_s).ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_evenly_spaced() {
        assert_eq!(due_at(0, 1000.0), Duration::ZERO);
        assert_eq!(due_at(1, 1000.0), Duration::from_millis(1));
        assert_eq!(due_at(2500, 1000.0), Duration::from_millis(2500));
        assert_eq!(due_at(3, 4.0), Duration::from_millis(750));
    }

    #[test]
    fn due_counts_agree_with_the_schedule() {
        let rate = 2000.0;
        assert_eq!(due_by(Duration::ZERO, rate), 1);
        assert_eq!(due_by(Duration::from_micros(499), rate), 1);
        assert_eq!(due_by(Duration::from_micros(500), rate), 2);
        assert_eq!(due_by(Duration::from_secs(1), rate), 2001);
        // Every request counted as due has its due time at or before `elapsed`.
        for us in [0u64, 1, 700, 12_345, 999_999] {
            let elapsed = Duration::from_micros(us);
            let n = due_by(elapsed, rate);
            assert!(due_at(n - 1, rate) <= elapsed);
            assert!(due_at(n, rate) > elapsed);
        }
    }

    #[test]
    fn total_covers_the_duration() {
        assert_eq!(total(Duration::from_secs(5), 1000.0), 5000);
        assert_eq!(total(Duration::from_millis(300), 10.0), 3);
        assert_eq!(total(Duration::ZERO, 10.0), 1);
    }
}
