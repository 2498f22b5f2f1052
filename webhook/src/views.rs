//! The rules' views of every cached object, built once when the watch event arrives (not per
//! review) and grouped by namespace, each group a name-sorted [`Shared`] list that a review
//! takes by reference count.
//!
//! They are the only copy the webhook keeps of the objects it watches (`caches::ViewWriter`
//! turns every watch event into a view change); an index answers None until its first list is
//! complete, and the webhook is not ready until every index is.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, ResourceQuota};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use serde_json::Value;
use volops_shared::DatabaseKind;
use volops_shared::api::VolumeExpansionPolicy;
use volops_shared::facts::{
    DatabaseView, OpsRequestView, PolicyView, PvcView, QuotaView, Shared, StorageClassView,
};

/// A view listed by name.
pub trait Named {
    fn name(&self) -> &str;
}

macro_rules! named {
    ($($t:ty),*) => {$(
        impl Named for $t {
            fn name(&self) -> &str {
                &self.name
            }
        }
    )*};
}
named!(
    PvcView,
    QuotaView,
    StorageClassView,
    PolicyView,
    DatabaseView,
    OpsRequestView,
    NamespaceView
);

/// A namespace's labels (policies select namespaces by them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NamespaceView {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

type ByNamespace<V> = HashMap<String, Shared<V>>;

/// Positions in a namespace's list by group key (e.g. a PVC's instance label).
type Groups = HashMap<String, Shared<u32>>;

/// The group key of a view, if it has one.
pub type GroupKey<V> = fn(&V) -> Option<&str>;

struct State<V> {
    /// Set once the first list is complete; until then the index is not used.
    live: bool,
    current: ByNamespace<V>,
    /// For each namespace of `current`, its views' positions by group key (when grouped).
    groups: HashMap<String, Groups>,
    /// The list under way after an Init (a relist replaces `current` at InitDone).
    listing: Option<ByNamespace<V>>,
}

/// Views of one resource by namespace (cluster-scoped ones all under ""); clones share it.
pub struct ViewIndex<V> {
    state: Arc<RwLock<State<V>>>,
    cluster_scoped: bool,
    group: Option<GroupKey<V>>,
}

impl<V> Clone for ViewIndex<V> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            cluster_scoped: self.cluster_scoped,
            group: self.group,
        }
    }
}

/// The positions in `list` of the views of each group key.
fn group<V>(list: &[V], key: GroupKey<V>) -> Groups {
    let mut positions: HashMap<&str, Vec<u32>> = HashMap::new();
    for (i, v) in list.iter().enumerate() {
        if let (Some(k), Ok(i)) = (key(v), u32::try_from(i)) {
            positions.entry(k).or_default().push(i);
        }
    }
    positions
        .into_iter()
        .map(|(k, p)| (k.to_owned(), Shared::new(p)))
        .collect()
}

/// Puts `view` into its namespace's list, in name order. The list is copied first only if a
/// review still holds it.
fn insert<V: Named + Clone>(map: &mut ByNamespace<V>, ns: &str, view: V) {
    let list = match map.get_mut(ns) {
        Some(l) => l,
        None => map.entry(ns.to_owned()).or_default(),
    };
    match list.binary_search_by(|v| v.name().cmp(view.name())) {
        Ok(i) => list[i] = view,
        Err(i) => list.insert(i, view),
    }
}

fn remove<V: Named + Clone>(map: &mut ByNamespace<V>, ns: &str, name: &str) {
    let Some(list) = map.get_mut(ns) else { return };
    if let Ok(i) = list.binary_search_by(|v| v.name().cmp(name)) {
        list.remove(i);
    }
    if list.is_empty() {
        map.remove(ns);
    }
}

impl<V: Named + Clone> ViewIndex<V> {
    /// An index of a namespaced resource.
    pub fn namespaced() -> Self {
        Self::new(false)
    }

    /// An index of a cluster-scoped resource: everything is listed under "".
    pub fn cluster_scoped() -> Self {
        Self::new(true)
    }

    /// An index of a namespaced resource that also keeps, per namespace, the positions of the
    /// views sharing a group key (see [`ViewIndex::group_of`]).
    pub fn grouped(key: GroupKey<V>) -> Self {
        Self {
            group: Some(key),
            ..Self::new(false)
        }
    }

    fn new(cluster_scoped: bool) -> Self {
        Self {
            state: Arc::new(RwLock::new(State {
                live: false,
                current: HashMap::new(),
                groups: HashMap::new(),
                listing: None,
            })),
            cluster_scoped,
            group: None,
        }
    }

    /// Recomputes the groups of `ns` (after its list changed).
    fn regroup(&self, s: &mut State<V>, ns: &str) {
        let Some(key) = self.group else { return };
        match s.current.get(ns) {
            Some(list) => {
                let g = group(list, key);
                s.groups.insert(ns.to_owned(), g);
            }
            None => {
                s.groups.remove(ns);
            }
        }
    }

    fn key<'k, K: kube::Resource>(&self, obj: &'k K) -> (&'k str, &'k str) {
        let meta = obj.meta();
        let ns = match self.cluster_scoped {
            true => "",
            false => meta.namespace.as_deref().unwrap_or_default(),
        };
        (ns, meta.name.as_deref().unwrap_or_default())
    }

    /// Applies a watch event like a reflector store does, turning objects into views with `view`.
    pub fn apply<K: kube::Resource>(&self, event: &Event<K>, view: impl Fn(&K) -> V) {
        let mut s = match self.state.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match event {
            Event::Apply(obj) => {
                let ns = self.key(obj).0;
                insert(&mut s.current, ns, view(obj));
                self.regroup(&mut s, ns);
            }
            Event::Delete(obj) => {
                let (ns, name) = self.key(obj);
                remove(&mut s.current, ns, name);
                self.regroup(&mut s, ns);
            }
            Event::Init => s.listing = Some(ByNamespace::new()),
            Event::InitApply(obj) => insert(
                s.listing.get_or_insert_with(ByNamespace::new),
                self.key(obj).0,
                view(obj),
            ),
            Event::InitDone => {
                s.current = s.listing.take().unwrap_or_default();
                s.groups = match self.group {
                    Some(key) => s
                        .current
                        .iter()
                        .map(|(ns, list)| (ns.clone(), group(list, key)))
                        .collect(),
                    None => HashMap::new(),
                };
                s.live = true;
            }
        }
    }

    /// Whether the first complete list has arrived.
    pub fn is_live(&self) -> bool {
        match self.state.read() {
            Ok(g) => g.live,
            Err(poisoned) => poisoned.into_inner().live,
        }
    }

    /// How many views the index holds.
    pub fn len(&self) -> usize {
        let s = match self.state.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        s.current.values().map(|l| l.len()).sum()
    }

    /// Whether the index holds no views.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The views of `namespace` ("" for cluster-scoped ones) by name, or `None` while the index
    /// is not live.
    pub fn namespace(&self, namespace: &str) -> Option<Shared<V>> {
        let s = match self.state.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !s.live {
            return None;
        }
        Some(s.current.get(namespace).cloned().unwrap_or_default())
    }

    /// The views of `namespace` with the positions among them of those whose group key is
    /// `key` (read together, so they agree), or `None` while the index is not live.
    pub fn group_of(&self, namespace: &str, key: &str) -> Option<(Shared<V>, Shared<u32>)> {
        let s = match self.state.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !s.live {
            return None;
        }
        let list = s.current.get(namespace).cloned().unwrap_or_default();
        let positions = s
            .groups
            .get(namespace)
            .and_then(|g| g.get(key))
            .cloned()
            .unwrap_or_default();
        Some((list, positions))
    }
}

fn to_json<T: serde::Serialize>(obj: &T) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

/// The label KubeDB puts on every offshoot of a database with the database's name.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// A PVC's group in the index: its database instance.
fn instance_of(pvc: &PvcView) -> Option<&str> {
    pvc.labels.get(INSTANCE_LABEL).map(String::as_str)
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
    PolicyView {
        name: p.metadata.name.clone().unwrap_or_default(),
        spec: p.spec.clone(),
    }
}
pub fn namespace_view(n: &Namespace) -> NamespaceView {
    NamespaceView {
        name: n.metadata.name.clone().unwrap_or_default(),
        labels: n.metadata.labels.clone().unwrap_or_default(),
    }
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
            pvcs: ViewIndex::grouped(instance_of),
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
