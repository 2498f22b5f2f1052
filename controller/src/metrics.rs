//! Prometheus metrics (prometheus-client, explicit registry, OpenMetrics text).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub kind: String,
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub kind: String,
    pub step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn step_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 16))
}

/// Every metric the controller exports.
pub struct Metrics {
    pub registry: Registry,
    /// Ops requests that entered a phase, by kind and phase.
    pub ops_phase: Family<PhaseLabels, Counter>,
    /// Wall time of each finished step (from the previous step's end).
    pub step_duration: HistogramFamily<StepLabels>,
    /// PVC resize requests patched.
    pub pvc_expansions: Family<KindLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// Requests the controller sent to the API server.
    pub api_requests: Family<MethodLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("volops_controller");
        let ops_phase = Family::<PhaseLabels, Counter>::default();
        let step_duration: HistogramFamily<StepLabels> = Family::new_with_constructor(step_histogram);
        let pvc_expansions = Family::<KindLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let api_requests = Family::<MethodLabels, Counter>::default();
        registry.register(
            "ops_phase",
            "Ops requests that entered a phase",
            ops_phase.clone(),
        );
        registry.register(
            "step_duration_seconds",
            "Duration of finished steps",
            step_duration.clone(),
        );
        registry.register(
            "pvc_expansions",
            "PVC resize requests patched",
            pvc_expansions.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconcile errors by kind and error",
            reconcile_errors.clone(),
        );
        registry.register(
            "api_requests",
            "Requests sent to the Kubernetes API server",
            api_requests.clone(),
        );
        Self {
            registry,
            ops_phase,
            step_duration,
            pvc_expansions,
            reconcile_errors,
            api_requests,
        }
    }
}

impl Metrics {
    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Total API requests sent so far.
    pub fn api_requests_total(&self) -> u64 {
        ["GET", "POST", "PUT", "PATCH", "DELETE"]
            .iter()
            .map(|m| {
                self.api_requests
                    .get_or_create(&MethodLabels {
                        method: (*m).to_owned(),
                    })
                    .get()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_registered_families() {
        let m = Metrics::default();
        m.ops_phase
            .get_or_create(&PhaseLabels {
                kind: "Redis".into(),
                phase: "Successful".into(),
            })
            .inc();
        m.api_requests
            .get_or_create(&MethodLabels {
                method: "PATCH".into(),
            })
            .inc_by(3);
        m.api_requests
            .get_or_create(&MethodLabels { method: "GET".into() })
            .inc();
        let text = m.encode();
        assert!(
            text.contains("volops_controller_ops_phase_total{kind=\"Redis\",phase=\"Successful\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("volops_controller_api_requests_total{method=\"PATCH\"} 3"),
            "{text}"
        );
        assert_eq!(m.api_requests_total(), 4);
    }
}
