//! The examples' Online Redis Cluster and Offline ZooKeeper expansions through the whole
//! stack: admission by the webhook (registered as the chart does), the controller, the
//! simulated cluster.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde_json::Value;
use volops_e2e::track::MissingPods;
use volops_e2e::wait::{at, wait_final, wait_ready};
use volops_e2e::{Harness, Result, repo_root};
use volops_shared::DatabaseKind;

async fn apply_examples(h: &Harness, files: &[&str]) -> Result<()> {
    let dir = repo_root().join("examples");
    for f in files {
        h.apply_file(&dir.join(f)).await?;
    }
    Ok(())
}

async fn uids(client: &kube::Client, selector: &str) -> BTreeMap<String, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "demo");
    let list = pods.list(&ListParams::default().labels(selector)).await;
    list.map(|l| {
        l.items
            .iter()
            .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
            .collect()
    })
    .unwrap_or_default()
}

async fn capacities(client: &kube::Client, selector: &str) -> BTreeMap<String, String> {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "demo");
    let list = pvcs.list(&ListParams::default().labels(selector)).await;
    list.map(|l| {
        l.items
            .iter()
            .map(|p| {
                let cap = p.status.as_ref().and_then(|s| s.capacity.as_ref());
                let cap = cap.and_then(|c| c.get("storage")).map(|q| q.0.clone());
                (p.name_any(), cap.unwrap_or_default())
            })
            .collect()
    })
    .unwrap_or_default()
}

fn claim_size(workload: &kube::api::DynamicObject) -> Option<&Value> {
    workload
        .data
        .pointer("/spec/volumeClaimTemplates/0/spec/resources/requests/storage")
}

fn paused(db: &kube::api::DynamicObject) -> Vec<Value> {
    let conditions = db.data.pointer("/status/conditions").and_then(Value::as_array);
    conditions
        .map(|cs| cs.iter().filter(|c| c["type"] == "Paused").cloned().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_redis_cluster_grows_every_volume_without_restarting_pods() -> Result<()> {
    let h = Harness::start_default().await?;
    let client = h.client();
    apply_examples(
        &h,
        &["namespace.yaml", "storageclasses.yaml", "redis-cluster.yaml"],
    )
    .await?;
    let redis = h.databases(DatabaseKind::Redis, "demo");
    wait_ready(&redis, "sample-redis", h.timeout()).await?;
    let selector = "app.kubernetes.io/instance=sample-redis";
    let before = uids(&client, selector).await;
    assert_eq!(before.len(), 6, "3 shards x 2 pods: {before:?}");
    h.webhook()
        .wait_cache("persistentvolumeclaims", 6, h.timeout())
        .await?;

    apply_examples(&h, &["redis-online-expansion.yaml"]).await?;
    let ops = h.ops_requests(DatabaseKind::Redis, "demo");
    let done = wait_final(&ops, "rd-online-volume-expansion", h.timeout()).await?;
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{:#}",
        done.data["status"]
    );
    // The mutating webhook filled the defaults on CREATE.
    assert_eq!(
        at(&done, "/spec/apply"),
        Some("IfReady"),
        "{:#}",
        done.data["spec"]
    );

    let caps = capacities(&client, selector).await;
    assert_eq!(caps.len(), 6, "{caps:?}");
    assert!(caps.values().all(|c| c == "2Gi"), "{caps:?}");
    let pets = h.petsets("demo");
    for i in 0..3 {
        let set = pets.get(&format!("sample-redis-shard{i}")).await.map_err(|e| {
            volops_e2e::Error::Invalid(format!("PetSet sample-redis-shard{i} not recreated: {e}"))
        })?;
        assert_eq!(claim_size(&set), Some(&Value::from("2Gi")), "shard{i}");
    }
    let db = redis
        .get("sample-redis")
        .await
        .map_err(|e| volops_e2e::Error::Invalid(e.to_string()))?;
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("2Gi"));
    assert!(paused(&db).is_empty(), "{:?}", paused(&db));
    assert_eq!(
        uids(&client, selector).await,
        before,
        "Online mode restarts no pod"
    );
    h.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_zookeeper_never_has_more_than_one_pod_missing() -> Result<()> {
    let h = Harness::start_default().await?;
    let client = h.client();
    apply_examples(&h, &["namespace.yaml", "storageclasses.yaml", "zookeeper.yaml"]).await?;
    let zk = h.databases(DatabaseKind::ZooKeeper, "demo");
    wait_ready(&zk, "zk-quickstart", h.timeout()).await?;
    let selector = "app.kubernetes.io/instance=zk-quickstart";
    let before = uids(&client, selector).await;
    assert_eq!(before.len(), 3, "{before:?}");
    h.webhook()
        .wait_cache("persistentvolumeclaims", 3, h.timeout())
        .await?;
    let missing = MissingPods::start(client.clone(), "demo", selector, 3);

    h.apply_file(Path::new(
        &repo_root().join("examples/zookeeper-offline-expansion.yaml"),
    ))
    .await?;
    let ops = h.ops_requests(DatabaseKind::ZooKeeper, "demo");
    let done = wait_final(&ops, "zk-offline-volume-expansion", h.timeout()).await?;
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{:#}",
        done.data["status"]
    );
    let after = uids(&client, selector).await;
    assert_eq!(after.len(), 3, "every pod back: {after:?}");

    // Offline restarts each pod, one at a time: some moment had exactly one missing, none two.
    assert_eq!(
        missing.max_missing(),
        1,
        "most pods missing at once ({} pod events)",
        missing.events()
    );
    for (name, uid) in &after {
        assert_ne!(before.get(name), Some(uid), "{name} was recreated (Offline)");
    }
    let caps = capacities(&client, selector).await;
    assert_eq!(caps.len(), 3, "{caps:?}");
    assert!(caps.values().all(|c| c == "2Gi"), "{caps:?}");
    let pets = h.petsets("demo");
    let pet = pets
        .get("zk-quickstart")
        .await
        .map_err(|e| volops_e2e::Error::Invalid(format!("PetSet not recreated: {e}")))?;
    assert_eq!(claim_size(&pet), Some(&Value::from("2Gi")));
    let db = zk
        .get("zk-quickstart")
        .await
        .map_err(|e| volops_e2e::Error::Invalid(e.to_string()))?;
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("2Gi"));
    assert!(paused(&db).is_empty(), "{:?}", paused(&db));
    h.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_redis_standalone_restarts_its_pod_with_the_bigger_volume() -> Result<()> {
    let h = Harness::start_default().await?;
    let client = h.client();
    apply_examples(
        &h,
        &["namespace.yaml", "storageclasses.yaml", "redis-standalone.yaml"],
    )
    .await?;
    let redis = h.databases(DatabaseKind::Redis, "demo");
    wait_ready(&redis, "redis-standalone", h.timeout()).await?;
    let selector = "app.kubernetes.io/instance=redis-standalone";
    let before = uids(&client, selector).await;
    assert_eq!(before.len(), 1, "{before:?}");
    h.webhook()
        .wait_cache("persistentvolumeclaims", 1, h.timeout())
        .await?;

    apply_examples(&h, &["redis-offline-expansion.yaml"]).await?;
    let ops = h.ops_requests(DatabaseKind::Redis, "demo");
    let done = wait_final(&ops, "rd-offline-volume-expansion", h.timeout()).await?;
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{:#}",
        done.data["status"]
    );
    let after = uids(&client, selector).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before, "Offline mode recreates the pod");
    let caps = capacities(&client, selector).await;
    assert_eq!(caps.values().collect::<Vec<_>>(), ["2Gi"], "{caps:?}");
    let db = redis
        .get("redis-standalone")
        .await
        .map_err(|e| volops_e2e::Error::Invalid(e.to_string()))?;
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("2Gi"));
    assert!(paused(&db).is_empty(), "{:?}", paused(&db));
    h.shutdown().await
}
