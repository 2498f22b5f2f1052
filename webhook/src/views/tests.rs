use kube::runtime::reflector::{self, Store};
use serde_json::Value;
use serde_json::json;
use volops_shared::facts::RuleOptions;

use super::*;
use crate::caches::{ApplyEvent, Caches};

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
        .insert(INSTANCE_LABEL.into(), "rd".into());
    apply(Event::Apply(grown));
    let a = index.namespace("a").unwrap();
    assert_eq!(a[0].request.as_deref(), Some("2Gi"));
    let two_gi = (2i128 << 30) * 1_000_000_000;
    assert_eq!(a[0].request.as_ref().and_then(|q| q.nanos()), Some(two_gi));
    // Only KubeDB's selector labels are kept: the rules read no others.
    assert_eq!(
        a[0].labels.get("app.kubernetes.io/instance").map(String::as_str),
        Some("rd")
    );
    assert_eq!(a[0].labels.get("app"), None);
    // A review that took the list before the change keeps what it saw (copy on write).
    assert_eq!(held[0].request.as_deref(), Some("1Gi"));
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
            .insert(INSTANCE_LABEL.into(), i.into());
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
        .filter(|p| p.labels.get(INSTANCE_LABEL).map(String::as_str) == Some(instance))
        .map(|p| p.name.clone())
        .collect();
    (by_index, by_scan)
}

#[test]
fn the_instance_groups_equal_a_label_scan_after_the_same_events() {
    let index = ViewIndex::grouped(instance_of);
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

/// A small cluster: namespace `demo` (labelled) with a Redis cluster `rd`, its PVCs, a quota,
/// two ops requests for `rd` and one for another database; a class and a policy.
fn cluster() -> Vec<(&'static str, Value)> {
    let labels = |db: &str| DatabaseKind::Redis.selector_labels(db);
    let mut objects = vec![
        (
            "ns",
            json!({"metadata": {"name": "demo", "labels": {"tenant": "a"}}}),
        ),
        ("ns", json!({"metadata": {"name": "other"}})),
        (
            "class",
            json!({"metadata": {"name": "fast"}, "provisioner": "x", "allowVolumeExpansion": true}),
        ),
        (
            "policy",
            json!({"apiVersion": "volops.dev/v1alpha1", "kind": "VolumeExpansionPolicy",
            "metadata": {"name": "cap"}, "spec": {"maxSize": "10Gi", "enforcement": "Deny"}}),
        ),
        (
            "quota",
            json!({"metadata": {"name": "q", "namespace": "demo"},
            "spec": {"hard": {"requests.storage": "100Gi"}}}),
        ),
        (
            "db",
            json!({"apiVersion": "kubedb.com/v1", "kind": "Redis",
            "metadata": {"name": "rd", "namespace": "demo"},
            "spec": {"mode": "Cluster", "cluster": {"shards": 2, "replicas": 1}, "storageType": "Durable",
                     "storage": {"storageClassName": "fast", "resources": {"requests": {"storage": "1Gi"}}}},
            "status": {"phase": "Ready"}}),
        ),
        (
            "db",
            json!({"apiVersion": "kubedb.com/v1", "kind": "Redis",
            "metadata": {"name": "rd", "namespace": "other"}, "spec": {}}),
        ),
    ];
    for (name, db) in [("old", "rd"), ("older", "rd"), ("unrelated", "xx")] {
        objects.push((
            "ops",
            json!({"apiVersion": "ops.kubedb.com/v1alpha1", "kind": "RedisOpsRequest",
            "metadata": {"name": name, "namespace": "demo", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"type": "VolumeExpansion", "databaseRef": {"name": db},
                     "volumeExpansion": {"mode": "Online", "redis": "2Gi"}},
            "status": {"phase": "Pending"}}),
        ));
    }
    for (i, db) in [(0, "rd"), (1, "rd"), (2, "other")] {
        objects.push((
            "pvc",
            json!({"metadata": {"name": format!("data-{db}-{i}"), "namespace": "demo",
                "labels": labels(db)},
            "spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}}),
        ));
    }
    objects
}

/// Caches holding `cluster()`; with `live` the view indexes are fed too (as the reflectors do).
/// The caches holding [`cluster`], filled through their writers as the reflectors fill them.
fn caches() -> Caches {
    fn fill<K>(w: &mut impl ApplyEvent<K>, objs: Vec<K>) {
        w.apply_event(&Event::Init);
        for o in objs {
            w.apply_event(&Event::InitApply(o));
        }
        w.apply_event(&Event::InitDone);
    }
    fn of<K: serde::de::DeserializeOwned>(all: &[(&str, Value)], what: &str) -> Vec<K> {
        all.iter()
            .filter(|(w, _)| *w == what)
            .map(|(_, v)| serde_json::from_value(v.clone()).unwrap())
            .collect()
    }
    let all = cluster();
    let (caches, mut w) = Caches::new();
    fill(&mut w.namespaces, of(&all, "ns"));
    fill(&mut w.classes, of(&all, "class"));
    fill(&mut w.policies, of(&all, "policy"));
    fill(&mut w.quotas, of(&all, "quota"));
    fill(&mut w.pvcs, of(&all, "pvc"));
    fill(&mut w.redis, of(&all, "db"));
    fill(&mut w.redis_ops, of(&all, "ops"));
    fill(&mut w.zookeeper, vec![]);
    fill(&mut w.zookeeper_ops, vec![]);
    caches
}

#[test]
fn facts_are_read_from_the_views_for_the_request_and_its_namespace() {
    let caches = caches();
    assert!(caches.unsynced().is_empty());
    let request = |name: &str, db: &str, ns: Option<&str>| {
        let mut meta = json!({"name": name});
        if let Some(ns) = ns {
            meta["namespace"] = json!(ns);
        }
        json!({"apiVersion": "ops.kubedb.com/v1alpha1", "kind": "RedisOpsRequest", "metadata": meta,
               "spec": {"type": "VolumeExpansion", "databaseRef": {"name": db},
                        "volumeExpansion": {"mode": "Online", "redis": "4Gi"}}})
    };
    let options = RuleOptions::default();
    // Only the request's namespace is read: its database (if any), its PVCs and quotas.
    for (db, ns, exists) in [
        ("missing", "demo", false),
        ("rd", "other", true),
        ("rd", "nowhere", false),
    ] {
        let f = caches.facts(DatabaseKind::Redis, ns, &request("grow", db, None), &options);
        assert_eq!(f.database.is_some(), exists, "{db} in {ns}");
        assert!(f.database_pvcs().is_empty(), "{db} in {ns}");
        assert_eq!(f.quotas.is_empty(), ns != "demo", "{db} in {ns}");
    }
    // The review's namespace stands in for a request that names none.
    let named = caches.facts(
        DatabaseKind::Redis,
        "x",
        &request("grow", "rd", Some("demo")),
        &options,
    );
    let unnamed = caches.facts(
        DatabaseKind::Redis,
        "demo",
        &request("grow", "rd", None),
        &options,
    );
    assert_eq!(named.database, unnamed.database);
    let f = caches.facts(
        DatabaseKind::Redis,
        "demo",
        &request("grow", "rd", None),
        &options,
    );
    let db = f.database.as_ref().unwrap();
    assert_eq!(
        (db.name.as_str(), db.storage_request.as_deref()),
        ("rd", Some("1Gi"))
    );
    assert_eq!(f.namespace_pvcs.len(), 3);
    assert_eq!(f.database_pvcs().len(), 2);
    assert_eq!(f.quotas[0].hard["requests.storage"], "100Gi");
    assert_eq!(f.namespace_labels["tenant"], "a");
    assert_eq!((f.storage_classes.len(), f.policies.len()), (1, 1));
    // Only the other requests for the same database (all the rules read).
    let others: Vec<&str> = f.other_requests.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(others, ["old", "older"]);
    let v = volops_shared::validate_create(&f);
    assert_eq!(v.warnings.len(), 2, "{v:?}");
}

#[test]
fn pvcs_live_only_in_their_view_index_which_answers_readiness_and_size() {
    let (caches, mut w) = Caches::new();
    let pvc = |name: &str| -> PersistentVolumeClaim {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "demo",
            "labels": {"app.kubernetes.io/instance": "rd"}},
            "spec": {"resources": {"requests": {"storage": "1Gi"}}}}))
        .unwrap()
    };
    assert!(caches.unsynced().contains(&"persistentvolumeclaims"));
    w.pvcs.apply_event(&Event::Init);
    w.pvcs.apply_event(&Event::InitApply(pvc("data-rd-0")));
    assert!(caches.unsynced().contains(&"persistentvolumeclaims"));
    w.pvcs.apply_event(&Event::InitDone);
    assert!(!caches.unsynced().contains(&"persistentvolumeclaims"));
    w.pvcs.apply_event(&Event::Apply(pvc("data-rd-1")));
    let size = |c: &Caches| {
        c.sizes()
            .into_iter()
            .find(|(n, _)| *n == "persistentvolumeclaims")
            .map(|(_, n)| n)
    };
    assert_eq!(size(&caches), Some(2));
    let (list, at) = caches.views.pvcs.group_of("demo", "rd").unwrap();
    assert_eq!(at.len(), 2);
    assert_eq!(list[at[1] as usize].name, "data-rd-1");
    w.pvcs.apply_event(&Event::Delete(pvc("data-rd-0")));
    assert_eq!(size(&caches), Some(1));
}

#[test]
fn every_cache_is_unsynced_until_its_first_list_is_complete() {
    let (caches, mut w) = Caches::new();
    assert_eq!(caches.unsynced().len(), 9);
    w.classes.apply_event(&Event::Init);
    assert!(caches.unsynced().contains(&"storageclasses"));
    w.classes.apply_event(&Event::InitDone);
    assert!(!caches.unsynced().contains(&"storageclasses"));
    assert_eq!(caches.unsynced().len(), 8);
}
