//! The watch caches the webhook decides on, and how a request's [`Facts`] are built from them.
//! Production fills the stores with reflectors (see `reflectors.rs`); tests fill the same
//! stores through their [`Writers`], so handler tests run the production code path. PVCs have
//! no store: [`PvcWriter`] turns their events straight into the views the rules read.

use futures::FutureExt;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, ResourceQuota};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::watcher::Event;
use serde_json::Value;
use volops_shared::DatabaseKind;

use crate::views::{
    Named, ViewIndex, Views, class_view, database_view, namespace_view, ops_view, policy_view, quota_view,
};
use std::collections::BTreeMap;

use volops_shared::api::VolumeExpansionPolicy;
use volops_shared::facts::{Facts, OpsRequestView, PolicyView, PvcView, RuleOptions, Shared};
use volops_shared::rules::{PvcGrowth, policy_applies};

/// Read sides of every cache.
#[derive(Clone)]
pub struct Caches {
    pub redis: Store<DynamicObject>,
    pub zookeeper: Store<DynamicObject>,
    pub redis_ops: Store<DynamicObject>,
    pub zookeeper_ops: Store<DynamicObject>,
    pub classes: Store<StorageClass>,
    pub quotas: Store<ResourceQuota>,
    pub namespaces: Store<Namespace>,
    pub policies: Store<VolumeExpansionPolicy>,
    /// The rules' views of all of the above, live only when the reflectors feed them (see
    /// `views`), and of the PVCs, whoever feeds them.
    pub views: Views,
}

/// The PVC cache's write side. A webhook caches thousands of PVCs, and a reflector store would
/// keep a second copy of each beside its view (~1.5 KiB a PVC: 15 MiB at 10,000); the rules
/// read only the views, so PVC events go to the view index alone.
pub struct PvcWriter {
    views: Views,
}

/// Applying a watch event to a cache's write side: kube's store writers and [`PvcWriter`]
/// alike (tests and benchmarks fill every cache the same way).
pub trait ApplyEvent<K> {
    fn apply_event(&mut self, event: &Event<K>);
}

impl<K> ApplyEvent<K> for Writer<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    fn apply_event(&mut self, event: &Event<K>) {
        self.apply_watcher_event(event);
    }
}

impl ApplyEvent<PersistentVolumeClaim> for PvcWriter {
    fn apply_event(&mut self, event: &Event<PersistentVolumeClaim>) {
        self.views.apply_pvc(event);
    }
}

/// Write sides of every cache: handed to reflectors, or driven by tests.
pub struct Writers {
    pub redis: Writer<DynamicObject>,
    pub zookeeper: Writer<DynamicObject>,
    pub redis_ops: Writer<DynamicObject>,
    pub zookeeper_ops: Writer<DynamicObject>,
    pub pvcs: PvcWriter,
    pub classes: Writer<StorageClass>,
    pub quotas: Writer<ResourceQuota>,
    pub namespaces: Writer<Namespace>,
    pub policies: Writer<VolumeExpansionPolicy>,
}

impl Caches {
    /// Empty caches and their writers.
    pub fn new() -> (Self, Writers) {
        let dynamic = |ar: ApiResource| {
            let w = Writer::new(ar);
            (w.as_reader(), w)
        };
        let (redis, w_redis) = dynamic(DatabaseKind::Redis.database_resource());
        let (zookeeper, w_zookeeper) = dynamic(DatabaseKind::ZooKeeper.database_resource());
        let (redis_ops, w_redis_ops) = dynamic(DatabaseKind::Redis.ops_resource());
        let (zookeeper_ops, w_zookeeper_ops) = dynamic(DatabaseKind::ZooKeeper.ops_resource());
        let (classes, w_classes) = reflector::store();
        let (quotas, w_quotas) = reflector::store();
        let (namespaces, w_namespaces) = reflector::store();
        let (policies, w_policies) = reflector::store();
        let caches = Self {
            redis,
            zookeeper,
            redis_ops,
            zookeeper_ops,
            classes,
            quotas,
            namespaces,
            policies,
            views: Views::default(),
        };
        let writers = Writers {
            redis: w_redis,
            zookeeper: w_zookeeper,
            redis_ops: w_redis_ops,
            zookeeper_ops: w_zookeeper_ops,
            pvcs: PvcWriter {
                views: caches.views.clone(),
            },
            classes: w_classes,
            quotas: w_quotas,
            namespaces: w_namespaces,
            policies: w_policies,
        };
        (caches, writers)
    }

    fn databases(&self, kind: DatabaseKind) -> &Store<DynamicObject> {
        match kind {
            DatabaseKind::Redis => &self.redis,
            DatabaseKind::ZooKeeper => &self.zookeeper,
        }
    }

    fn ops(&self, kind: DatabaseKind) -> &Store<DynamicObject> {
        match kind {
            DatabaseKind::Redis => &self.redis_ops,
            DatabaseKind::ZooKeeper => &self.zookeeper_ops,
        }
    }

    /// Sizes by cache name, for metrics.
    pub fn sizes(&self) -> [(&'static str, usize); 9] {
        [
            ("redis", self.redis.len()),
            ("zookeeper", self.zookeeper.len()),
            ("redisopsrequests", self.redis_ops.len()),
            ("zookeeperopsrequests", self.zookeeper_ops.len()),
            ("persistentvolumeclaims", self.views.pvcs.len()),
            ("storageclasses", self.classes.len()),
            ("resourcequotas", self.quotas.len()),
            ("namespaces", self.namespaces.len()),
            ("volumeexpansionpolicies", self.policies.len()),
        ]
    }

    /// Names of the caches that have not finished their first list yet.
    pub fn unsynced(&self) -> Vec<&'static str> {
        // `wait_until_ready` resolves at once after the first InitDone.
        fn ready<K: kube::Resource + Clone>(s: &Store<K>) -> bool
        where
            K::DynamicType: Eq + std::hash::Hash + Clone,
        {
            s.wait_until_ready().now_or_never().is_some_and(|r| r.is_ok())
        }
        let all = [
            ("redis", ready(&self.redis)),
            ("zookeeper", ready(&self.zookeeper)),
            ("redisopsrequests", ready(&self.redis_ops)),
            ("zookeeperopsrequests", ready(&self.zookeeper_ops)),
            ("persistentvolumeclaims", self.views.pvcs.is_live()),
            ("storageclasses", ready(&self.classes)),
            ("resourcequotas", ready(&self.quotas)),
            ("namespaces", ready(&self.namespaces)),
            ("volumeexpansionpolicies", ready(&self.policies)),
        ];
        all.into_iter().filter(|(_, ok)| !ok).map(|(n, _)| n).collect()
    }

    /// The views of `namespace` from `index`, or (while it is not live) from `store`.
    fn list<K, V>(
        index: &ViewIndex<V>,
        store: &Store<K>,
        namespace: &str,
        view: impl Fn(&K) -> V,
    ) -> Shared<V>
    where
        K: kube::Resource + Clone + 'static,
        K::DynamicType: Eq + std::hash::Hash + Clone,
        V: Named + Clone,
    {
        index.namespace(namespace).unwrap_or_else(|| {
            let objects = store.state();
            index.scan(namespace, objects.iter().map(|o| o.as_ref()), view)
        })
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
            let dbs = Self::list(v.databases(kind), self.databases(kind), ns, database_view(kind));
            facts.database = dbs
                .binary_search_by(|d| d.name.as_str().cmp(name))
                .ok()
                .map(|i| dbs[i].clone());
        }
        let ops = Self::list(v.ops(kind), self.ops(kind), ns, ops_view(kind));
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
        facts.storage_classes = Self::list(&v.classes, &self.classes, "", class_view);
        facts.quotas = Self::list(&v.quotas, &self.quotas, ns, quota_view).to_vec();
        facts.namespace_labels = self.namespace_labels(ns);
        facts.policies = self.policies_in(&facts.namespace_labels);
        facts
    }

    /// The labels of namespace `ns`.
    fn namespace_labels(&self, ns: &str) -> BTreeMap<String, String> {
        let namespaces = Self::list(&self.views.namespaces, &self.namespaces, "", namespace_view);
        namespaces
            .binary_search_by(|n| n.name.as_str().cmp(ns))
            .ok()
            .map(|i| namespaces[i].labels.clone())
            .unwrap_or_default()
    }

    /// The policies that apply in a namespace with `labels` (one whose selector cannot be
    /// evaluated included: the rules deny on it rather than skip it).
    fn policies_in(&self, labels: &BTreeMap<String, String>) -> Vec<PolicyView> {
        let policies = Self::list(&self.views.policies, &self.policies, "", policy_view);
        policies
            .iter()
            .filter(|p| policy_applies(&p.spec, labels))
            .cloned()
            .collect()
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
        let namespace_labels = self.namespace_labels(namespace);
        PvcGrowth {
            namespace: namespace.to_owned(),
            pvc,
            requested,
            namespace_pvcs: self.views.pvcs.namespace(namespace).unwrap_or_default(),
            quotas: Self::list(&self.views.quotas, &self.quotas, namespace, quota_view).to_vec(),
            policies: self.policies_in(&namespace_labels),
            namespace_labels,
            options: options.clone(),
        }
    }
}
