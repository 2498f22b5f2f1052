//! The watch caches the webhook decides on, and how a request's [`Facts`] are built from them.
//! Production fills the stores with reflectors (see `reflectors.rs`); tests fill the same
//! stores through their [`Writers`], so handler tests run the production code path.

use futures::FutureExt;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, ResourceQuota};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use serde_json::Value;
use volops_shared::DatabaseKind;

use crate::pvc_index::PvcIndex;
use volops_shared::api::VolumeExpansionPolicy;
use volops_shared::facts::{
    DatabaseView, Facts, OpsRequestView, PolicyView, PvcView, QuotaView, RuleOptions, StorageClassView,
};

const OPS_GROUP: &str = "ops.kubedb.com";
const OPS_VERSION: &str = "v1alpha1";

/// The API resource of a database kind (served as dynamic objects: the rules read JSON).
pub fn database_resource(kind: DatabaseKind) -> ApiResource {
    let gvk = GroupVersionKind::gvk(kind.group(), kind.version(), kind.kind());
    ApiResource::from_gvk_with_plural(&gvk, kind.plural())
}

/// The API resource of a database kind's ops requests.
pub fn ops_resource(kind: DatabaseKind) -> ApiResource {
    let gvk = GroupVersionKind::gvk(OPS_GROUP, OPS_VERSION, kind.ops_kind());
    ApiResource::from_gvk_with_plural(&gvk, kind.ops_plural())
}

/// Read sides of every cache.
#[derive(Clone)]
pub struct Caches {
    pub redis: Store<DynamicObject>,
    pub zookeeper: Store<DynamicObject>,
    pub redis_ops: Store<DynamicObject>,
    pub zookeeper_ops: Store<DynamicObject>,
    pub pvcs: Store<PersistentVolumeClaim>,
    pub classes: Store<StorageClass>,
    pub quotas: Store<ResourceQuota>,
    pub namespaces: Store<Namespace>,
    pub policies: Store<VolumeExpansionPolicy>,
    /// PVC views by namespace; live only when the PVC reflector feeds it (see `pvc_index`).
    pub pvc_index: PvcIndex,
}

/// Write sides of every cache: handed to reflectors, or driven by tests.
pub struct Writers {
    pub redis: Writer<DynamicObject>,
    pub zookeeper: Writer<DynamicObject>,
    pub redis_ops: Writer<DynamicObject>,
    pub zookeeper_ops: Writer<DynamicObject>,
    pub pvcs: Writer<PersistentVolumeClaim>,
    pub classes: Writer<StorageClass>,
    pub quotas: Writer<ResourceQuota>,
    pub namespaces: Writer<Namespace>,
    pub policies: Writer<VolumeExpansionPolicy>,
}

fn to_json<T: serde::Serialize>(obj: &T) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

impl Caches {
    /// Empty caches and their writers.
    pub fn new() -> (Self, Writers) {
        let dynamic = |ar: ApiResource| {
            let w = Writer::new(ar);
            (w.as_reader(), w)
        };
        let (redis, w_redis) = dynamic(database_resource(DatabaseKind::Redis));
        let (zookeeper, w_zookeeper) = dynamic(database_resource(DatabaseKind::ZooKeeper));
        let (redis_ops, w_redis_ops) = dynamic(ops_resource(DatabaseKind::Redis));
        let (zookeeper_ops, w_zookeeper_ops) = dynamic(ops_resource(DatabaseKind::ZooKeeper));
        let (pvcs, w_pvcs) = reflector::store();
        let (classes, w_classes) = reflector::store();
        let (quotas, w_quotas) = reflector::store();
        let (namespaces, w_namespaces) = reflector::store();
        let (policies, w_policies) = reflector::store();
        let caches = Self {
            redis,
            zookeeper,
            redis_ops,
            zookeeper_ops,
            pvcs,
            classes,
            quotas,
            namespaces,
            policies,
            pvc_index: PvcIndex::default(),
        };
        let writers = Writers {
            redis: w_redis,
            zookeeper: w_zookeeper,
            redis_ops: w_redis_ops,
            zookeeper_ops: w_zookeeper_ops,
            pvcs: w_pvcs,
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
            ("persistentvolumeclaims", self.pvcs.len()),
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
            ("persistentvolumeclaims", ready(&self.pvcs)),
            ("storageclasses", ready(&self.classes)),
            ("resourcequotas", ready(&self.quotas)),
            ("namespaces", ready(&self.namespaces)),
            ("volumeexpansionpolicies", ready(&self.policies)),
        ];
        all.into_iter().filter(|(_, ok)| !ok).map(|(n, _)| n).collect()
    }

    /// Everything the rules need to decide on the ops request `obj` (of `kind`) in namespace
    /// `namespace` (the review's namespace, used when the object carries none).
    pub fn facts(&self, kind: DatabaseKind, namespace: &str, obj: &Value, options: &RuleOptions) -> Facts {
        let mut request = OpsRequestView::from_json(kind, obj);
        if request.namespace.is_empty() {
            request.namespace = namespace.to_owned();
        }
        let ns = request.namespace.clone();
        let in_ns = |o_ns: Option<&String>| o_ns.map(String::as_str) == Some(ns.as_str());
        let mut facts = Facts::new(kind, request);
        facts.options = options.clone();
        facts.database = facts.request.database.as_deref().and_then(|name| {
            let key = ObjectRef::new_with(name, database_resource(kind)).within(&ns);
            self.databases(kind)
                .get(&key)
                .map(|db| DatabaseView::from_json(kind, &to_json(db.as_ref())))
        });
        facts.namespace_pvcs = self.pvc_index.namespace(&ns).unwrap_or_else(|| {
            self.pvcs
                .state_filter(|p| in_ns(p.metadata.namespace.as_ref()))
                .iter()
                .map(|p| PvcView::from_pvc(p))
                .collect()
        });
        facts.storage_classes = self
            .classes
            .state()
            .iter()
            .map(|c| StorageClassView::from_class(c))
            .collect();
        facts.quotas = self
            .quotas
            .state_filter(|q| in_ns(q.metadata.namespace.as_ref()))
            .iter()
            .map(|q| QuotaView::from_quota(q))
            .collect();
        facts.namespace_labels = self
            .namespaces
            .get(&ObjectRef::new(&ns))
            .and_then(|n| n.metadata.labels.clone())
            .unwrap_or_default();
        facts.policies = self
            .policies
            .state()
            .iter()
            .map(|p| PolicyView {
                name: p.metadata.name.clone().unwrap_or_default(),
                spec: p.spec.clone(),
            })
            .collect();
        let this = facts.request.name.clone();
        facts.other_requests = self
            .ops(kind)
            .state_filter(|o| {
                in_ns(o.metadata.namespace.as_ref()) && o.metadata.name.as_deref() != Some(&this)
            })
            .iter()
            .map(|o| OpsRequestView::from_json(kind, &to_json(o.as_ref())))
            .collect();
        facts
    }
}
