//! End to end in the sandbox: failures end Failed with the cleanup done.

mod support;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use serde_json::json;
use support::*;
use volops_controller::Metrics;
use volops_shared::WorkloadKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infeasible_resize_fails_fast_with_the_driver_message_and_cleans_up() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "broken", "fail").await;
    let redis = database(&client, "db", "Standalone", "rd", "broken").await;
    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let ops = ops_api(&client, "db", "RedisOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request("RedisOpsRequest", "grow", "rd", "Online", "2Gi", json!({})),
    )
    .await
    .expect("ops request created");
    let done = wait_final(&ops, "grow").await;
    let _ = stop.send(());
    task.await.unwrap();
    assert_eq!(at(&done, "/status/phase"), Some("Failed"));
    let (step, message) = failure(&done);
    assert!(message.contains("Infeasible"), "{message}");
    assert_eq!(step, "Expand");

    let sts = petsets(&client, "db");
    let set = sts.get("rd").await.expect("workload recreated by the cleanup");
    // The claim size stays what the PVC really has.
    assert_eq!(
        set.data
            .pointer("/spec/volumeClaimTemplates/0/spec/resources/requests/storage"),
        Some(&json!("1Gi"))
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "db");
    let running = pods
        .list(&ListParams::default().labels("app.kubernetes.io/instance=rd"))
        .await
        .unwrap();
    assert_eq!(running.items.len(), 1);
    let db = redis.get("rd").await.unwrap();
    assert!(paused_conditions(&db).is_empty(), "database resumed");
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("1Gi"));
    sb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_past_spec_timeout_fails_and_resumes_the_database() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "standard", "online").await;
    let redis = database(&client, "db", "Standalone", "rd", "standard").await;
    // A workload the controller cannot delete in time: a finalizer keeps it Terminating.
    let sts = petsets(&client, "db");
    let patch = json!({"metadata": {"finalizers": ["test.volops.dev/hold"]}});
    sts.patch("rd", &Default::default(), &kube::api::Patch::Merge(&patch))
        .await
        .expect("hold");
    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let ops = ops_api(&client, "db", "RedisOpsRequest");
    let req = ops_request(
        "RedisOpsRequest",
        "grow",
        "rd",
        "Online",
        "2Gi",
        json!({"timeout": "2s"}),
    );
    ops.create(&PostParams::default(), &req)
        .await
        .expect("ops request created");
    let done = wait_final(&ops, "grow").await;
    let _ = stop.send(());
    task.await.unwrap();
    assert_eq!(at(&done, "/status/phase"), Some("Failed"));
    let text = done.data["status"]["conditions"].to_string();
    assert!(text.contains("did not finish within spec.timeout 2s"), "{text}");
    let db = redis.get("rd").await.unwrap();
    assert!(paused_conditions(&db).is_empty(), "database resumed");
    sb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_request_mid_way_restores_the_workload_and_resumes() {
    let (sb, client) = sandbox().await;
    // An offline-only driver never finishes an Online resize: the request stays in Expand.
    setup(&client, "db", "standard", "offline").await;
    let redis = database(&client, "db", "Standalone", "rd", "standard").await;
    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let ops = ops_api(&client, "db", "RedisOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request("RedisOpsRequest", "grow", "rd", "Online", "2Gi", json!({})),
    )
    .await
    .expect("ops request created");
    let orphaned = wait_for(&ops, "grow", "orphaned", |r| {
        has_condition(r, WorkloadKind::PetSet.orphan_condition())
    })
    .await;
    let uid = orphaned.metadata.uid.clone().expect("a stored request has a uid");
    ops.delete("grow", &Default::default()).await.expect("delete");
    // With the uid: `is_deleted("")` holds for any object, so it would not wait at all.
    let gone = kube::runtime::wait::await_condition(
        ops.clone(),
        "grow",
        kube::runtime::conditions::is_deleted(&uid),
    );
    tokio::time::timeout(WAIT, gone)
        .await
        .expect("request deleted in time")
        .expect("watch");
    let _ = stop.send(());
    task.await.unwrap();
    let sts = petsets(&client, "db");
    sts.get("rd")
        .await
        .expect("workload recreated by the finalizer's cleanup");
    let db = redis.get("rd").await.unwrap();
    assert!(paused_conditions(&db).is_empty(), "database resumed");
    sb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_request_failing_mid_resize_brings_the_pod_back_after_the_controller_side_resize() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "standard", "offline").await;
    // An offline-only driver whose every resize step takes 4 s: the 2 s timeout strikes while
    // the controller side of the resize is still running.
    storage_class(&client, "slow", "offline", 4000).await;
    let redis = database(&client, "db", "Standalone", "rd", "slow").await;
    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let ops = ops_api(&client, "db", "RedisOpsRequest");
    let req = ops_request(
        "RedisOpsRequest",
        "grow",
        "rd",
        "Offline",
        "2Gi",
        json!({"timeout": "2s"}),
    );
    ops.create(&PostParams::default(), &req)
        .await
        .expect("ops request created");
    let done = wait_final(&ops, "grow").await;
    let text = done.data["status"]["conditions"].to_string();
    assert_eq!(at(&done, "/status/phase"), Some("Failed"), "{text}");
    assert!(text.contains("did not finish within spec.timeout 2s"), "{text}");
    // Put back only after the controller side finished, the pod's new mount lets the node
    // finish: the claim is not left asking for 2Gi with 1Gi of capacity.
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "db");
    wait_for(&pvcs, "data-rd-0", "claim grown to 2Gi", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get("storage"))
            .is_some_and(|q| q.0 == "2Gi")
    })
    .await;
    let _ = stop.send(());
    task.await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "db");
    pods.get("rd-0").await.expect("pod back");
    let db = redis.get("rd").await.unwrap();
    assert!(paused_conditions(&db).is_empty(), "database resumed");
    sb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_counts_a_retry_and_a_finished_request_keeps_no_saved_state() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "standard", "online").await;
    database(&client, "db", "Standalone", "rd", "standard").await;
    // Every database write is refused (403, not worth a quick retry) until the count shows.
    sb.faults().set(volops_sandbox::FaultConfig {
        seed: 1,
        rules: vec![volops_sandbox::FaultRule {
            verb: "patch".into(),
            resource: "redises".into(),
            rate: 1.0,
            code: 403,
            retry_after_seconds: 1,
        }],
        latency_ms: 0,
        watch_cut_seconds: 0,
    });
    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let ops = ops_api(&client, "db", "RedisOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request(
            "RedisOpsRequest",
            "grow",
            "rd",
            "Online",
            "2Gi",
            json!({"maxRetries": 3}),
        ),
    )
    .await
    .expect("ops request created");
    // The count lives in the controller's saved state, not on the request.
    // The request's own status write wakes it at once: the count may be past 1 when seen.
    let counted = wait_saved(&client, &ops, "grow", "a retry counted", |s| {
        s.retries
            .as_ref()
            .is_some_and(|r| r.step == "PauseDatabase" && r.count >= 1)
    })
    .await;
    assert!(counted, "{:#?}", ops.get("grow").await.unwrap().data["status"]);
    sb.faults().clear();
    let done = wait_final(&ops, "grow").await;
    let _ = stop.send(());
    task.await.unwrap();
    assert_eq!(at(&done, "/status/phase"), Some("Successful"));
    let uid = done.metadata.uid.clone().unwrap();
    assert!(
        saved_state(&client, &uid).await.is_none(),
        "a finished request keeps no saved state"
    );
    let ours: Vec<&String> = done
        .metadata
        .annotations
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("volops.dev/"))
        .collect();
    assert!(ours.is_empty(), "left on a finished request: {ours:?}");
    sb.shutdown().await.unwrap();
}
