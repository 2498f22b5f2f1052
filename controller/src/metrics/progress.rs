//! Requests in flight as gauges of Unix timestamps: when the current step started, when
//! `spec.timeout` runs out for it, and since when the request holds its database paused. The
//! alerts compare them with `time()` (docs/RUNBOOK.md). A request's series go when it is over,
//! and all of them when this replica stops leading (a follower reports nothing in flight).

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, atomic::AtomicU64},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge},
    registry::Registry,
};

/// One request's current step. `request_namespace`, not `namespace`: Prometheus's own
/// `namespace` target label is the controller's.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InFlightLabels {
    pub kind: String,
    pub request_namespace: String,
    pub request: String,
    pub step: String,
}

/// The database a request holds paused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PausedLabels {
    pub kind: String,
    pub request_namespace: String,
    pub request: String,
    pub database: String,
}

type TimeGauge = Gauge<f64, AtomicU64>;

/// Where one request stands, as a reconcile sees it (times in Unix seconds).
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The ops request's kind (`RedisOpsRequest`), as the other metrics label it.
    pub kind: String,
    /// The database's kind (`Redis`).
    pub database_kind: String,
    pub namespace: String,
    pub name: String,
    pub database: String,
    pub step: String,
    pub started: Option<f64>,
    pub deadline: Option<f64>,
    pub paused_since: Option<f64>,
}

/// The label sets a request has now, so that a change removes the old ones.
#[derive(Default)]
struct Series {
    step: Option<InFlightLabels>,
    paused: Option<PausedLabels>,
}

type RequestKey = (String, String, String);

#[derive(Default)]
pub struct Progress {
    pub step_started: Family<InFlightLabels, TimeGauge>,
    pub step_deadline: Family<InFlightLabels, TimeGauge>,
    pub paused_since: Family<PausedLabels, TimeGauge>,
    series: Mutex<HashMap<RequestKey, Series>>,
}

/// Sets `labels` in `family` to `value`, or removes them when there is none.
fn put<L>(family: &Family<L, TimeGauge>, labels: &L, value: Option<f64>)
where
    L: Clone + std::hash::Hash + Eq,
{
    match value {
        Some(v) => {
            family.get_or_create(labels).set(v);
        }
        None => {
            family.remove(labels);
        }
    }
}

impl Progress {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "step_started_timestamp_seconds",
            "When the current step of a request in flight started",
            self.step_started.clone(),
        );
        registry.register(
            "step_deadline_timestamp_seconds",
            "When spec.timeout runs out for the current step of a request in flight",
            self.step_deadline.clone(),
        );
        registry.register(
            "database_paused_since_timestamp_seconds",
            "Since when a request in flight holds its database paused",
            self.paused_since.clone(),
        );
    }

    fn series(&self) -> MutexGuard<'_, HashMap<RequestKey, Series>> {
        match self.series.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Replaces the request's series with what `s` says.
    pub fn observe(&self, s: &Snapshot) {
        let mut all = self.series();
        let key = (s.kind.clone(), s.namespace.clone(), s.name.clone());
        let series = all.entry(key).or_default();
        let step = InFlightLabels {
            kind: s.kind.clone(),
            request_namespace: s.namespace.clone(),
            request: s.name.clone(),
            step: s.step.clone(),
        };
        if let Some(old) = series.step.take().filter(|old| *old != step) {
            self.step_started.remove(&old);
            self.step_deadline.remove(&old);
        }
        put(&self.step_started, &step, s.started);
        put(&self.step_deadline, &step, s.deadline);
        series.step = Some(step);
        let paused = PausedLabels {
            kind: s.database_kind.clone(),
            request_namespace: s.namespace.clone(),
            request: s.name.clone(),
            database: s.database.clone(),
        };
        if let Some(old) = series.paused.take().filter(|old| *old != paused) {
            self.paused_since.remove(&old);
        }
        put(&self.paused_since, &paused, s.paused_since);
        series.paused = s.paused_since.map(|_| paused);
    }

    /// Removes the series of a request that is over.
    pub fn forget(&self, kind: &str, namespace: &str, name: &str) {
        let key = (kind.to_owned(), namespace.to_owned(), name.to_owned());
        if let Some(series) = self.series().remove(&key) {
            if let Some(step) = series.step {
                self.step_started.remove(&step);
                self.step_deadline.remove(&step);
            }
            if let Some(paused) = series.paused {
                self.paused_since.remove(&paused);
            }
        }
    }

    /// Removes every request's series (this replica no longer acts on them).
    pub fn clear(&self) {
        self.series().clear();
        self.step_started.clear();
        self.step_deadline.clear();
        self.paused_since.clear();
    }

    /// Requests with series now.
    pub fn len(&self) -> usize {
        self.series().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(step: &str, paused_since: Option<f64>) -> Snapshot {
        Snapshot {
            kind: "RedisOpsRequest".into(),
            database_kind: "Redis".into(),
            namespace: "db".into(),
            name: "grow".into(),
            database: "rd".into(),
            step: step.into(),
            started: Some(100.0),
            deadline: Some(400.0),
            paused_since,
        }
    }

    fn encode(p: &Progress) -> String {
        let mut registry = Registry::with_prefix("volops_controller");
        p.register(&mut registry);
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }

    const EXPAND: &str =
        "{kind=\"RedisOpsRequest\",request_namespace=\"db\",request=\"grow\",step=\"Expand\"}";

    #[test]
    fn a_request_has_one_step_at_a_time_and_its_pause_until_it_is_over() {
        let p = Progress::default();
        p.observe(&snapshot("PauseDatabase", None));
        p.observe(&snapshot("Expand", Some(150.0)));
        let text = encode(&p);
        assert!(
            text.contains(&format!(
                "volops_controller_step_started_timestamp_seconds{EXPAND} 100.0"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "volops_controller_step_deadline_timestamp_seconds{EXPAND} 400.0"
            )),
            "{text}"
        );
        assert!(!text.contains("PauseDatabase"), "the old step stays: {text}");
        assert!(
            text.contains(
                "volops_controller_database_paused_since_timestamp_seconds{kind=\"Redis\",request_namespace=\"db\",request=\"grow\",database=\"rd\"} 150.0"
            ),
            "{text}"
        );

        // The cleanup has no deadline; a resumed database is no longer reported.
        let mut cleanup = snapshot("Cleanup", None);
        cleanup.deadline = None;
        p.observe(&cleanup);
        let text = encode(&p);
        assert!(!text.contains("step_deadline_timestamp_seconds{"), "{text}");
        assert!(!text.contains("paused_since_timestamp_seconds{"), "{text}");
        assert!(text.contains("step=\"Cleanup\"} 100.0"), "{text}");

        p.forget("RedisOpsRequest", "db", "grow");
        assert!(p.is_empty());
        assert!(!encode(&p).contains("request=\"grow\""));
    }

    #[test]
    fn clear_drops_every_request() {
        let p = Progress::default();
        p.observe(&snapshot("Expand", Some(1.0)));
        let mut other = snapshot("Expand", Some(2.0));
        other.name = "other".into();
        p.observe(&other);
        assert_eq!(p.len(), 2);
        p.clear();
        assert!(p.is_empty());
        assert!(!encode(&p).contains("request="), "{}", encode(&p));
    }
}
