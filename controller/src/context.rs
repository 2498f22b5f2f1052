//! What every reconcile shares: the client, the settings, metrics and the event recorder.

use std::{collections::BTreeMap, sync::Arc};

use kube::{Api, Client, api::DynamicObject, runtime::events::Reporter};
use volops_shared::{DatabaseKind, WorkloadKind};

use crate::{
    Config,
    caches::{KindCaches, RequestVersions},
    cluster_caches::ClusterCaches,
    events::EventRecorder,
    metrics::Metrics,
};

/// The ops requests (as JSON) of database `db` in namespace `ns` from a controller's cache;
/// None while the cache is not filled yet.
pub type RequestLister = Arc<dyn Fn(&str, &str) -> Option<Vec<serde_json::Value>> + Send + Sync>;

/// The watch-fed state of one ops-request kind: its requests' lister and its offshoots' caches.
pub struct KindWatches {
    pub caches: KindCaches,
    pub requests: RequestLister,
}

/// Events published at once. Publishing is not awaited by the reconcile; unbounded, a start
/// with hundreds of Pending requests opened a connection per event (the client's pool has no
/// limit), each with its buffers kept while idle (docs/PERFORMANCE.md, "Large clusters").
pub const EVENTS_AT_ONCE: usize = 8;

/// Shared state of one controller process while it leads: built once, after the watches are
/// started (docs/ARCHITECTURE.md), and never changed.
pub struct Ctx {
    pub client: Client,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub recorder: EventRecorder,
    /// Events being published at once (see [`EVENTS_AT_ONCE`]).
    pub event_slots: Arc<tokio::sync::Semaphore>,
    /// Per database kind: its controller's caches.
    kinds: BTreeMap<DatabaseKind, KindWatches>,
    /// The newest known resourceVersion of each request (when the cached copy will do).
    pub request_versions: RequestVersions,
    /// The cluster-wide facts Admit re-checks.
    cluster: ClusterCaches,
}

impl Ctx {
    pub fn new(
        client: Client,
        config: Config,
        metrics: Arc<Metrics>,
        cluster: ClusterCaches,
        kinds: impl IntoIterator<Item = KindWatches>,
    ) -> Self {
        let reporter = Reporter {
            controller: "volops-controller".into(),
            instance: Some(config.identity.clone()),
        };
        let recorder = EventRecorder::new(client.clone(), reporter);
        Self {
            client,
            config,
            metrics,
            recorder,
            event_slots: Arc::new(tokio::sync::Semaphore::new(EVENTS_AT_ONCE)),
            kinds: kinds.into_iter().map(|k| (k.caches.kind, k)).collect(),
            request_versions: RequestVersions::default(),
            cluster,
        }
    }

    /// The cluster-wide caches.
    pub fn cluster_caches(&self) -> &ClusterCaches {
        &self.cluster
    }

    /// A kind's caches (None only for a kind no controller runs for).
    pub fn caches(&self, kind: DatabaseKind) -> Option<KindCaches> {
        self.kinds.get(&kind).map(|k| k.caches.clone())
    }

    /// The cached requests of database `db` in `ns`; None while the cache is not filled yet.
    pub fn cached_requests(&self, kind: DatabaseKind, ns: &str, db: &str) -> Option<Vec<serde_json::Value>> {
        (self.kinds.get(&kind)?.requests)(ns, db)
    }

    /// Each watch cache by name with its size (None while its first list is not in).
    pub fn cache_sizes(&self) -> Vec<(String, Option<usize>)> {
        let mut out = self.cluster.sizes();
        for watches in self.kinds.values() {
            out.extend(watches.caches.sizes());
        }
        out
    }

    /// Whether every watch cache, the requests' own included, has its first list.
    pub fn caches_synced(&self) -> bool {
        let requests = self.kinds.values().all(|w| (w.requests)("", "").is_some());
        requests && self.cache_sizes().iter().all(|(_, size)| size.is_some())
    }

    pub fn database_api(&self, kind: DatabaseKind, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &kind.database_resource())
    }

    pub fn workload_api(&self, kind: WorkloadKind, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &kind.resource())
    }
}

/// A client that counts every request it sends in `api_requests`.
pub fn counting_client(client: Client, metrics: Arc<Metrics>) -> Client {
    let namespace = client.default_namespace().to_owned();
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        metrics
            .api_requests
            .get_or_create(&crate::metrics::RequestLabels::of(
                req.method().as_str(),
                req.uri().path(),
                req.uri().query(),
            ))
            .inc();
        let client = client.clone();
        async move { client.send(req).await }
    });
    Client::new(service, namespace)
}
