//! What every reconcile shares: the client, the settings, metrics and the event recorder.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
};

use kube::{
    Api, Client,
    api::DynamicObject,
    runtime::events::{Recorder, Reporter},
};
use volops_shared::{DatabaseKind, WorkloadKind};

use crate::{
    Config,
    caches::{KindCaches, RequestVersions},
    cluster_caches::ClusterCaches,
    metrics::Metrics,
};

/// The ops requests (as JSON) of database `db` in namespace `ns` from a controller's cache;
/// None while the cache is not filled yet.
pub type RequestLister = Arc<dyn Fn(&str, &str) -> Option<Vec<serde_json::Value>> + Send + Sync>;

/// Shared state of one controller process.
pub struct Ctx {
    pub client: Client,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// Per ops-request kind: its controller's cache of requests.
    requests: RwLock<BTreeMap<&'static str, RequestLister>>,
    /// Per database kind: its controller's PVC and database caches.
    caches: RwLock<BTreeMap<&'static str, KindCaches>>,
    /// The newest known resourceVersion of each request (when the cached copy will do).
    pub request_versions: RequestVersions,
    /// The cluster-wide facts Admit re-checks, once the controllers run.
    cluster: RwLock<Option<ClusterCaches>>,
}

impl Ctx {
    pub fn new(client: Client, config: Config, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: "volops-controller".into(),
            instance: Some(config.identity.clone()),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Self {
            client,
            config,
            metrics,
            recorder,
            requests: RwLock::default(),
            caches: RwLock::default(),
            request_versions: RequestVersions::default(),
            cluster: RwLock::default(),
        }
    }

    /// Registers the cluster-wide caches (called when the controllers start).
    pub fn set_cluster_caches(&self, caches: ClusterCaches) {
        *self
            .cluster
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(caches);
    }

    /// The cluster-wide caches, if the controllers run.
    pub fn cluster_caches(&self) -> Option<ClusterCaches> {
        self.cluster
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Registers a kind's caches (called by its controller).
    pub fn set_caches(&self, caches: KindCaches) {
        let mut map = self
            .caches
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert(caches.kind.ops_kind(), caches);
    }

    /// A kind's caches, if its controller runs.
    pub fn caches(&self, kind: DatabaseKind) -> Option<KindCaches> {
        let map = self
            .caches
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(kind.ops_kind()).cloned()
    }

    /// Registers the cache of `kind`'s requests (called by its controller).
    pub fn set_request_lister(&self, kind: DatabaseKind, lister: RequestLister) {
        let mut map = self
            .requests
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert(kind.ops_kind(), lister);
    }

    /// The cached requests of database `db` in `ns`; None without a filled cache.
    pub fn cached_requests(&self, kind: DatabaseKind, ns: &str, db: &str) -> Option<Vec<serde_json::Value>> {
        let lister = {
            let map = self
                .requests
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.get(kind.ops_kind())?.clone()
        };
        lister(ns, db)
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
