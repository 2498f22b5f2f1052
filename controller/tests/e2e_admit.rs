//! End to end in the sandbox, without the webhook: Admit re-checks the rules on the facts its
//! watches keep (namespaces, policies, StorageClasses), so a change made while the controller
//! runs decides the next request.

mod support;

use std::sync::Arc;

use k8s_openapi::api::{core::v1::Namespace, storage::v1::StorageClass};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;
use support::*;
use volops_controller::Metrics;
use volops_shared::api::VolumeExpansionPolicy;

/// A cache lags the API server by a watch event (the webhook's too): give the events that
/// changed the facts time to arrive before the request that must see them.
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admit_decides_on_policies_labels_and_classes_changed_while_it_runs() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "standard", "online").await;
    database(&client, "db", "Standalone", "rd", "standard").await;
    let metrics = Arc::new(Metrics::default());
    let (stop, task) = start_controller(client.clone(), metrics.clone());
    let ops = ops_api(&client, "db", "RedisOpsRequest");

    // A first request succeeds: the controller runs and its caches are filled.
    let first = ops_request("RedisOpsRequest", "first", "rd", "Online", "2Gi", json!({}));
    ops.create(&PostParams::default(), &first).await.expect("created");
    let done = wait_final(&ops, "first").await;
    assert_eq!(at(&done, "/status/phase"), Some("Successful"));
    // The caches report that they are synced, and what they hold (the database's one PVC).
    settle().await;
    let text = metrics.encode();
    assert!(text.contains("volops_controller_caches_synced 1"), "{text}");
    assert!(
        text.contains("volops_controller_cache_objects{cache=\"redises/persistentvolumeclaims\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("volops_controller_cache_objects{cache=\"redises/databases\"} 1"),
        "{text}"
    );

    // A policy for labelled namespaces, then the label: both reach Admit through watches.
    let policies: Api<VolumeExpansionPolicy> = Api::all(client.clone());
    let policy: VolumeExpansionPolicy = serde_json::from_value(json!({
        "apiVersion": "volops.dev/v1alpha1", "kind": "VolumeExpansionPolicy",
        "metadata": {"name": "tenant-limits"},
        "spec": {"namespaceSelector": {"matchLabels": {"tenant": "a"}}, "maxSize": "2Gi"}
    }))
    .unwrap();
    policies
        .create(&PostParams::default(), &policy)
        .await
        .expect("policy");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tenant": "a"}}})),
        )
        .await
        .expect("label");
    settle().await;
    let second = ops_request("RedisOpsRequest", "second", "rd", "Online", "3Gi", json!({}));
    ops.create(&PostParams::default(), &second)
        .await
        .expect("created");
    let done = wait_final(&ops, "second").await;
    assert_eq!(at(&done, "/status/phase"), Some("Failed"));
    let (reason, message) = failure(&done);
    assert_eq!(reason, "Admit");
    assert!(
        message.contains("tenant-limits") && message.contains("maxSize of 2Gi"),
        "{message}"
    );

    // The policy goes; the class stops allowing expansion.
    policies
        .delete("tenant-limits", &Default::default())
        .await
        .expect("policy deleted");
    let classes: Api<StorageClass> = Api::all(client.clone());
    classes
        .patch(
            "standard",
            &PatchParams::default(),
            &Patch::Merge(json!({"allowVolumeExpansion": false})),
        )
        .await
        .expect("class");
    settle().await;
    let third = ops_request("RedisOpsRequest", "third", "rd", "Online", "3Gi", json!({}));
    ops.create(&PostParams::default(), &third).await.expect("created");
    let done = wait_final(&ops, "third").await;
    let (reason, message) = failure(&done);
    assert_eq!(at(&done, "/status/phase"), Some("Failed"), "{message}");
    assert_eq!(reason, "Admit");
    assert!(message.contains("allowVolumeExpansion"), "{message}");

    let _ = stop.send(());
    task.await.unwrap();
    sb.shutdown().await.unwrap();
}
