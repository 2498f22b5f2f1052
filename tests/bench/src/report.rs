//! Output: one JSON object per result line on stdout (machine-readable), the human summary on
//! stderr.

use serde_json::Value;

/// Prints one result line. Every line carries `bench` and `result` so lines from several
/// runs can be concatenated and still be told apart.
pub fn emit(bench: &str, result: &str, mut fields: Value) {
    if let Some(map) = fields.as_object_mut() {
        map.insert("bench".into(), Value::from(bench));
        map.insert("result".into(), Value::from(result));
    }
    println!("{fields}");
}

/// Prints a line of the human summary.
pub fn say(line: impl AsRef<str>) {
    eprintln!("{}", line.as_ref());
}

/// Latency percentiles of a set of samples in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles; `samples_us` is sorted in place.
    pub fn of(samples_us: &mut [u64]) -> Percentiles {
        if samples_us.is_empty() {
            return Percentiles::default();
        }
        samples_us.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * samples_us.len() as f64).ceil() as usize).clamp(1, samples_us.len());
            samples_us[rank - 1] as f64 / 1000.0
        };
        Percentiles {
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }

    pub fn to_json(self) -> Value {
        serde_json::json!({"p50_ms": self.p50_ms, "p90_ms": self.p90_ms,
                           "p99_ms": self.p99_ms, "max_ms": self.max_ms})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<u64> = (1..=100).rev().map(|ms| ms * 1000).collect();
        let p = Percentiles::of(&mut samples);
        assert_eq!(p.p50_ms, 50.0);
        assert_eq!(p.p90_ms, 90.0);
        assert_eq!(p.p99_ms, 99.0);
        assert_eq!(p.max_ms, 100.0);
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    }
}
