//! Pure parts of the controller bench: the critical path implied by the simulated latencies,
//! the targets, and reading the controller's request counter from its /metrics text.

use std::{collections::BTreeMap, time::Duration};

/// Delayed steps of one Online resize in the simulated resizer (tests/sandbox/cluster
/// `storage::resize::next`): the controller-side resize finishes one class delay after it
/// started, and the node-side resize starts one class delay after that; starting the
/// controller resize and finishing the node resize happen at once on the next event.
pub const DELAYED_RESIZE_STEPS: u32 = 2;

/// The shortest possible wall time of one Online request whose `pvcs` PVCs resize at most
/// `parallelism` at a time (None: all together), when each resize step waits `resize_delay`.
///
/// Online mode restarts no pod and provisions no volume, so the pod-ready and PV-provision
/// delays are not on the path; the pause handshake, the orphan delete and the workload
/// recreation have no simulated latency. What is left is the resizes: `ceil(pvcs /
/// parallelism)` waves of `DELAYED_RESIZE_STEPS * resize_delay` each. All requests run at
/// once, so the run's critical path is that of one request.
pub fn critical_path(resize_delay: Duration, pvcs: u32, parallelism: Option<u32>) -> Duration {
    let waves = match parallelism {
        Some(p) if p > 0 => pvcs.div_ceil(p),
        _ => u32::from(pvcs > 0),
    };
    resize_delay * DELAYED_RESIZE_STEPS * waves
}

/// `volops_controller_api_requests_total` by label set (`verb=..,resource=..`) in a /metrics
/// text; None when the counter is not there.
pub fn api_requests_by_labels(metrics: &str) -> Option<BTreeMap<String, u64>> {
    let mut found = false;
    let mut by = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("volops_controller_api_requests_total") else {
            continue;
        };
        // Skip a longer name that shares the prefix (`..._total_created`).
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let (labels, value) = rest.rsplit_once(' ')?;
        let labels = labels
            .trim_start_matches('{')
            .trim_end_matches('}')
            .replace('"', "");
        *by.entry(labels).or_insert(0) += value.parse::<f64>().ok()? as u64;
        found = true;
    }
    found.then_some(by)
}

/// What was sent between two readings of the counter, by label set, largest first.
pub fn requests_between(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = after
        .iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(before.get(k).copied().unwrap_or(0))))
        .filter(|(_, v)| *v > 0)
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// Whether a measured figure meets its target.
pub fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

/// Targets of issue 9 for the controller.
pub const MAX_WALL_OVER_CRITICAL: f64 = 2.0;
pub const MIN_SPEEDUP_OVER_ONE: f64 = 4.0;
pub const MAX_RSS_MIB_10K: f64 = 128.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_path_counts_resize_waves() {
        let d = Duration::from_millis(1500);
        // A Redis cluster 3x2 has 6 PVCs.
        assert_eq!(critical_path(d, 6, None), Duration::from_secs(3));
        assert_eq!(critical_path(d, 6, Some(0)), Duration::from_secs(3));
        assert_eq!(critical_path(d, 6, Some(1)), Duration::from_secs(18));
        assert_eq!(critical_path(d, 6, Some(4)), Duration::from_secs(6));
        assert_eq!(critical_path(d, 6, Some(6)), Duration::from_secs(3));
        assert_eq!(critical_path(d, 6, Some(10)), Duration::from_secs(3));
        assert_eq!(critical_path(d, 0, Some(1)), Duration::ZERO);
        assert_eq!(critical_path(d, 0, None), Duration::ZERO);
    }

    #[test]
    fn api_request_counter_by_labels() {
        let text = "# HELP volops_controller_api_requests Requests\n\
                    # TYPE volops_controller_api_requests counter\n\
                    volops_controller_api_requests_total{verb=\"get\",resource=\"pods\"} 120\n\
                    volops_controller_api_requests_total{verb=\"patch\",resource=\"pods\"} 30\n\
                    volops_controller_api_requests_total_created{verb=\"get\",resource=\"pods\"} 1.7e9\n\
                    volops_controller_pvc_expansions_total{kind=\"RedisOpsRequest\"} 6\n# EOF\n";
        let by = api_requests_by_labels(text).unwrap();
        assert_eq!(by.get("verb=get,resource=pods"), Some(&120));
        assert_eq!(by.values().sum::<u64>(), 150);
        assert_eq!(api_requests_by_labels("# EOF\n"), None);
        let before: BTreeMap<String, u64> = [("verb=get,resource=pods".to_owned(), 100)].into();
        assert_eq!(
            requests_between(&before, &by),
            vec![
                ("verb=patch,resource=pods".to_owned(), 30),
                ("verb=get,resource=pods".to_owned(), 20)
            ]
        );
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(true), "PASS");
        assert_eq!(verdict(false), "MISS");
    }
}
