//! Views of one resource kept from its watch, grouped by namespace: each group a name-sorted
//! [`Shared`] list that a reader takes by reference count, optionally with the positions of
//! the views sharing a group key (a PVC's database). Both binaries cache views this way,
//! built once when the watch event arrives and never per read (docs/ARCHITECTURE.md, "What
//! each cache holds"); an index answers None until its first list is complete.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kube::runtime::watcher::Event;

use crate::facts::{
    DatabaseView, NamespaceView, OpsRequestView, PolicyView, PvcView, QuotaView, Shared, StorageClassView,
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
                let mut current = s.listing.take().unwrap_or_default();
                // Lists grew one view at a time: give back the room they will not use (up to
                // half of a list; the PVC lists are most of a cache at 100k PVCs).
                for list in current.values_mut() {
                    list.shrink_to_fit();
                }
                s.current = current;
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

impl ViewIndex<PvcView> {
    /// An index of PVCs grouped by the database whose selector labels they carry.
    pub fn pvcs() -> Self {
        Self::grouped(|p| p.owner.as_ref().map(|o| &*o.instance))
    }
}

#[cfg(test)]
mod tests;
