//! The caches the webhook decides on: the rules' views of every watched object, and how a
//! request's [`Facts`] are built from them. No store keeps the objects themselves: each watch
//! event becomes a view at once ([`ViewWriter`]), so a cached object costs only what the rules
//! read. Production's reflectors and the tests feed the same writers ([`Writers`]), so handler
//! tests run the production code path.

use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, ResourceQuota};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use serde_json::Value;
use volops_shared::DatabaseKind;

use crate::views::Views;
use std::collections::BTreeMap;

use volops_shared::api::VolumeExpansionPolicy;
use volops_shared::facts::{Facts, OpsRequestView, PolicyView, PvcView, RuleOptions};
use volops_shared::rules::PvcGrowth;

/// Read side of every cache: the view indexes (clones share them).
#[derive(Clone, Default)]
pub struct Caches {
    pub views: Views,
}

/// Applying a watch event to a cache's write side.
pub trait ApplyEvent<K> {
    fn apply_event(&mut self, event: &Event<K>);
}

/// Applies one watch event to a view index.
type Apply<K> = Box<dyn Fn(&Event<K>) + Send + Sync>;

/// One cache's write side: turns each watch event into the change of its view index.
pub struct ViewWriter<K> {
    apply: Apply<K>,
}

impl<K> ViewWriter<K> {
    fn new(views: &Views, apply: impl Fn(&Views, &Event<K>) + Send + Sync + 'static) -> Self {
        let views = views.clone();
        Self {
            apply: Box::new(move |e| apply(&views, e)),
        }
    }
}

impl<K> ApplyEvent<K> for ViewWriter<K> {
    fn apply_event(&mut self, event: &Event<K>) {
        (self.apply)(event);
    }
}

/// Write sides of every cache: handed to reflectors, or driven by tests.
pub struct Writers {
    pub redis: ViewWriter<DynamicObject>,
    pub zookeeper: ViewWriter<DynamicObject>,
    pub redis_ops: ViewWriter<DynamicObject>,
    pub zookeeper_ops: ViewWriter<DynamicObject>,
    pub pvcs: ViewWriter<PersistentVolumeClaim>,
    pub classes: ViewWriter<StorageClass>,
    pub quotas: ViewWriter<ResourceQuota>,
    pub namespaces: ViewWriter<Namespace>,
    pub policies: ViewWriter<VolumeExpansionPolicy>,
}

impl Caches {
    /// Empty caches and their writers.
    pub fn new() -> (Self, Writers) {
        let caches = Self::default();
        let v = &caches.views;
        let database = |kind| ViewWriter::new(v, move |v: &Views, e| v.apply_database(kind, e));
        let ops = |kind| ViewWriter::new(v, move |v: &Views, e| v.apply_ops(kind, e));
        let writers = Writers {
            redis: database(DatabaseKind::Redis),
            zookeeper: database(DatabaseKind::ZooKeeper),
            redis_ops: ops(DatabaseKind::Redis),
            zookeeper_ops: ops(DatabaseKind::ZooKeeper),
            pvcs: ViewWriter::new(v, Views::apply_pvc),
            classes: ViewWriter::new(v, Views::apply_class),
            quotas: ViewWriter::new(v, Views::apply_quota),
            namespaces: ViewWriter::new(v, Views::apply_namespace),
            policies: ViewWriter::new(v, Views::apply_policy),
        };
        (caches, writers)
    }

    /// Each cache by name: whether its first list is complete, and how many objects it holds.
    fn each(&self) -> [(&'static str, bool, usize); 9] {
        let v = &self.views;
        macro_rules! state {
            ($name:literal, $index:expr) => {
                ($name, $index.is_live(), $index.len())
            };
        }
        [
            state!("redis", v.redis),
            state!("zookeeper", v.zookeeper),
            state!("redisopsrequests", v.redis_ops),
            state!("zookeeperopsrequests", v.zookeeper_ops),
            state!("persistentvolumeclaims", v.pvcs),
            state!("storageclasses", v.classes),
            state!("resourcequotas", v.quotas),
            state!("namespaces", v.namespaces),
            state!("volumeexpansionpolicies", v.policies),
        ]
    }

    /// Sizes by cache name, for metrics.
    pub fn sizes(&self) -> [(&'static str, usize); 9] {
        self.each().map(|(name, _, len)| (name, len))
    }

    /// Names of the caches that have not finished their first list yet (the webhook is not
    /// ready until every one has: until then a view reads as empty).
    pub fn unsynced(&self) -> Vec<&'static str> {
        self.each()
            .into_iter()
            .filter(|(_, live, _)| !live)
            .map(|(name, _, _)| name)
            .collect()
    }

    /// Everything the rules need to decide on the ops request `obj` (of `kind`) in namespace
    /// `namespace` (the review's namespace, used when the object carries none). Every list is
    /// shared with the indexes or cloned from a handful of views; nothing is parsed here but the
    /// request itself.
    pub fn facts(&self, kind: DatabaseKind, namespace: &str, obj: &Value, options: &RuleOptions) -> Facts {
        self.facts_of(kind, namespace, OpsRequestView::from_json(kind, obj), options)
    }

    /// [`Caches::facts`] for a request already turned into its view.
    pub fn facts_of(
        &self,
        kind: DatabaseKind,
        namespace: &str,
        mut request: OpsRequestView,
        options: &RuleOptions,
    ) -> Facts {
        if request.namespace.is_empty() {
            request.namespace = namespace.to_owned();
        }
        let mut facts = Facts::new(kind, request);
        let (v, req) = (&self.views, &facts.request);
        let ns = req.namespace.as_str();
        facts.options = options.clone();
        if let Some(name) = req.database.as_deref() {
            let dbs = v.databases(kind).namespace(ns).unwrap_or_default();
            facts.database = dbs
                .binary_search_by(|d| d.name.as_str().cmp(name))
                .ok()
                .map(|i| dbs[i].clone());
        }
        let ops = v.ops(kind).namespace(ns).unwrap_or_default();
        // The rules read only the other requests for the same database.
        facts.other_requests = ops
            .iter()
            .filter(|o| o.name != facts.request.name && o.database == facts.request.database)
            .cloned()
            .collect();
        // The database's PVCs carry its instance label: the index hands their positions over.
        let instance = facts.request.database.as_deref().unwrap_or_default();
        // Until the first PVC list is complete there are none to read (the webhook is not
        // ready then).
        if let Some((list, at)) = v.pvcs.group_of(ns, instance) {
            facts.namespace_pvcs = list;
            facts.instance_pvcs = Some(at);
        }
        facts.storage_classes = v.classes.namespace("").unwrap_or_default();
        facts.quotas = v.quotas.namespace(ns).unwrap_or_default().to_vec();
        facts.namespace_labels = self.namespace_labels(ns);
        facts.policies = self.policies();
        facts
    }

    /// The labels of namespace `ns`.
    fn namespace_labels(&self, ns: &str) -> BTreeMap<String, String> {
        let namespaces = self.views.namespaces.namespace("").unwrap_or_default();
        namespaces
            .binary_search_by(|n| n.name.as_str().cmp(ns))
            .ok()
            .map(|i| namespaces[i].labels.clone())
            .unwrap_or_default()
    }

    /// Every policy (the rules pick those that select the namespace).
    fn policies(&self) -> Vec<PolicyView> {
        self.views.policies.namespace("").unwrap_or_default().to_vec()
    }

    /// What the rules need to judge `pvc` (the PVC before the edit, in namespace `namespace`)
    /// growing to `requested` outside an ops request.
    pub fn pvc_growth(
        &self,
        namespace: &str,
        pvc: PvcView,
        requested: String,
        options: &RuleOptions,
    ) -> PvcGrowth {
        PvcGrowth {
            namespace: namespace.to_owned(),
            pvc,
            requested,
            namespace_pvcs: self.views.pvcs.namespace(namespace).unwrap_or_default(),
            quotas: self
                .views
                .quotas
                .namespace(namespace)
                .unwrap_or_default()
                .to_vec(),
            policies: self.policies(),
            namespace_labels: self.namespace_labels(namespace),
            options: options.clone(),
        }
    }
}
