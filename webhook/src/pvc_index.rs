//! The PVCs of each namespace as the rules see them ([`PvcView`]), kept by the PVC reflector.
//!
//! Every validation needs all PVCs of its namespace (quota); scanning a cluster-wide store for
//! them costs O(cluster) per request, and the full objects cost memory. The reflector feeds
//! this index before it stores a bare copy (name and namespace) of each PVC. Caches filled
//! directly through their writers (tests) leave the index detached; `Caches::facts` then reads
//! the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::runtime::watcher::Event;
use volops_shared::facts::PvcView;

type ByNamespace = HashMap<String, BTreeMap<String, PvcView>>;

#[derive(Default)]
struct State {
    /// Set once the first list is complete; until then the index is not used.
    live: bool,
    current: ByNamespace,
    /// The list under way after an Init (a relist replaces `current` at InitDone).
    listing: Option<ByNamespace>,
}

/// Shared handle; clones see the same index.
#[derive(Clone, Default)]
pub struct PvcIndex {
    state: Arc<RwLock<State>>,
}

fn insert(map: &mut ByNamespace, pvc: &PersistentVolumeClaim) {
    let ns = pvc.metadata.namespace.clone().unwrap_or_default();
    let view = PvcView::from_pvc(pvc);
    map.entry(ns).or_default().insert(view.name.clone(), view);
}

impl PvcIndex {
    /// Applies a watch event (before the store sees it), like a reflector store does.
    pub fn apply(&self, event: &Event<PersistentVolumeClaim>) {
        let mut s = match self.state.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match event {
            Event::Apply(pvc) => insert(&mut s.current, pvc),
            Event::Delete(pvc) => {
                let ns = pvc.metadata.namespace.as_deref().unwrap_or_default();
                let name = pvc.metadata.name.as_deref().unwrap_or_default();
                if let Some(m) = s.current.get_mut(ns) {
                    m.remove(name);
                    if m.is_empty() {
                        s.current.remove(ns);
                    }
                }
            }
            Event::Init => s.listing = Some(ByNamespace::new()),
            Event::InitApply(pvc) => insert(s.listing.get_or_insert_with(ByNamespace::new), pvc),
            Event::InitDone => {
                s.current = s.listing.take().unwrap_or_default();
                s.live = true;
            }
        }
    }

    /// The PVCs of `namespace` by name, or `None` while the index is not live.
    pub fn namespace(&self, namespace: &str) -> Option<Vec<PvcView>> {
        let s = match self.state.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !s.live {
            return None;
        }
        Some(
            s.current
                .get(namespace)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default(),
        )
    }
}

/// What the PVC store keeps once the index holds the views: enough for its key and size.
pub fn bare(pvc: &mut PersistentVolumeClaim) {
    let meta = std::mem::take(&mut pvc.metadata);
    pvc.metadata.name = meta.name;
    pvc.metadata.namespace = meta.namespace;
    pvc.metadata.resource_version = meta.resource_version;
    pvc.spec = None;
    pvc.status = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pvc(ns: &str, name: &str, size: &str) -> PersistentVolumeClaim {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "x"}},
            "spec": {"resources": {"requests": {"storage": size}}},
            "status": {"phase": "Bound"}
        }))
        .unwrap()
    }

    fn names(v: Option<Vec<PvcView>>) -> Vec<String> {
        v.unwrap().into_iter().map(|p| p.name).collect()
    }

    #[test]
    fn follows_lists_and_watch_events_per_namespace() {
        let index = PvcIndex::default();
        assert!(index.namespace("a").is_none(), "not live before the first list");
        index.apply(&Event::Init);
        index.apply(&Event::InitApply(pvc("a", "b-1", "1Gi")));
        index.apply(&Event::InitApply(pvc("a", "a-1", "1Gi")));
        index.apply(&Event::InitApply(pvc("other", "c-1", "1Gi")));
        assert!(index.namespace("a").is_none(), "not live during the first list");
        index.apply(&Event::InitDone);
        assert_eq!(names(index.namespace("a")), ["a-1", "b-1"]);
        assert_eq!(names(index.namespace("none")), Vec::<String>::new());
        index.apply(&Event::Apply(pvc("a", "a-1", "2Gi")));
        let a = index.namespace("a").unwrap();
        assert_eq!(a[0].request.as_deref(), Some("2Gi"));
        assert_eq!(a[0].labels.get("app").map(String::as_str), Some("x"));
        index.apply(&Event::Delete(pvc("a", "b-1", "1Gi")));
        assert_eq!(names(index.namespace("a")), ["a-1"]);
        // A relist replaces everything at its end; until then the old state answers.
        index.apply(&Event::Init);
        index.apply(&Event::InitApply(pvc("other", "c-2", "1Gi")));
        assert_eq!(names(index.namespace("a")), ["a-1"]);
        index.apply(&Event::InitDone);
        assert_eq!(names(index.namespace("a")), Vec::<String>::new());
        assert_eq!(names(index.namespace("other")), ["c-2"]);
    }

    #[test]
    fn the_bare_copy_keeps_only_the_key() {
        let mut p = pvc("a", "x", "1Gi");
        bare(&mut p);
        assert_eq!(p.metadata.name.as_deref(), Some("x"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("a"));
        assert!(p.metadata.labels.is_none() && p.spec.is_none() && p.status.is_none());
    }
}
