//! OpenMetrics for the webhook: decisions by kind/operation/allowed, latency, cache sizes, and
//! the serving certificate's expiry (docs/RUNBOOK.md).

use std::borrow::Cow;

use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram};
use prometheus_client::registry::Registry;

use crate::caches::Caches;

/// Content type of the `/metrics` answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Content type of the Prometheus text format, for scrapers that ask for it.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for the Prometheus text format rather than OpenMetrics (the
/// default, and Prometheus's first choice): `promtool check metrics` reads only the former.
pub fn wants_text_format(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("text/plain") && !a.contains("application/openmetrics-text"))
}

/// OpenMetrics text as the Prometheus text format 0.0.4: a counter family is named after its
/// `_total` samples there, and there is no `# EOF` or `# UNIT`.
pub fn to_text_format(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// Label values are static for the kinds and operations the webhook knows (no allocation per
/// review), owned for anything else.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
    pub kind: Cow<'static, str>,
    pub operation: Cow<'static, str>,
    pub allowed: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DenialLabels {
    pub kind: Cow<'static, str>,
    pub rule: &'static str,
}

const KNOWN: [&str; 10] = [
    "RedisOpsRequest",
    "ZooKeeperOpsRequest",
    "Redis",
    "ZooKeeper",
    "PersistentVolumeClaim",
    "VolumeExpansionPolicy",
    "CREATE",
    "UPDATE",
    "DELETE",
    "CONNECT",
];

/// `value` as a label value, static when it is one of the known kinds or operations.
pub fn label(value: &str) -> Cow<'static, str> {
    match KNOWN.iter().find(|k| **k == value) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(value.to_owned()),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub cache: &'static str,
}

/// Why the server refused a request or closed a connection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

pub struct Metrics {
    registry: Registry,
    /// Requests answered without a decision because of a limit (webhook/README.md, "Limits").
    pub refused: Family<ReasonLabels, Counter>,
    /// Open HTTPS connections (TLS handshakes included).
    pub connections: Gauge,
    /// Connections the server closed or refused, by reason.
    pub connections_closed: Family<ReasonLabels, Counter>,
    /// Bytes of admission review bodies held in memory now (`--max-body-memory`).
    pub body_memory: Gauge,
    pub requests: Family<RequestLabels, Counter>,
    /// Denials by the rule that denied (the decision log line is at debug level).
    pub denials: Family<DenialLabels, Counter>,
    pub latency: Histogram,
    pub cache_objects: Family<CacheLabels, Gauge>,
    /// notAfter (Unix seconds) of the serving certificate loaded now; tls.rs updates it on reload.
    pub certificate_expiry: Gauge,
}

/// Latency buckets from 100 µs to ~100 ms: admission decisions are sub-millisecond.
fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 11)
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("volops_webhook");
        let requests = Family::<RequestLabels, Counter>::default();
        let denials = Family::<DenialLabels, Counter>::default();
        let latency = Histogram::new(latency_buckets());
        let cache_objects = Family::<CacheLabels, Gauge>::default();
        let refused = Family::<ReasonLabels, Counter>::default();
        let connections = Gauge::default();
        let connections_closed = Family::<ReasonLabels, Counter>::default();
        let body_memory = Gauge::default();
        let certificate_expiry = Gauge::default();
        registry.register("admission_requests", "Admission decisions", requests.clone());
        registry.register(
            "admission_denials",
            "Admission denials by the rule that denied",
            denials.clone(),
        );
        registry.register(
            "admission_duration_seconds",
            "Time to parse, decide and encode one admission review",
            latency.clone(),
        );
        registry.register(
            "cache_objects",
            "Objects held in each watch cache",
            cache_objects.clone(),
        );
        registry.register(
            "admission_requests_refused",
            "Admission requests answered without a decision because of a limit",
            refused.clone(),
        );
        registry.register("connections", "Open HTTPS connections", connections.clone());
        registry.register(
            "connections_closed",
            "HTTPS connections the server closed or refused, by reason",
            connections_closed.clone(),
        );
        registry.register(
            "body_memory_bytes",
            "Bytes of admission review bodies held in memory",
            body_memory.clone(),
        );
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate currently loaded, in seconds since the Unix epoch",
            certificate_expiry.clone(),
        );
        Self {
            registry,
            refused,
            connections,
            connections_closed,
            body_memory,
            requests,
            denials,
            latency,
            cache_objects,
            certificate_expiry,
        }
    }

    pub fn count_refused(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn count_closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// The OpenMetrics text, with cache sizes taken now.
    pub fn render(&self, caches: &Caches) -> Result<String, std::fmt::Error> {
        for (cache, n) in caches.sizes() {
            self.cache_objects
                .get_or_create(&CacheLabels { cache })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_counters_after_their_samples() {
        let om = "# HELP x_requests Requests.\n# TYPE x_requests counter\nx_requests_total{a=\"b\"} 2\n\
                  # HELP x_open Open.\n# TYPE x_open gauge\nx_open 1\n# UNIT x_open seconds\n# EOF\n";
        assert_eq!(
            to_text_format(om),
            "# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\nx_requests_total{a=\"b\"} 2\n\
             # HELP x_open Open.\n# TYPE x_open gauge\nx_open 1\n"
        );
        assert!(wants_text_format(Some("text/plain; version=0.0.4")));
        assert!(!wants_text_format(None));
        assert!(!wants_text_format(Some("*/*")));
        assert!(!wants_text_format(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
    }
}
