//! kubelet's volume metrics (`kubelet_volume_stats_*`, its `/metrics`) in the Prometheus text
//! format, written as the Go client writes them.

use super::fs::FsStats;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The Content-Type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One gauge family: name, help text, and the value it reports of a measurement.
type Family = (&'static str, &'static str, fn(&FsStats) -> u64);

/// The families in the order the Go client writes them (sorted by name).
const FAMILIES: [Family; 6] = [
    (
        "kubelet_volume_stats_available_bytes",
        "Number of available bytes in the volume",
        |s| s.available_bytes,
    ),
    (
        "kubelet_volume_stats_capacity_bytes",
        "Capacity in bytes of the volume",
        |s| s.capacity_bytes,
    ),
    (
        "kubelet_volume_stats_inodes",
        "Maximum number of inodes in the volume",
        |s| s.inodes,
    ),
    (
        "kubelet_volume_stats_inodes_free",
        "Number of free inodes in the volume",
        |s| s.inodes_free,
    ),
    (
        "kubelet_volume_stats_inodes_used",
        "Number of used inodes in the volume",
        |s| s.inodes_used,
    ),
    (
        "kubelet_volume_stats_used_bytes",
        "Number of used bytes in the volume",
        |s| s.used_bytes,
    ),
];

/// The volume stats of claims, keyed by (namespace, claim): one series per claim however
/// many pods mount it, as kubelet's collector reports them.
pub type ClaimStats = BTreeMap<(String, String), FsStats>;

/// The exposition text of `claims` (families without samples are left out, as the Go client
/// does).
pub fn render(claims: &ClaimStats) -> String {
    let mut out = String::new();
    if claims.is_empty() {
        return out;
    }
    for (name, help, value) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} [ALPHA] {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for ((ns, claim), stats) in claims {
            let _ = writeln!(
                out,
                "{name}{{namespace=\"{}\",persistentvolumeclaim=\"{}\"}} {}",
                escape(ns),
                escape(claim),
                go_float(value(stats))
            );
        }
    }
    out
}

/// A label value escaped for the text format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `strconv.FormatFloat(v, 'g', -1, 64)`: exponent notation from 1e+06 on.
pub fn go_float(v: u64) -> String {
    if v < 1_000_000 {
        return v.to_string();
    }
    let sci = format!("{:e}", v as f64);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    format!("{mantissa}e+{exp:0>2}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fs::measure;

    #[test]
    fn numbers_read_as_gos() {
        assert_eq!(go_float(0), "0");
        assert_eq!(go_float(999_999), "999999");
        assert_eq!(go_float(1_000_000), "1e+06");
        assert_eq!(go_float(1 << 30), "1.073741824e+09");
        assert_eq!(go_float(10_737_418_240), "1.073741824e+10");
    }

    #[test]
    fn every_family_has_one_series_per_claim() {
        let mut claims = ClaimStats::new();
        claims.insert(("demo".into(), "data-rd-0".into()), measure(1 << 30, 1 << 29));
        claims.insert(("demo".into(), "data-rd-1".into()), measure(1 << 30, 1 << 20));
        let text = render(&claims);
        assert!(text.contains("# TYPE kubelet_volume_stats_used_bytes gauge\n"));
        assert!(text.contains(
            "kubelet_volume_stats_used_bytes{namespace=\"demo\",persistentvolumeclaim=\"data-rd-0\"} 5.36870912e+08\n"
        ));
        let series = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(series, 12);
        assert_eq!(render(&ClaimStats::new()), "");
    }
}
