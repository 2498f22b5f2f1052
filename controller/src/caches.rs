//! What a controller keeps from its watches so that a reconcile which only waits for the
//! cluster reads memory instead of the API server: the kind's PVCs and database objects as
//! compact views (`volops_shared::index`), the metadata of its workloads (StatefulSets, and
//! PetSets where served), and the last resourceVersion of each ops request this process wrote
//! or read. docs/ARCHITECTURE.md ("What each cache holds") says why each holds what it holds.
//!
//! Every read here may lag the API server by a watch event. The steps only use them where a
//! lag is harmless: a PVC seen still growing is looked at again on its next event, and every
//! write is guarded by a resourceVersion read fresh.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use futures::FutureExt;
use kube::{ResourceExt, api::DynamicObject, runtime::reflector::Store};
use serde_json::Value;
use volops_shared::{
    DatabaseKind, WorkloadKind,
    conditions::PAUSED,
    facts::{DatabaseView, PvcView},
    index::{Named, ViewIndex},
};

use crate::workload_view::WorkloadView;

/// What the controller keeps of one database object: the rules' view and the few fields the
/// steps read (whose database it is, whether it is going, and its pause handshake).
#[derive(Clone, Debug, PartialEq)]
pub struct CachedDatabase {
    pub view: DatabaseView,
    pub uid: Option<String>,
    pub deleting: bool,
    /// The status of its `Paused` condition.
    pub paused: Option<String>,
}

impl Named for CachedDatabase {
    fn name(&self) -> &str {
        &self.view.name
    }
}

impl CachedDatabase {
    pub fn from_object(kind: DatabaseKind, obj: &DynamicObject) -> Self {
        let json = serde_json::to_value(obj).unwrap_or(Value::Null);
        let paused = obj
            .data
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some(PAUSED))
            })
            .and_then(|c| c.get("status").and_then(Value::as_str))
            .map(str::to_owned);
        Self {
            view: DatabaseView::from_json(kind, &json),
            uid: obj.uid(),
            deleting: obj.metadata.deletion_timestamp.is_some(),
            paused,
        }
    }
}

/// One database kind's PVC, database and workload caches (filled by its controller's watches).
#[derive(Clone)]
pub struct KindCaches {
    pub kind: DatabaseKind,
    /// The kind's PVCs (its offshoots) grouped by database.
    pub pvcs: ViewIndex<PvcView>,
    pub databases: ViewIndex<CachedDatabase>,
    /// The kind's offshoot workloads by workload kind, a few metadata fields each (their
    /// specs are read from the API server when a request saves them); a kind the cluster
    /// does not serve has none.
    pub workloads: Vec<(WorkloadKind, ViewIndex<WorkloadView>)>,
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

/// Whether the store's first list is in.
pub fn synced<K: kube::Resource + Clone + 'static>(store: &Store<K>) -> bool
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store.wait_until_ready().now_or_never().is_some_and(|r| r.is_ok())
}

impl KindCaches {
    /// The PVCs `names` of database `db` in `ns` that the cache holds (a PVC without the
    /// database's selector labels is not the database's); None until the first list is in.
    pub fn pvcs_of(&self, ns: &str, db: &str, names: &[String]) -> Option<Vec<PvcView>> {
        let all = self.pvcs_selected(ns, db)?;
        Some(all.into_iter().filter(|p| names.contains(&p.name)).collect())
    }

    /// Every cached PVC of database `db` in `ns` (what a list by its selector returns); None
    /// until the first list is in.
    pub fn pvcs_selected(&self, ns: &str, db: &str) -> Option<Vec<PvcView>> {
        let (list, at) = self.pvcs.group_of(ns, db)?;
        Some(
            at.iter()
                .filter_map(|&i| list.get(i as usize))
                .filter(|p| p.belongs_to(self.kind, db))
                .cloned()
                .collect(),
        )
    }

    /// The database `ns/name` if the cache holds it; None when it does not (yet).
    pub fn database(&self, ns: &str, name: &str) -> Option<CachedDatabase> {
        let list = self.databases.namespace(ns)?;
        let at = list.binary_search_by(|d| d.view.name.as_str().cmp(name)).ok()?;
        list.get(at).cloned()
    }

    /// The workload `ns/name` of `kind` as the cache knows it (metadata only).
    pub fn workload(&self, kind: WorkloadKind, ns: &str, name: &str) -> Cached<Arc<DynamicObject>> {
        let Some((_, index)) = self.workloads.iter().find(|(k, _)| *k == kind) else {
            return Cached::Unknown;
        };
        let Some(list) = index.namespace(ns) else {
            return Cached::Unknown;
        };
        match list.binary_search_by(|w| w.name.as_str().cmp(name)) {
            Ok(at) => list.get(at).map_or(Cached::Absent, |w| {
                Cached::Present(Arc::new(w.to_object(kind, ns)))
            }),
            Err(_) => Cached::Absent,
        }
    }
}

impl KindCaches {
    /// Each cache by name with its size, None while its first list is not in.
    pub fn sizes(&self) -> Vec<(String, Option<usize>)> {
        let kind = self.kind.plural();
        let live = |live: bool, len: usize| live.then_some(len);
        let mut out = vec![
            (
                format!("{kind}/persistentvolumeclaims"),
                live(self.pvcs.is_live(), self.pvcs.len()),
            ),
            (
                format!("{kind}/databases"),
                live(self.databases.is_live(), self.databases.len()),
            ),
        ];
        for (wk, index) in &self.workloads {
            out.push((
                format!("{kind}/{}", wk.resource().plural),
                live(index.is_live(), index.len()),
            ));
        }
        out
    }
}

/// What this process knows of one ops request beyond its watch cache.
#[derive(Default)]
struct Known {
    /// resourceVersions it read or wrote, oldest first (a few), the newest last.
    versions: Vec<String>,
    /// The object its newest write returned, if the newest version came from a write.
    written: Option<Arc<DynamicObject>>,
}

/// How many versions of a request are remembered (a step writes at most a few times).
const KEPT_VERSIONS: usize = 8;

/// Where a reconcile should take the ops request from.
#[derive(Debug, Clone, PartialEq)]
pub enum Freshest {
    /// The watch cache's copy is the newest known.
    Cache,
    /// The cache still shows a version this process has moved past; this is what its last
    /// write returned.
    Written(Arc<DynamicObject>),
    /// The cache shows a version this process never saw, or the newest is not kept: read it.
    Read,
}

/// The resourceVersions of each ops request (by kind/ns/name) this process wrote or read, and
/// what its last write returned: after its own status write a reconcile goes on from that
/// object instead of reading the request again, while the watch event is still on its way.
/// Kept because it pays: without it every step costs a GET, +23% API requests per request
/// (docs/PERFORMANCE.md, "Read-your-own-writes, measured").
#[derive(Default)]
pub struct RequestVersions(Mutex<HashMap<String, Known>>);

impl RequestVersions {
    fn key(kind: DatabaseKind, ns: &str, name: &str) -> String {
        format!("{}/{ns}/{name}", kind.ops_kind())
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(known: &mut Known, rv: String) {
        known.versions.retain(|v| *v != rv);
        known.versions.push(rv);
        if known.versions.len() > KEPT_VERSIONS {
            known.versions.remove(0);
        }
    }

    /// Records `rv` as the newest known version (read from the API server).
    pub fn saw(&self, kind: DatabaseKind, ns: &str, name: &str, rv: Option<String>) {
        let key = Self::key(kind, ns, name);
        let mut map = self.map();
        match rv {
            Some(rv) => {
                let known = map.entry(key).or_default();
                known.written = None;
                Self::push(known, rv);
            }
            None => {
                map.remove(&key);
            }
        }
    }

    /// Records what a write of this process returned as the newest version.
    pub fn wrote(&self, kind: DatabaseKind, ns: &str, name: &str, mut obj: DynamicObject) {
        // As in the watch's store: nothing reads them (docs/ARCHITECTURE.md).
        obj.metadata.managed_fields = None;
        let Some(rv) = obj.resource_version() else {
            self.forget(kind, ns, name);
            return;
        };
        let mut map = self.map();
        let known = map.entry(Self::key(kind, ns, name)).or_default();
        Self::push(known, rv);
        known.written = Some(Arc::new(obj));
    }

    /// Forgets a request (it is finished or gone).
    pub fn forget(&self, kind: DatabaseKind, ns: &str, name: &str) {
        self.map().remove(&Self::key(kind, ns, name));
    }

    /// Where to take the request from when the cache holds it at `rv`. A version this process
    /// saw before its newest is older than the newest; one it never saw came from another
    /// writer (every write here is guarded by the version it read) and must be read.
    pub fn freshest(&self, kind: DatabaseKind, ns: &str, name: &str, rv: Option<&str>) -> Freshest {
        let map = self.map();
        let Some(known) = map.get(&Self::key(kind, ns, name)) else {
            return Freshest::Cache;
        };
        let Some(newest) = known.versions.last() else {
            return Freshest::Cache;
        };
        if Some(newest.as_str()) == rv {
            return Freshest::Cache;
        }
        let older = rv.is_some_and(|rv| known.versions.iter().any(|v| v == rv));
        match (&known.written, older) {
            (Some(obj), true) => Freshest::Written(obj.clone()),
            _ => Freshest::Read,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(rv: &str) -> DynamicObject {
        let mut obj = DynamicObject::new("x", &DatabaseKind::Redis.database_resource());
        obj.metadata.resource_version = Some(rv.into());
        obj
    }

    #[test]
    fn a_cache_behind_this_process_own_write_yields_what_the_write_returned() {
        let v = RequestVersions::default();
        let k = DatabaseKind::Redis;
        assert_eq!(
            v.freshest(k, "db", "x", Some("3")),
            Freshest::Cache,
            "nothing known"
        );
        v.saw(k, "db", "x", Some("3".into()));
        v.wrote(k, "db", "x", written("4"));
        v.wrote(k, "db", "x", written("5"));
        match v.freshest(k, "db", "x", Some("3")) {
            Freshest::Written(obj) => assert_eq!(obj.resource_version().as_deref(), Some("5")),
            other => panic!("a version read before the writes is behind them: {other:?}"),
        }
        assert!(matches!(
            v.freshest(k, "db", "x", Some("4")),
            Freshest::Written(_)
        ));
        assert_eq!(
            v.freshest(k, "db", "x", Some("5")),
            Freshest::Cache,
            "the cache caught up"
        );
        assert_eq!(
            v.freshest(k, "db", "x", Some("9")),
            Freshest::Read,
            "another writer's version is read, never guessed"
        );
        assert_eq!(v.freshest(k, "db", "x", None), Freshest::Read);
        assert_eq!(
            v.freshest(DatabaseKind::ZooKeeper, "db", "x", Some("3")),
            Freshest::Cache,
            "another kind's request of the same name"
        );
        assert_eq!(
            v.freshest(k, "other", "x", Some("3")),
            Freshest::Cache,
            "another namespace"
        );
        v.saw(k, "db", "x", Some("9".into()));
        assert_eq!(
            v.freshest(k, "db", "x", Some("5")),
            Freshest::Read,
            "a read keeps no object: an older cache means a read"
        );
        v.forget(k, "db", "x");
        assert_eq!(v.freshest(k, "db", "x", Some("5")), Freshest::Cache);
    }
}
