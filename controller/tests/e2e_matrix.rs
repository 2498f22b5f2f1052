//! Redis Standalone, Redis Cluster 3x2 and ZooKeeper 3, each Online and Offline, end to end:
//! Successful, every PVC at the target, workloads recreated with the new claim size, the
//! database's spec at the target and not paused; Online restarts no pod, Offline has at most
//! one pod of the database missing at any moment (seen from a watch). Redis runs on PetSets as
//! in current KubeDB, and again on StatefulSets, the layout of older KubeDB releases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::{
    Api, ResourceExt,
    api::{ListParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;
use support::*;
use volops_controller::Metrics;

/// Spawns a watch that records the most pods missing at once (of `expected`).
fn track_missing(
    pods: Api<Pod>,
    selector: &str,
    expected: usize,
) -> (Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let max = Arc::new(AtomicUsize::new(0));
    let seen = max.clone();
    let stream = watcher(pods, watcher::Config::default().labels(selector));
    let task = tokio::spawn(async move {
        let mut present = BTreeSet::new();
        let mut listed = false;
        let mut events = std::pin::pin!(stream.default_backoff());
        while let Some(Ok(ev)) = events.next().await {
            match ev {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    present.insert(p.name_any());
                }
                watcher::Event::Delete(p) => {
                    present.remove(&p.name_any());
                }
                watcher::Event::InitDone => listed = true,
                watcher::Event::Init => {}
            }
            if listed {
                seen.fetch_max(expected.saturating_sub(present.len()), Ordering::SeqCst);
            }
        }
    });
    (max, task)
}

async fn expand(client: &kube::Client, ns: &str, db_kind: &str, mode: &str, redis_on: &str) {
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns_obj = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    nss.create(&PostParams::default(), &ns_obj).await.unwrap();
    let class = if mode == "Offline" { "slow" } else { "standard" };
    let db = database(client, ns, db_kind, "db", class).await;
    let (ops_kind, workload, template, names) = match db_kind {
        "ZooKeeper" => ("ZooKeeperOpsRequest", "petsets", "db-data", vec!["db".to_owned()]),
        "Cluster" => (
            "RedisOpsRequest",
            redis_on,
            "data",
            (0..3).map(|i| format!("db-shard{i}")).collect(),
        ),
        _ => ("RedisOpsRequest", redis_on, "data", vec!["db".to_owned()]),
    };
    let selector = "app.kubernetes.io/instance=db";
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let before: BTreeMap<String, String> = pods
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| (p.name_any(), p.uid().unwrap()))
        .collect();
    let (missing, tracker) = track_missing(pods.clone(), selector, before.len());

    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let ops = ops_api(client, ns, ops_kind);
    ops.create(
        &PostParams::default(),
        &ops_request(ops_kind, "grow", "db", mode, "2Gi", json!({"apply": "IfReady"})),
    )
    .await
    .unwrap();
    let done = wait_final(&ops, "grow").await;
    let _ = stop.send(());
    task.await.unwrap();
    tracker.abort();
    let what = format!("{db_kind} {mode} on {workload}");
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{what}: {:#?}",
        done.data["status"]
    );

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let list = pvcs.list(&ListParams::default().labels(selector)).await.unwrap();
    assert_eq!(list.items.len(), before.len(), "{what}");
    for pvc in &list.items {
        assert_eq!(
            pvc.status.as_ref().unwrap().capacity.as_ref().unwrap()["storage"].0,
            "2Gi",
            "{what}: {}",
            pvc.name_any()
        );
    }
    let group = if workload == "petsets" {
        "apps.k8s.appscode.com"
    } else {
        "apps"
    };
    let kind = if workload == "petsets" {
        "PetSet"
    } else {
        "StatefulSet"
    };
    let sets = dynamic(client, ns, group, "v1", kind, workload);
    for name in &names {
        let set = sets
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("{what}: {name}: {e}"));
        let templates = set
            .data
            .pointer("/spec/volumeClaimTemplates")
            .and_then(|t| t.as_array())
            .cloned()
            .unwrap();
        let t = templates
            .iter()
            .find(|t| t["metadata"]["name"] == template)
            .unwrap();
        assert_eq!(
            t["spec"]["resources"]["requests"]["storage"], "2Gi",
            "{what}: {name}"
        );
    }
    let d = db.get("db").await.unwrap();
    assert_eq!(
        at(&d, "/spec/storage/resources/requests/storage"),
        Some("2Gi"),
        "{what}"
    );
    assert!(paused_conditions(&d).is_empty(), "{what}: resumed");
    let after: BTreeMap<String, String> = pods
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| (p.name_any(), p.uid().unwrap()))
        .collect();
    let missing = missing.load(Ordering::SeqCst);
    if mode == "Online" {
        assert_eq!(after, before, "{what}: no pod restarted");
        assert_eq!(missing, 0, "{what}");
    } else {
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>(),
            "{what}: every pod back"
        );
        assert!(
            after.iter().all(|(n, uid)| before[n] != *uid),
            "{what}: every pod restarted"
        );
        assert_eq!(missing, 1, "{what}: one pod missing at a time");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_database_shape_in_both_modes() {
    let (sb, client) = sandbox().await;
    setup(&client, "default", "standard", "online").await;
    storage_class(&client, "slow", "offline", 20).await;
    for (i, (kind, mode)) in [
        ("Standalone", "Online"),
        ("Standalone", "Offline"),
        ("Cluster", "Online"),
        ("Cluster", "Offline"),
        ("ZooKeeper", "Online"),
        ("ZooKeeper", "Offline"),
    ]
    .into_iter()
    .enumerate()
    {
        expand(&client, &format!("m{i}"), kind, mode, "petsets").await;
    }
    sb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_on_statefulsets_in_both_modes() {
    let (sb, client) = sandbox_on_statefulsets().await;
    setup(&client, "default", "standard", "online").await;
    storage_class(&client, "slow", "offline", 20).await;
    for (i, (kind, mode)) in [
        ("Standalone", "Online"),
        ("Standalone", "Offline"),
        ("Cluster", "Online"),
        ("Cluster", "Offline"),
    ]
    .into_iter()
    .enumerate()
    {
        expand(&client, &format!("s{i}"), kind, mode, "statefulsets").await;
    }
    sb.shutdown().await.unwrap();
}
