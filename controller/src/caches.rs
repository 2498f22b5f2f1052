//! What a controller keeps from its watches so that a reconcile which only waits for the
//! cluster reads memory instead of the API server: the kind's PVCs, database objects and
//! workloads (StatefulSets, and PetSets where served), and the last resourceVersion of each ops
//! request this process wrote or read.
//!
//! Every read here may lag the API server by a watch event. The steps only use them where a
//! lag is harmless: a PVC seen still growing is looked at again on its next event, and every
//! write is guarded by a resourceVersion read fresh.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use futures::FutureExt;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::{
    ResourceExt,
    api::DynamicObject,
    runtime::reflector::{ObjectRef, Store},
};
use volops_shared::{DatabaseKind, WorkloadKind};

use crate::context::{database_resource, workload_resource};

/// One database kind's PVC, database and workload caches (filled by its controller's watches).
#[derive(Clone)]
pub struct KindCaches {
    pub kind: DatabaseKind,
    pub pvcs: Store<PersistentVolumeClaim>,
    pub databases: Store<DynamicObject>,
    /// The kind's offshoot workloads by workload kind; a kind the cluster does not serve has none.
    pub workloads: Vec<(WorkloadKind, Store<DynamicObject>)>,
}

/// What a workload cache knows of one workload.
#[derive(Debug, Clone, PartialEq)]
pub enum Cached<T> {
    /// The cache holds it.
    Present(T),
    /// The synced cache does not hold it (it may lag a creation by a watch event).
    Absent,
    /// No synced cache for this kind: ask the API server.
    Unknown,
}

fn synced<K: kube::Resource + Clone + 'static>(store: &Store<K>) -> bool
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store.wait_until_ready().now_or_never().is_some_and(|r| r.is_ok())
}

impl KindCaches {
    /// The PVCs `names` of database `db` in `ns` that the cache holds (a PVC without the
    /// database's selector labels is not the database's); None until the first list is in.
    pub fn pvcs_of(&self, ns: &str, db: &str, names: &[String]) -> Option<Vec<Arc<PersistentVolumeClaim>>> {
        if !synced(&self.pvcs) {
            return None;
        }
        Some(
            names
                .iter()
                .filter_map(|n| self.pvcs.get(&ObjectRef::new(n).within(ns)))
                .filter(|p| self.kind.selects(db, p.labels()))
                .collect(),
        )
    }

    /// The database `ns/name` if the cache holds it; None when it does not (yet).
    pub fn database(&self, ns: &str, name: &str) -> Option<Arc<DynamicObject>> {
        if !synced(&self.databases) {
            return None;
        }
        let key = ObjectRef::new_with(name, database_resource(self.kind)).within(ns);
        self.databases.get(&key)
    }

    /// The workload `ns/name` of `kind` as the cache knows it.
    pub fn workload(&self, kind: WorkloadKind, ns: &str, name: &str) -> Cached<Arc<DynamicObject>> {
        let Some((_, store)) = self.workloads.iter().find(|(k, _)| *k == kind) else {
            return Cached::Unknown;
        };
        if !synced(store) {
            return Cached::Unknown;
        }
        let key = ObjectRef::new_with(name, workload_resource(kind)).within(ns);
        store.get(&key).map_or(Cached::Absent, Cached::Present)
    }
}

/// The newest resourceVersion this process knows of each ops request (by kind/ns/name): what
/// its last write returned or its last fresh read showed.
#[derive(Default)]
pub struct RequestVersions(Mutex<HashMap<String, String>>);

impl RequestVersions {
    fn key(kind: DatabaseKind, ns: &str, name: &str) -> String {
        format!("{}/{ns}/{name}", kind.ops_kind())
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `rv` as the newest known version.
    pub fn saw(&self, kind: DatabaseKind, ns: &str, name: &str, rv: Option<String>) {
        let key = Self::key(kind, ns, name);
        match rv {
            Some(rv) => self.map().insert(key, rv),
            None => self.map().remove(&key),
        };
    }

    /// Forgets a request (it is finished or gone).
    pub fn forget(&self, kind: DatabaseKind, ns: &str, name: &str) {
        self.map().remove(&Self::key(kind, ns, name));
    }

    /// Whether a cached copy at `rv` may be older than what this process wrote or read: true
    /// when a newer version is known and `rv` is not it.
    pub fn is_behind(&self, kind: DatabaseKind, ns: &str, name: &str, rv: Option<&str>) -> bool {
        self.map()
            .get(&Self::key(kind, ns, name))
            .is_some_and(|known| Some(known.as_str()) != rv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_copy_is_behind_only_when_another_version_is_known() {
        let v = RequestVersions::default();
        let k = DatabaseKind::Redis;
        assert!(
            !v.is_behind(k, "db", "x", Some("5")),
            "nothing known: the cache is all there is"
        );
        v.saw(k, "db", "x", Some("7".into()));
        assert!(v.is_behind(k, "db", "x", Some("5")));
        assert!(v.is_behind(k, "db", "x", None));
        assert!(!v.is_behind(k, "db", "x", Some("7")));
        assert!(!v.is_behind(DatabaseKind::ZooKeeper, "db", "x", Some("5")));
        assert!(!v.is_behind(k, "other", "x", Some("5")));
        v.forget(k, "db", "x");
        assert!(!v.is_behind(k, "db", "x", Some("5")));
    }
}
