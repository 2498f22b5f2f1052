use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::runtime::watcher::Event;
use serde_json::Value;
use serde_json::json;
use volops_shared::DatabaseKind;
use volops_shared::facts::RuleOptions;

use crate::caches::{ApplyEvent, Caches};

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
            "labels": DatabaseKind::Redis.selector_labels("rd")},
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
