//! The rules' views of every cached object, built once when the watch event arrives (not per
//! review), in `volops_shared::index` indexes that a review reads by reference count.
//!
//! They are the only copy the webhook keeps of the objects it watches (`caches::ViewWriter`
//! turns every watch event into a view change); an index answers None until its first list is
//! complete, and the webhook is not ready until every index is.

use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, ResourceQuota};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use serde_json::Value;
use volops_shared::DatabaseKind;
use volops_shared::api::VolumeExpansionPolicy;
use volops_shared::facts::{
    DatabaseView, NamespaceView, OpsRequestView, PolicyView, PvcView, QuotaView, StorageClassView,
};
pub use volops_shared::index::ViewIndex;

fn to_json<T: serde::Serialize>(obj: &T) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

/// How each object becomes its view.
pub fn pvc_view(pvc: &PersistentVolumeClaim) -> PvcView {
    PvcView::from_pvc(pvc)
}
pub fn quota_view(q: &ResourceQuota) -> QuotaView {
    QuotaView::from_quota(q)
}
pub fn class_view(c: &StorageClass) -> StorageClassView {
    StorageClassView::from_class(c)
}
pub fn policy_view(p: &VolumeExpansionPolicy) -> PolicyView {
    PolicyView::from_policy(p)
}
pub fn namespace_view(n: &Namespace) -> NamespaceView {
    NamespaceView::from_namespace(n)
}
/// Databases and ops requests are dynamic objects; the views read their JSON.
pub fn database_view(kind: DatabaseKind) -> impl Fn(&DynamicObject) -> DatabaseView {
    move |o| DatabaseView::from_json(kind, &to_json(o))
}
pub fn ops_view(kind: DatabaseKind) -> impl Fn(&DynamicObject) -> OpsRequestView {
    move |o| OpsRequestView::from_json(kind, &to_json(o))
}

/// Every view index; clones share them.
#[derive(Clone)]
pub struct Views {
    pub pvcs: ViewIndex<PvcView>,
    pub quotas: ViewIndex<QuotaView>,
    pub classes: ViewIndex<StorageClassView>,
    pub policies: ViewIndex<PolicyView>,
    pub namespaces: ViewIndex<NamespaceView>,
    pub redis: ViewIndex<DatabaseView>,
    pub zookeeper: ViewIndex<DatabaseView>,
    pub redis_ops: ViewIndex<OpsRequestView>,
    pub zookeeper_ops: ViewIndex<OpsRequestView>,
}

impl Default for Views {
    fn default() -> Self {
        Self {
            pvcs: ViewIndex::pvcs(),
            quotas: ViewIndex::namespaced(),
            classes: ViewIndex::cluster_scoped(),
            policies: ViewIndex::cluster_scoped(),
            namespaces: ViewIndex::cluster_scoped(),
            redis: ViewIndex::namespaced(),
            zookeeper: ViewIndex::namespaced(),
            redis_ops: ViewIndex::namespaced(),
            zookeeper_ops: ViewIndex::namespaced(),
        }
    }
}

impl Views {
    pub fn databases(&self, kind: DatabaseKind) -> &ViewIndex<DatabaseView> {
        match kind {
            DatabaseKind::Redis => &self.redis,
            DatabaseKind::ZooKeeper => &self.zookeeper,
        }
    }
    pub fn ops(&self, kind: DatabaseKind) -> &ViewIndex<OpsRequestView> {
        match kind {
            DatabaseKind::Redis => &self.redis_ops,
            DatabaseKind::ZooKeeper => &self.zookeeper_ops,
        }
    }
    pub fn apply_pvc(&self, e: &Event<PersistentVolumeClaim>) {
        self.pvcs.apply(e, pvc_view);
    }
    pub fn apply_quota(&self, e: &Event<ResourceQuota>) {
        self.quotas.apply(e, quota_view);
    }
    pub fn apply_class(&self, e: &Event<StorageClass>) {
        self.classes.apply(e, class_view);
    }
    pub fn apply_policy(&self, e: &Event<VolumeExpansionPolicy>) {
        self.policies.apply(e, policy_view);
    }
    pub fn apply_namespace(&self, e: &Event<Namespace>) {
        self.namespaces.apply(e, namespace_view);
    }
    pub fn apply_database(&self, kind: DatabaseKind, e: &Event<DynamicObject>) {
        self.databases(kind).apply(e, database_view(kind));
    }
    pub fn apply_ops(&self, kind: DatabaseKind, e: &Event<DynamicObject>) {
        self.ops(kind).apply(e, ops_view(kind));
    }
}

#[cfg(test)]
mod tests;
