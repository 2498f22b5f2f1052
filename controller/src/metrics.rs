//! Prometheus metrics (prometheus-client, explicit registry, OpenMetrics text). The alerts of
//! the chart's PrometheusRule read them (docs/RUNBOOK.md).

pub mod autoscaler;
pub mod progress;
pub mod text_format;

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
use volops_shared::{api::OpsRequestPhase, descriptor::DatabaseKind};

pub use autoscaler::AutoscalerMetrics;
pub use progress::{Progress, Snapshot};
pub use text_format::{TEXT_CONTENT_TYPE, to_text_format, wants_text_format};

/// The phases the controller writes, exported at 0 from the start: an alert on
/// `increase(...{phase="Failed"}[..])` then sees a request's first failure too.
const PHASES: [OpsRequestPhase; 4] = [
    OpsRequestPhase::Progressing,
    OpsRequestPhase::Successful,
    OpsRequestPhase::Failed,
    OpsRequestPhase::Skipped,
];

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

/// An API request as the API server's own metrics name it: verb (get, list, watch, create,
/// patch, update, delete) and resource (with `/subresource`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
    pub resource: String,
}

impl RequestLabels {
    /// Classifies a request by method, path and query (pure; kube's request-info rules).
    pub fn of(method: &str, path: &str, query: Option<&str>) -> Self {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        // /api/v1/... or /apis/group/version/...
        let rest: &[&str] = match segments.as_slice() {
            ["api", _, rest @ ..] => rest,
            ["apis", _, _, rest @ ..] => rest,
            _ => &[],
        };
        let rest = match rest {
            ["namespaces", _, tail @ ..] if !tail.is_empty() => tail,
            other => other,
        };
        let (resource, named) = match rest {
            [] => (String::new(), false),
            [r] => ((*r).to_owned(), false),
            [r, _] => ((*r).to_owned(), true),
            [r, _, sub, ..] => (format!("{r}/{sub}"), true),
        };
        let watch = query.is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
        let verb = match (method, named) {
            ("GET", _) if watch => "watch",
            ("GET", true) => "get",
            ("GET", false) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", _) => "delete",
            (other, _) => other,
        };
        Self {
            verb: verb.to_ascii_lowercase(),
            resource,
        }
    }
}

/// Content type of the `/metrics` answer (OpenMetrics, unless the scraper asks for text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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
    pub api_requests: Family<RequestLabels, Counter>,
    /// Objects (views) in each watch cache while leading.
    pub cache_objects: Family<CacheLabels, Gauge>,
    /// 1 once every watch cache of this leadership term has its first list, else 0.
    pub caches_synced: Gauge,
    /// 1 while this replica runs the controllers (holds the Lease, or runs without election).
    pub leader: Gauge,
    /// Requests in flight: current step's start and deadline, database paused since.
    pub progress: Progress,
    /// `volops_autoscaler_*`, in their own registry (another prefix).
    pub autoscaler: AutoscalerMetrics,
}

/// A watch cache by name (e.g. `redises/persistentvolumeclaims`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub cache: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("volops_controller");
        let ops_phase = Family::<PhaseLabels, Counter>::default();
        let step_duration: HistogramFamily<StepLabels> = Family::new_with_constructor(step_histogram);
        let pvc_expansions = Family::<KindLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let api_requests = Family::<RequestLabels, Counter>::default();
        let cache_objects = Family::<CacheLabels, Gauge>::default();
        let caches_synced = Gauge::default();
        let leader = Gauge::default();
        let progress = Progress::default();
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
        registry.register(
            "cache_objects",
            "Objects in each watch cache while leading",
            cache_objects.clone(),
        );
        registry.register(
            "caches_synced",
            "1 once every watch cache has its first list",
            caches_synced.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica runs the controllers (holds the Lease or runs without election)",
            leader.clone(),
        );
        progress.register(&mut registry);
        for kind in DatabaseKind::ALL.map(DatabaseKind::ops_kind) {
            for phase in PHASES {
                let _created_at_zero = ops_phase.get_or_create(&PhaseLabels {
                    kind: kind.into(),
                    phase: phase.as_str().into(),
                });
            }
            let _created_at_zero = pvc_expansions.get_or_create(&KindLabels { kind: kind.into() });
        }
        Self {
            registry,
            ops_phase,
            step_duration,
            pvc_expansions,
            reconcile_errors,
            api_requests,
            cache_objects,
            caches_synced,
            leader,
            progress,
            autoscaler: AutoscalerMetrics::default(),
        }
    }
}

impl Metrics {
    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        let _ = encode_registry(&mut out, &self.autoscaler.registry);
        let _ = encode_eof(&mut out);
        out
    }

    /// Total API requests sent so far.
    pub fn api_requests_total(&self) -> u64 {
        let text = self.encode();
        text.lines()
            .filter(|l| l.starts_with("volops_controller_api_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
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
                kind: "RedisOpsRequest".into(),
                phase: "Successful".into(),
            })
            .inc();
        m.api_requests
            .get_or_create(&RequestLabels::of(
                "PATCH",
                "/api/v1/namespaces/db/persistentvolumeclaims/data-rd-0",
                None,
            ))
            .inc_by(3);
        m.api_requests
            .get_or_create(&RequestLabels::of("GET", "/api/v1/pods", Some("watch=true")))
            .inc();
        let text = m.encode();
        assert!(
            text.contains(
                "volops_controller_ops_phase_total{kind=\"RedisOpsRequest\",phase=\"Successful\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "volops_controller_api_requests_total{verb=\"patch\",resource=\"persistentvolumeclaims\"} 3"
            ),
            "{text}"
        );
        assert_eq!(m.api_requests_total(), 4);
    }

    #[test]
    fn failures_and_expansions_are_exported_at_zero_before_the_first() {
        let text = Metrics::default().encode();
        for kind in ["RedisOpsRequest", "ZooKeeperOpsRequest"] {
            for phase in ["Progressing", "Successful", "Failed", "Skipped"] {
                let series =
                    format!("volops_controller_ops_phase_total{{kind=\"{kind}\",phase=\"{phase}\"}} 0");
                assert!(text.contains(&series), "{series} missing: {text}");
            }
            let series = format!("volops_controller_pvc_expansions_total{{kind=\"{kind}\"}} 0");
            assert!(text.contains(&series), "{series} missing: {text}");
        }
        assert!(text.contains("volops_controller_leader 0\n"), "{text}");
    }

    #[test]
    fn requests_in_flight_are_in_the_registry() {
        let m = Metrics::default();
        m.progress.observe(&Snapshot {
            kind: "ZooKeeperOpsRequest".into(),
            database_kind: "ZooKeeper".into(),
            namespace: "db".into(),
            name: "grow".into(),
            database: "zk".into(),
            step: "Expand".into(),
            started: Some(10.0),
            deadline: Some(20.0),
            paused_since: Some(5.0),
        });
        let text = m.encode();
        for family in [
            "step_started_timestamp_seconds",
            "step_deadline_timestamp_seconds",
            "database_paused_since_timestamp_seconds",
        ] {
            assert!(
                text.contains(&format!("# TYPE volops_controller_{family} gauge")),
                "{text}"
            );
        }
    }

    #[test]
    fn classifies_requests_like_the_api_server() {
        let cases = [
            (
                "GET",
                "/api/v1/namespaces/db/persistentvolumeclaims",
                None,
                "list",
                "persistentvolumeclaims",
            ),
            (
                "GET",
                "/api/v1/namespaces/db/persistentvolumeclaims",
                Some("labelSelector=a&watch=true"),
                "watch",
                "persistentvolumeclaims",
            ),
            (
                "GET",
                "/api/v1/persistentvolumeclaims",
                Some("limit=500"),
                "list",
                "persistentvolumeclaims",
            ),
            (
                "GET",
                "/apis/kubedb.com/v1/namespaces/db/redises/rd",
                None,
                "get",
                "redises",
            ),
            (
                "PATCH",
                "/apis/ops.kubedb.com/v1alpha1/namespaces/db/redisopsrequests/x/status",
                None,
                "patch",
                "redisopsrequests/status",
            ),
            (
                "POST",
                "/apis/events.k8s.io/v1/namespaces/db/events",
                None,
                "create",
                "events",
            ),
            (
                "DELETE",
                "/apis/apps/v1/namespaces/db/statefulsets/rd-shard0",
                None,
                "delete",
                "statefulsets",
            ),
            (
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/x/leases/volops",
                None,
                "update",
                "leases",
            ),
            ("GET", "/api/v1/namespaces/db", None, "get", "namespaces"),
            ("GET", "/api/v1/namespaces", None, "list", "namespaces"),
        ];
        for (method, path, query, verb, resource) in cases {
            let got = RequestLabels::of(method, path, query);
            assert_eq!(
                (got.verb.as_str(), got.resource.as_str()),
                (verb, resource),
                "{method} {path}"
            );
        }
    }
}
