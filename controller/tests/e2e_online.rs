//! End to end in the sandbox: an Online expansion of a Redis Cluster 3x2.

mod support;

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::{
    Api, ResourceExt,
    api::{ListParams, PostParams},
};
use serde_json::{Value, json};
use support::*;
use volops_controller::{Metrics, metrics::RequestLabels};
use volops_shared::api::RedisOpsRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_redis_cluster_expansion_succeeds_without_pod_restarts() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "standard", "online").await;
    let redis = dynamic(&client, "db", "kubedb.com", "v1", "Redis", "redises");
    let rd = serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1", "kind": "Redis", "metadata": {"name": "rd", "namespace": "db"},
        "spec": {"version": "7.2.4", "mode": "Cluster", "cluster": {"shards": 3, "replicas": 2},
                 "storage": {"storageClassName": "standard", "accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "1Gi"}}}}
    }))
    .unwrap();
    redis
        .create(&PostParams::default(), &rd)
        .await
        .expect("redis created");
    wait_for(&redis, "rd", "redis Ready", |o| {
        at(o, "/status/phase") == Some("Ready")
    })
    .await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "db");
    let selector = ListParams::default().labels("app.kubernetes.io/instance=rd");
    let uids_before: BTreeMap<String, String> = pods
        .list(&selector)
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| (p.name_any(), p.uid().unwrap()))
        .collect();
    assert_eq!(uids_before.len(), 6);

    let metrics = Arc::new(Metrics::default());
    let (stop, task) = start_controller(client.clone(), metrics.clone());
    let ops: Api<RedisOpsRequest> = Api::namespaced(client.clone(), "db");
    // Let the controller's initial lists and watches settle before counting.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let requests_at_start = metrics.api_requests_total();
    let pvc_lists = || {
        metrics
            .api_requests
            .get_or_create(&RequestLabels {
                verb: "list".into(),
                resource: "persistentvolumeclaims".into(),
            })
            .get()
    };
    let pvc_lists_at_start = pvc_lists();
    let req = serde_json::from_value(json!({
        "apiVersion": "ops.kubedb.com/v1alpha1", "kind": "RedisOpsRequest",
        "metadata": {"name": "grow", "namespace": "db"},
        "spec": {"type": "VolumeExpansion", "databaseRef": {"name": "rd"},
                 "volumeExpansion": {"mode": "Online", "redis": "2Gi"}}
    }))
    .unwrap();
    ops.create(&PostParams::default(), &req)
        .await
        .expect("ops request created");
    let done = wait_for(&ops, "grow", "request finished", |r| {
        r.status
            .as_ref()
            .and_then(|s| s.phase)
            .is_some_and(|p| p.is_final())
            && r.finalizers().is_empty()
    })
    .await;
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(
        status.phase.map(|p| p.as_str()),
        Some("Successful"),
        "{:#?}",
        status.conditions
    );
    let api_requests = metrics.api_requests_total();
    let _ = stop.send(());
    task.await.unwrap();

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "db");
    let list = pvcs.list(&selector).await.unwrap();
    assert_eq!(list.items.len(), 6);
    for pvc in &list.items {
        let cap = &pvc.status.as_ref().unwrap().capacity.as_ref().unwrap()["storage"].0;
        assert_eq!(cap, "2Gi", "{}", pvc.name_any());
    }
    let sts = petsets(&client, "db");
    for i in 0..3 {
        let set = sts.get(&format!("rd-shard{i}")).await.expect("petset recreated");
        let size = set
            .data
            .pointer("/spec/volumeClaimTemplates/0/spec/resources/requests/storage");
        assert_eq!(size, Some(&Value::from("2Gi")));
    }
    let db = redis.get("rd").await.unwrap();
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("2Gi"));
    let conditions = db
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert!(conditions.iter().all(|c| c["type"] != "Paused"), "{conditions:?}");
    let uids_after: BTreeMap<String, String> = pods
        .list(&selector)
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| (p.name_any(), p.uid().unwrap()))
        .collect();
    assert_eq!(uids_after, uids_before, "Online mode restarts no pod");
    let done = ops.get("grow").await.unwrap();
    assert!(done.finalizers().is_empty(), "finalizer removed at the end");
    assert!(
        done.annotations().keys().all(|k| !k.starts_with("volops.dev/")),
        "saved manifests and counters dropped: {:?}",
        done.annotations()
    );
    // Admit lists the database's PVCs once; Expand reads them from the controller's cache however
    // many PVC events wake it (one more for a watch that had to relist).
    let lists = pvc_lists() - pvc_lists_at_start;
    assert!(lists <= 2, "{lists} PVC lists for one request");
    // Events are published in the background; every step's still arrives, on the request,
    // with KubeDB's reasons (either workload kind's names).
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "db");
    let steps: [&[&str]; 7] = [
        &["Starting"],
        &["Successful"],
        &["OrphanStatefulSetPods", "OrphanPetSetPods"],
        &["VolumeExpansionSucceeded"],
        &["UpdateStatefulSets", "UpdatePetSets"],
        &["ReadyStatefulSets", "ReadyPetSets"],
        &["UpdateDatabase"],
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let reasons: Vec<String> = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("grow"))
            .filter_map(|e| e.reason)
            .collect();
        let missing: Vec<&[&str]> = steps
            .iter()
            .copied()
            .filter(|s| !reasons.iter().any(|r| s.contains(&r.as_str())))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no event for steps {missing:?}; got {reasons:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let for_request = api_requests - requests_at_start;
    eprintln!(
        "API requests: {api_requests} in all, {for_request} for the request = {:.1} per PVC (6 PVCs)",
        for_request as f64 / 6.0
    );
    sb.shutdown().await.unwrap();
}
