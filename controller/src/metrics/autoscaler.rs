//! The storage autoscaler's metrics, `volops_autoscaler_*` (their own registry, encoded after
//! the controller's): each decision by outcome, each clamp by limit, the usage each autoscaler
//! saw last (a ratio), and the time from the threshold first seen crossed to the request.
//! An autoscaler's usage series goes when it is gone, and all of them when this replica stops
//! leading, as the requests' progress series do.

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// A decision of one autoscaler kind: `outcome` is the decision's reason (`Expand`,
/// `BelowThreshold`, `RequestActive`, `MinInterval`, `AtLimit`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub kind: String,
    pub outcome: String,
}

/// A clamp: which limit lowered the size (`upperBound`, `maxSize`, `maxIncrease`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClampLabels {
    pub kind: String,
    pub limit: String,
}

/// One autoscaler. `autoscaler_namespace`, not `namespace`: Prometheus's own `namespace`
/// target label is the controller's.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AutoscalerLabels {
    pub kind: String,
    pub autoscaler_namespace: String,
    pub autoscaler: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

type RatioGauge = Gauge<f64, AtomicU64>;

fn delay_histogram() -> Histogram {
    // 1 s .. ~9 h: one interval to many hours of back-off and minimum intervals.
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

pub struct AutoscalerMetrics {
    pub registry: Registry,
    pub decisions: Family<DecisionLabels, Counter>,
    pub clamps: Family<ClampLabels, Counter>,
    /// The fullest volume's used/capacity at the last sample, per autoscaler.
    pub usage: Family<AutoscalerLabels, RatioGauge>,
    /// Seconds from the threshold first seen crossed to the request created.
    pub threshold_to_request: Family<KindLabels, Histogram, fn() -> Histogram>,
    /// Usage reads that failed (a node's kubelet or Prometheus not answering).
    pub usage_errors: Family<KindLabels, Counter>,
}

impl Default for AutoscalerMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("volops_autoscaler");
        let decisions = Family::<DecisionLabels, Counter>::default();
        let clamps = Family::<ClampLabels, Counter>::default();
        let usage = Family::<AutoscalerLabels, RatioGauge>::default();
        let threshold_to_request: Family<KindLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(delay_histogram);
        let usage_errors = Family::<KindLabels, Counter>::default();
        registry.register("decisions", "Autoscaler decisions by outcome", decisions.clone());
        registry.register(
            "clamps",
            "Expansions whose size a limit lowered, by limit",
            clamps.clone(),
        );
        registry.register(
            "usage_ratio",
            "Used over capacity of the fullest volume of the autoscaler's database, last sample",
            usage.clone(),
        );
        registry.register(
            "threshold_to_request_seconds",
            "Time from the usage threshold first seen crossed to the expansion request",
            threshold_to_request.clone(),
        );
        registry.register(
            "usage_read_errors",
            "Usage reads that failed (a kubelet or Prometheus not answering)",
            usage_errors.clone(),
        );
        Self {
            registry,
            decisions,
            clamps,
            usage,
            threshold_to_request,
            usage_errors,
        }
    }
}

impl AutoscalerMetrics {
    pub fn decided(&self, kind: &str, outcome: &str) {
        self.decisions
            .get_or_create(&DecisionLabels {
                kind: kind.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Counts a clamp; `source` is the limit's text (`upperBound 2Gi`, `VolumeExpansionPolicy
    /// "x" maxSize 3Gi`), labelled by the limit's field.
    pub fn clamped(&self, kind: &str, source: &str) {
        let limit = ["maxIncrease", "maxSize", "upperBound"]
            .into_iter()
            .find(|f| source.contains(f))
            .unwrap_or("other");
        self.clamps
            .get_or_create(&ClampLabels {
                kind: kind.into(),
                limit: limit.into(),
            })
            .inc();
    }

    pub fn saw_usage(&self, labels: &AutoscalerLabels, ratio: f64) {
        self.usage.get_or_create(labels).set(ratio);
    }

    pub fn forget(&self, labels: &AutoscalerLabels) {
        self.usage.remove(labels);
    }

    /// Removes every autoscaler's series (this replica no longer acts on them).
    pub fn clear(&self) {
        self.usage.clear();
    }

    pub fn requested_after(&self, kind: &str, seconds: f64) {
        self.threshold_to_request
            .get_or_create(&KindLabels { kind: kind.into() })
            .observe(seconds.max(0.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(m: &AutoscalerMetrics) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &m.registry);
        out
    }

    #[test]
    fn decisions_clamps_usage_and_delay_are_exported_under_their_prefix() {
        let m = AutoscalerMetrics::default();
        m.decided("RedisAutoscaler", "Expand");
        m.clamped("RedisAutoscaler", "VolumeExpansionPolicy \"p\" maxSize 3Gi");
        m.clamped("RedisAutoscaler", "upperBound 2Gi");
        let labels = AutoscalerLabels {
            kind: "RedisAutoscaler".into(),
            autoscaler_namespace: "demo".into(),
            autoscaler: "rd-as".into(),
        };
        m.saw_usage(&labels, 0.85);
        m.requested_after("RedisAutoscaler", 3.0);
        let text = encode(&m);
        for line in [
            "volops_autoscaler_decisions_total{kind=\"RedisAutoscaler\",outcome=\"Expand\"} 1",
            "volops_autoscaler_clamps_total{kind=\"RedisAutoscaler\",limit=\"maxSize\"} 1",
            "volops_autoscaler_clamps_total{kind=\"RedisAutoscaler\",limit=\"upperBound\"} 1",
            "volops_autoscaler_usage_ratio{kind=\"RedisAutoscaler\",autoscaler_namespace=\"demo\",autoscaler=\"rd-as\"} 0.85",
            "volops_autoscaler_threshold_to_request_seconds_count{kind=\"RedisAutoscaler\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing: {text}");
        }
        m.forget(&labels);
        assert!(!encode(&m).contains("rd-as"));
    }
}
