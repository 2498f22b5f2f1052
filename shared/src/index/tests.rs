use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::reflector::{self, Store};
use serde_json::json;

use super::*;
use crate::DatabaseKind;
use crate::facts::PvcOwner;

fn pvc_view(pvc: &PersistentVolumeClaim) -> PvcView {
    PvcView::from_pvc(pvc)
}

fn class_view(c: &StorageClass) -> StorageClassView {
    StorageClassView::from_class(c)
}

/// KubeDB's selector labels of Redis `db`.
fn selector_labels(db: &str) -> std::collections::BTreeMap<String, String> {
    DatabaseKind::Redis.selector_labels(db)
}

fn pvc(ns: &str, name: &str, size: &str) -> PersistentVolumeClaim {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "x"}},
        "spec": {"resources": {"requests": {"storage": size}}},
        "status": {"phase": "Bound"}
    }))
    .unwrap()
}

fn names(v: Option<Shared<PvcView>>) -> Vec<String> {
    v.unwrap().iter().map(|p| p.name.clone()).collect()
}

#[test]
fn follows_lists_and_watch_events_per_namespace() {
    let index = ViewIndex::namespaced();
    let apply = |e: Event<PersistentVolumeClaim>| index.apply(&e, pvc_view);
    assert!(index.namespace("a").is_none(), "not live before the first list");
    apply(Event::Init);
    apply(Event::InitApply(pvc("a", "b-1", "1Gi")));
    apply(Event::InitApply(pvc("a", "a-1", "1Gi")));
    apply(Event::InitApply(pvc("other", "c-1", "1Gi")));
    assert!(index.namespace("a").is_none(), "not live during the first list");
    apply(Event::InitDone);
    assert_eq!(names(index.namespace("a")), ["a-1", "b-1"]);
    assert_eq!(names(index.namespace("none")), Vec::<String>::new());
    let held = index.namespace("a").unwrap();
    let mut grown = pvc("a", "a-1", "2Gi");
    grown
        .metadata
        .labels
        .get_or_insert_default()
        .extend(selector_labels("rd"));
    apply(Event::Apply(grown));
    let a = index.namespace("a").unwrap();
    assert_eq!(
        a[0].request.as_ref().map(ToString::to_string).as_deref(),
        Some("2Gi")
    );
    let two_gi = (2i128 << 30) * 1_000_000_000;
    assert_eq!(a[0].request.as_ref().and_then(|q| q.nanos()), Some(two_gi));
    // Of the labels, only the database they name is kept: the rules read nothing else.
    assert_eq!(
        a[0].owner,
        Some(PvcOwner {
            kind: DatabaseKind::Redis,
            instance: "rd".into()
        })
    );
    // A review that took the list before the change keeps what it saw (copy on write).
    assert_eq!(
        held[0].request.as_ref().map(ToString::to_string).as_deref(),
        Some("1Gi")
    );
    index.apply(&Event::Delete(pvc("a", "b-1", "1Gi")), pvc_view);
    assert_eq!(names(index.namespace("a")), ["a-1"]);
    // A relist replaces everything at its end; until then the old state answers.
    apply(Event::Init);
    apply(Event::InitApply(pvc("other", "c-2", "1Gi")));
    assert_eq!(names(index.namespace("a")), ["a-1"]);
    apply(Event::InitDone);
    assert_eq!(names(index.namespace("a")), Vec::<String>::new());
    assert_eq!(names(index.namespace("other")), ["c-2"]);
}

fn labelled(ns: &str, name: &str, instance: Option<&str>) -> PersistentVolumeClaim {
    let mut p = pvc(ns, name, "1Gi");
    if let Some(i) = instance {
        p.metadata
            .labels
            .get_or_insert_default()
            .extend(selector_labels(i));
    }
    p
}

/// The names of the PVCs in `ns` grouped under `instance`, by the index and by a label scan of
/// the same list.
fn grouped_and_scanned(index: &ViewIndex<PvcView>, ns: &str, instance: &str) -> (Vec<String>, Vec<String>) {
    let (list, at) = index.group_of(ns, instance).unwrap();
    let by_index = at.iter().map(|&i| list[i as usize].name.clone()).collect();
    let by_scan = list
        .iter()
        .filter(|p| p.owner.as_ref().is_some_and(|o| &*o.instance == instance))
        .map(|p| p.name.clone())
        .collect();
    (by_index, by_scan)
}

#[test]
fn the_database_groups_equal_a_label_scan_after_the_same_events() {
    let index = ViewIndex::pvcs();
    let apply = |e: Event<PersistentVolumeClaim>| index.apply(&e, pvc_view);
    assert!(
        index.group_of("a", "rd").is_none(),
        "not live before the first list"
    );
    apply(Event::Init);
    for (ns, name, inst) in [
        ("a", "data-rd-1", Some("rd")),
        ("a", "data-rd-0", Some("rd")),
        ("a", "data-zk-0", Some("zk")),
        ("a", "loose", None),
        ("b", "data-rd-0", Some("rd")),
    ] {
        apply(Event::InitApply(labelled(ns, name, inst)));
    }
    apply(Event::InitDone);
    let check = |ns: &str, inst: &str, want: &[&str]| {
        let (by_index, by_scan) = grouped_and_scanned(&index, ns, inst);
        assert_eq!(by_index, by_scan, "{ns}/{inst}");
        assert_eq!(by_index, want, "{ns}/{inst}");
    };
    check("a", "rd", &["data-rd-0", "data-rd-1"]);
    check("a", "zk", &["data-zk-0"]);
    check("b", "rd", &["data-rd-0"]);
    check("a", "none", &[]);
    check("nowhere", "rd", &[]);
    // An insert before the group shifts its positions; a relabel moves a PVC between groups.
    apply(Event::Apply(labelled("a", "aaa", Some("zk"))));
    apply(Event::Apply(labelled("a", "data-rd-1", Some("zk"))));
    check("a", "rd", &["data-rd-0"]);
    check("a", "zk", &["aaa", "data-rd-1", "data-zk-0"]);
    apply(Event::Apply(labelled("a", "loose", Some("rd"))));
    apply(Event::Delete(labelled("a", "data-rd-0", Some("rd"))));
    check("a", "rd", &["loose"]);
    apply(Event::Delete(labelled("b", "data-rd-0", Some("rd"))));
    check("b", "rd", &[]);
    // A relist replaces the groups with the list's at its end.
    apply(Event::Init);
    apply(Event::InitApply(labelled("c", "data-rd-0", Some("rd"))));
    check("a", "rd", &["loose"]);
    apply(Event::InitDone);
    check("a", "rd", &[]);
    check("c", "rd", &["data-rd-0"]);
}

#[test]
fn a_review_shares_the_index_list_instead_of_copying_it() {
    let index = ViewIndex::namespaced();
    for e in [
        Event::Init,
        Event::InitApply(pvc("a", "x", "1Gi")),
        Event::InitDone,
    ] {
        index.apply(&e, pvc_view);
    }
    let (one, two) = (index.namespace("a").unwrap(), index.namespace("a").unwrap());
    assert!(one.same(&two));
    index.apply(&Event::Apply(pvc("a", "y", "1Gi")), pvc_view);
    assert!(
        !index.namespace("a").unwrap().same(&one),
        "a change makes a new list"
    );
}

/// The views of `objects` in namespace `ns` sorted by name, as an index should list them.
fn scan<'a>(ns: &str, objects: impl IntoIterator<Item = &'a PersistentVolumeClaim>) -> Shared<PvcView> {
    let mut map = ByNamespace::new();
    for obj in objects
        .into_iter()
        .filter(|o| o.metadata.namespace.as_deref() == Some(ns))
    {
        insert(&mut map, ns, pvc_view(obj));
    }
    map.remove(ns).unwrap_or_default()
}

/// A reflector store and an index that saw the same `events`.
fn store_and_index<K, V>(events: &[Event<K>], view: fn(&K) -> V, cluster: bool) -> (Store<K>, ViewIndex<V>)
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
    V: Named + Clone,
{
    let (store, mut writer) = reflector::store();
    let index = if cluster {
        ViewIndex::cluster_scoped()
    } else {
        ViewIndex::namespaced()
    };
    for e in events {
        index.apply(e, view);
        writer.apply_watcher_event(e);
    }
    (store, index)
}

#[test]
fn the_index_lists_what_a_store_scan_lists_after_the_same_events() {
    let events = vec![
        Event::Init,
        Event::InitApply(pvc("a", "p-2", "1Gi")),
        Event::InitApply(pvc("a", "p-1", "1Gi")),
        Event::InitApply(pvc("b", "p-1", "3Gi")),
        Event::InitDone,
        Event::Apply(pvc("a", "p-3", "1Gi")),
        Event::Apply(pvc("a", "p-1", "5Gi")),
        Event::Delete(pvc("a", "p-2", "1Gi")),
        Event::Delete(pvc("b", "p-1", "3Gi")),
        Event::Apply(pvc("c", "p-9", "1Gi")),
    ];
    for upto in [5, 7, 8, events.len()] {
        let (store, index) = store_and_index(&events[..upto], pvc_view, false);
        for ns in ["a", "b", "c", "none"] {
            let state = store.state();
            let scanned = scan(ns, state.iter().map(|o| o.as_ref()));
            assert_eq!(index.namespace(ns).unwrap(), scanned, "{ns} after {upto} events");
        }
    }
}

#[test]
fn cluster_scoped_objects_are_listed_under_the_empty_namespace() {
    let class: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "x", "allowVolumeExpansion": true
    }))
    .unwrap();
    let (_, index) = store_and_index(
        &[Event::Init, Event::InitApply(class), Event::InitDone],
        class_view,
        true,
    );
    let all = index.namespace("").unwrap();
    assert_eq!(
        all.as_slice(),
        [StorageClassView {
            name: "fast".into(),
            allow_expansion: true,
            is_default: true
        }]
    );
}

#[test]
fn a_listed_namespace_keeps_no_spare_room() {
    let index = ViewIndex::namespaced();
    index.apply(&Event::Init, pvc_view);
    for i in 0..33 {
        index.apply(&Event::InitApply(pvc("a", &format!("p-{i:02}"), "1Gi")), pvc_view);
    }
    index.apply(&Event::<PersistentVolumeClaim>::InitDone, pvc_view);
    let a = index.namespace("a").unwrap();
    assert_eq!(a.len(), 33);
    assert_eq!(a.capacity(), 33, "grown one view at a time to 64, then shrunk");
}
