//! Crash safety: the controller is killed (task aborted, no graceful stop) at every step
//! boundary and in the middle of Expand; a fresh one finishes the request correctly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::{
    Api, ResourceExt,
    api::PostParams,
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;
use support::*;
use volops_controller::Metrics;
use volops_shared::WorkloadKind;

/// Where controller A is killed.
#[derive(Clone, Copy, Debug)]
enum StopAt {
    /// Once this condition is True on the request.
    Condition(&'static str),
    /// Once the saved state holds this pod taken down (Offline, mid-Expand).
    SavedPod(&'static str),
    /// Once some PVC of the database requests the target (Online: mid-Expand).
    PvcPatched,
}

/// Counts Delete events per pod name in `ns` (a pod deleted twice shows up as 2).
fn count_pod_deletions(
    client: &kube::Client,
    ns: &str,
) -> (Arc<Mutex<BTreeMap<String, usize>>>, tokio::task::JoinHandle<()>) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let counts = Arc::new(Mutex::new(BTreeMap::new()));
    let out = counts.clone();
    let task = tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(pods, watcher::Config::default()).default_backoff());
        while let Some(Ok(ev)) = events.next().await {
            if let watcher::Event::Delete(p) = ev {
                *out.lock().unwrap().entry(p.name_any()).or_insert(0) += 1;
            }
        }
    });
    (counts, task)
}

async fn scenario(client: &kube::Client, ns: &str, zookeeper: bool, stop_at: StopAt) {
    let (db_kind, ops_kind, mode, class, pvcs) = if zookeeper {
        (
            "ZooKeeper",
            "ZooKeeperOpsRequest",
            "Offline",
            "slow",
            vec!["db-data-db-0", "db-data-db-1", "db-data-db-2"],
        )
    } else {
        (
            "Standalone",
            "RedisOpsRequest",
            "Online",
            "standard",
            vec!["data-db-0"],
        )
    };
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
    )
    .await
    .expect("namespace");
    let db = database(client, ns, db_kind, "db", class).await;
    let (deletions, tracker) = count_pod_deletions(client, ns);

    let (_stop_a, task_a) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let ops = ops_api(client, ns, ops_kind);
    ops.create(
        &PostParams::default(),
        &ops_request(ops_kind, "grow", "db", mode, "2Gi", json!({})),
    )
    .await
    .expect("ops request created");
    match stop_at {
        StopAt::Condition(t) => {
            // A request that ends early fails the scenario below with its reason, not a timeout.
            wait_for(&ops, "grow", t, |r| {
                has_condition(r, t) || at(r, "/status/phase") == Some("Failed")
            })
            .await;
        }
        StopAt::SavedPod(pod) => {
            wait_saved(client, &ops, "grow", pod, |s| {
                s.pods.get(pod).is_some_and(|p| p.manifest.is_some())
            })
            .await;
        }
        StopAt::PvcPatched => {
            let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
            wait_for(&api, pvcs[0], "PVC patched", |p| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.resources.as_ref())
                    .and_then(|r| r.requests.as_ref())
                    .map(|r| r["storage"].0.as_str())
                    == Some("2Gi")
            })
            .await;
        }
    }
    task_a.abort();
    let _ = task_a.await;

    let (stop_b, task_b) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let done = wait_final(&ops, "grow").await;
    let _ = stop_b.send(());
    task_b.await.unwrap();
    tracker.abort();
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{stop_at:?}: {:#?}",
        done.data["status"]
    );

    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    for name in &pvcs {
        let pvc = api.get(name).await.unwrap();
        let req = &pvc.spec.unwrap().resources.unwrap().requests.unwrap()["storage"].0;
        assert_eq!(req, "2Gi", "{stop_at:?}: PVC {name} never asked past the target");
        assert_eq!(
            pvc.status.unwrap().capacity.unwrap()["storage"].0,
            "2Gi",
            "{stop_at:?}: {name}"
        );
    }
    // Redis and ZooKeeper both run on PetSets, as in current KubeDB.
    let workloads = petsets(client, ns);
    let w = workloads
        .get("db")
        .await
        .unwrap_or_else(|e| panic!("{stop_at:?}: workload missing: {e}"));
    assert_eq!(
        w.data
            .pointer("/spec/volumeClaimTemplates/0/spec/resources/requests/storage"),
        Some(&json!("2Gi")),
        "{stop_at:?}"
    );
    let d = db.get("db").await.unwrap();
    assert!(paused_conditions(&d).is_empty(), "{stop_at:?}: database resumed");
    assert_eq!(at(&d, "/spec/storage/resources/requests/storage"), Some("2Gi"));
    let deleted = deletions.lock().unwrap().clone();
    assert!(
        deleted.values().all(|n| *n <= 1),
        "{stop_at:?}: a pod was deleted twice: {deleted:?}"
    );
    if zookeeper {
        assert_eq!(
            deleted.len(),
            3,
            "{stop_at:?}: every pod restarted once: {deleted:?}"
        );
    } else {
        assert!(
            deleted.is_empty(),
            "{stop_at:?}: Online deletes no pod: {deleted:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_redis_survives_a_crash_at_every_step() {
    let (sb, client) = sandbox().await;
    setup(&client, "default", "standard", "online").await;
    let points = [
        StopAt::Condition("VolumeExpansion"),
        StopAt::Condition("PauseDatabase"),
        StopAt::Condition(WorkloadKind::PetSet.orphan_condition()),
        StopAt::PvcPatched,
        StopAt::Condition("VolumeExpansionSucceeded"),
        StopAt::Condition(WorkloadKind::PetSet.update_condition()),
        StopAt::Condition("UpdateDatabase"),
        StopAt::Condition("ResumeDatabase"),
    ];
    for (i, p) in points.into_iter().enumerate() {
        scenario(&client, &format!("online-{i}"), false, p).await;
    }
    sb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_zookeeper_survives_a_crash_at_every_step() {
    let (sb, client) = sandbox().await;
    setup(&client, "default", "slow", "offline").await;
    let points = [
        StopAt::Condition("PauseDatabase"),
        StopAt::Condition("OrphanPetSetPods"),
        StopAt::SavedPod("db-0"),
        StopAt::SavedPod("db-1"),
        StopAt::Condition("UpdateNodePVCs"),
        StopAt::Condition("UpdatePetSets"),
    ];
    for (i, p) in points.into_iter().enumerate() {
        scenario(&client, &format!("offline-{i}"), true, p).await;
    }
    sb.shutdown().await.unwrap();
}
