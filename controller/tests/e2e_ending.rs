//! Every failure path ends (issue 18): a restore the API server refuses is reported without
//! blocking the rest of the cleanup, a database deleted mid-flight fails its request and lets
//! the namespace go, a timeout that is not a Go duration fails once, one absurd database spec
//! fails its own request while another database's expansion succeeds, and so does a request
//! the controller's types cannot read, before or during its run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use support::*;
use volops_controller::Metrics;
use volops_sandbox::{FaultConfig, FaultRule};

/// Warning events about the request with this reason, counting each series' repeats.
async fn warnings(client: &kube::Client, ns: &str, request: &str, reason: &str) -> i32 {
    events_about(client, ns, request)
        .await
        .into_iter()
        .filter(|(t, r, ..)| t == "Warning" && r == reason)
        .map(|(.., count)| count)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_the_api_server_refuses_is_reported_and_the_cleanup_still_ends() {
    let (sb, admin) = sandbox().await;
    // An offline-only driver whose resize steps take 1 s: the 2 s timeout strikes mid-Expand.
    setup(&admin, "team", "slow", "offline").await;
    storage_class(&admin, "slower", "offline", 1000).await;
    let tenant = tenant_client(&sb).await;
    let redis = database(&tenant, "team", "Standalone", "rd", "slower").await;
    let (stop, task) = start_controller(controller_client(&sb).await, Arc::new(Metrics::default()));
    let ops = ops_api(&tenant, "team", "RedisOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request(
            "RedisOpsRequest",
            "grow",
            "rd",
            "Offline",
            "2Gi",
            json!({"timeout": "2s"}),
        ),
    )
    .await
    .expect("ops request created");
    // Once the pod is down, a policy engine starts refusing pods (a 403, as an admission
    // webhook's denial reads).
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "team");
    let deadline = std::time::Instant::now() + WAIT;
    while pods.get_opt("rd-0").await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "pod never taken down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sb.faults().set(FaultConfig {
        seed: 1,
        rules: vec![FaultRule {
            verb: "create".into(),
            resource: "pods".into(),
            rate: 1.0,
            code: 403,
            retry_after_seconds: 1,
        }],
        latency_ms: 0,
        watch_cut_seconds: 0,
    });
    let done = wait_final(&ops, "grow").await;
    // The cleanup is over: nothing more is tried or reported.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restore_warnings = warnings(&admin, "team", "grow", "RestoreFailed").await;
    sb.faults().clear();
    let _ = stop.send(());
    task.await.unwrap();
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Failed"),
        "{:#?}",
        done.data["status"]
    );
    let refused = condition_message(&done, "RestoreFailed");
    assert!(
        refused.contains("Pod team/rd-0") && refused.contains("injected fault"),
        "{:#?}",
        done.data["status"]
    );
    assert_eq!(restore_warnings, 1, "one Warning for the one refused pod");
    // The rest of the cleanup went on: the PetSet is back, the database resumed.
    let sts = petsets(&admin, "team");
    sts.get("rd").await.expect("PetSet restored");
    let db = redis.get("rd").await.unwrap();
    assert!(paused_conditions(&db).is_empty(), "database resumed");
    sb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_zookeeper_mid_flight_fails_the_request_and_lets_the_namespace_go() {
    let (sb, admin) = sandbox().await;
    // An offline-only driver: an Online request stays in Expand.
    setup(&admin, "zk", "standard", "offline").await;
    let tenant = tenant_client(&sb).await;
    let zookeepers = database(&tenant, "zk", "ZooKeeper", "zk-quickstart", "standard").await;
    let (stop, task) = start_controller(controller_client(&sb).await, Arc::new(Metrics::default()));
    let ops = ops_api(&tenant, "zk", "ZooKeeperOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request(
            "ZooKeeperOpsRequest",
            "grow",
            "zk-quickstart",
            "Online",
            "2Gi",
            json!({}),
        ),
    )
    .await
    .expect("ops request created");
    wait_for(&ops, "grow", "workloads orphaned", |r| {
        has_condition(r, "OrphanPetSetPods")
    })
    .await;
    zookeepers
        .delete("zk-quickstart", &Default::default())
        .await
        .expect("database deleted");
    let done = wait_final(&ops, "grow").await;
    let failed = failure_message(&done);
    assert_eq!(at(&done, "/status/phase"), Some("Failed"), "{failed}");
    assert!(
        failed.contains("ZooKeeper zk/zk-quickstart") && failed.contains("no longer exists"),
        "{failed}"
    );
    // Its pods lost their owner with the orphan delete: the controller deleted them.
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "zk");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = pods
            .list(&ListParams::default().labels("app.kubernetes.io/instance=zk-quickstart"))
            .await
            .unwrap()
            .items;
        if left.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "pods left: {}", left.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing holds the namespace any more.
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .delete("zk", &Default::default())
        .await
        .expect("namespace deleted");
    let deadline = std::time::Instant::now() + WAIT;
    while namespaces.get_opt("zk").await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "namespace never went away");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    task.await.unwrap();
    sb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_that_is_not_a_go_duration_fails_the_request_once() {
    let (sb, admin) = sandbox().await;
    setup(&admin, "team", "standard", "online").await;
    let tenant = tenant_client(&sb).await;
    let redis = database(&tenant, "team", "Standalone", "rd", "standard").await;
    let (stop, task) = start_controller(controller_client(&sb).await, Arc::new(Metrics::default()));
    let ops = ops_api(&tenant, "team", "RedisOpsRequest");
    // KubeDB's docs call the field "in seconds"; the API takes Go durations only.
    ops.create(
        &PostParams::default(),
        &ops_request(
            "RedisOpsRequest",
            "grow",
            "rd",
            "Online",
            "2Gi",
            json!({"timeout": "300"}),
        ),
    )
    .await
    .expect("ops request created");
    let done = wait_final(&ops, "grow").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let failures = warnings(&admin, "team", "grow", "FailedToStart").await;
    let _ = stop.send(());
    task.await.unwrap();
    let failed = failure_message(&done);
    assert_eq!(at(&done, "/status/phase"), Some("Failed"), "{failed}");
    assert!(
        failed.contains("spec.timeout") && failed.contains("\"300\"") && failed.contains("5m"),
        "{failed}"
    );
    assert_eq!(failures, 1, "failed once, not in a loop");
    let db = redis.get("rd").await.unwrap();
    assert!(paused_conditions(&db).is_empty());
    sb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_database_spec_fails_its_request_and_another_expansion_succeeds() {
    let (sb, admin) = sandbox().await;
    setup(&admin, "poison", "standard", "online").await;
    setup_namespace(&admin, "healthy").await;
    let tenant = tenant_client(&sb).await;
    let poisoned = database(&tenant, "poison", "Cluster", "rd", "standard").await;
    let healthy = database(&tenant, "healthy", "Standalone", "rd", "standard").await;
    // The poisoned database is paused (by its provisioner, or the platform team: tenants
    // cannot write a database's status) so the provisioner leaves it alone; the tenant then
    // gives it fifty million shards.
    dynamic(&admin, "poison", "kubedb.com", "v1", "Redis", "redises")
        .patch_status(
            "rd",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [
                {"type": "Paused", "status": "True", "reason": "Maintenance", "message": "by hand",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})),
        )
        .await
        .expect("paused");
    poisoned
        .patch(
            "rd",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"cluster": {"shards": 50_000_000}}})),
        )
        .await
        .expect("the API server takes any count");
    let (stop, task) = start_controller(controller_client(&sb).await, Arc::new(Metrics::default()));
    let poison_ops = ops_api(&tenant, "poison", "RedisOpsRequest");
    poison_ops
        .create(
            &PostParams::default(),
            &ops_request("RedisOpsRequest", "grow", "rd", "Online", "2Gi", json!({})),
        )
        .await
        .expect("poisoned request created");
    let healthy_ops = ops_api(&tenant, "healthy", "RedisOpsRequest");
    healthy_ops
        .create(
            &PostParams::default(),
            &ops_request("RedisOpsRequest", "grow", "rd", "Online", "2Gi", json!({})),
        )
        .await
        .expect("healthy request created");
    let poisoned_done = wait_final(&poison_ops, "grow").await;
    let healthy_done = wait_final(&healthy_ops, "grow").await;
    assert!(!task.is_finished(), "the controller still runs");
    let _ = stop.send(());
    task.await.unwrap();
    let failed = failure_message(&poisoned_done);
    assert_eq!(at(&poisoned_done, "/status/phase"), Some("Failed"), "{failed}");
    assert!(failed.contains("spec.cluster.shards is 50000000"), "{failed}");
    assert_eq!(
        at(&healthy_done, "/status/phase"),
        Some("Successful"),
        "{:#?}",
        healthy_done.data["status"]
    );
    let db = healthy.get("rd").await.unwrap();
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("2Gi"));
    // Its owner's pause is the owner's: the failed request did not take it.
    let db = poisoned.get("rd").await.unwrap();
    assert_eq!(paused_conditions(&db).len(), 1);
    sb.shutdown().await.unwrap();
}

/// A request the API server stores but the controller's types cannot read (kube-apiserver does
/// not enforce `format: int32` on integers) fails on its own; every other request goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_controller_cannot_read_fails_alone_and_another_succeeds() {
    let (sb, admin) = sandbox().await;
    setup(&admin, "poison", "standard", "online").await;
    setup_namespace(&admin, "healthy").await;
    let tenant = tenant_client(&sb).await;
    let poisoned = database(&tenant, "poison", "Standalone", "rd", "standard").await;
    let healthy = database(&tenant, "healthy", "Standalone", "rd", "standard").await;
    let poison_ops = ops_api(&tenant, "poison", "RedisOpsRequest");
    poison_ops
        .create(
            &PostParams::default(),
            &ops_request(
                "RedisOpsRequest",
                "grow",
                "rd",
                "Online",
                "2Gi",
                json!({"maxRetries": 3_000_000_000_i64}),
            ),
        )
        .await
        .expect("the API server stores an int32 field past its range");
    let (stop, task) = start_controller(controller_client(&sb).await, Arc::new(Metrics::default()));
    let healthy_ops = ops_api(&tenant, "healthy", "RedisOpsRequest");
    healthy_ops
        .create(
            &PostParams::default(),
            &ops_request("RedisOpsRequest", "grow", "rd", "Online", "2Gi", json!({})),
        )
        .await
        .expect("healthy request created");
    let healthy_done = wait_final(&healthy_ops, "grow").await;
    let poisoned_done = wait_final(&poison_ops, "grow").await;
    let _ = stop.send(());
    task.await.unwrap();
    assert_eq!(
        at(&healthy_done, "/status/phase"),
        Some("Successful"),
        "{:#?}",
        healthy_done.data["status"]
    );
    let failed = failure_message(&poisoned_done);
    assert_eq!(at(&poisoned_done, "/status/phase"), Some("Failed"), "{failed}");
    assert!(
        failed.contains("maxRetries") || failed.contains("i32"),
        "{failed}"
    );
    let db = poisoned.get("rd").await.unwrap();
    assert!(paused_conditions(&db).is_empty());
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("1Gi"));
    let db = healthy.get("rd").await.unwrap();
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("2Gi"));
    sb.shutdown().await.unwrap();
}

/// The same, written mid-flight by a tenant (no webhook in the way): the request fails at the
/// step it had reached and its cleanup puts everything back and resumes the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_made_unreadable_mid_flight_is_failed_and_cleaned_up() {
    let (sb, admin) = sandbox().await;
    setup(&admin, "team", "standard", "online").await;
    storage_class(&admin, "slow", "online", 1500).await;
    let tenant = tenant_client(&sb).await;
    let redis = database(&tenant, "team", "Standalone", "rd", "slow").await;
    let (stop, task) = start_controller(controller_client(&sb).await, Arc::new(Metrics::default()));
    let ops = ops_api(&tenant, "team", "RedisOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request("RedisOpsRequest", "grow", "rd", "Online", "2Gi", json!({})),
    )
    .await
    .expect("ops request created");
    wait_for(&ops, "grow", "workloads orphaned", |r| {
        has_condition(r, "OrphanPetSetPods") || has_condition(r, "OrphanStatefulSetPods")
    })
    .await;
    ops.patch(
        "grow",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"maxRetries": 3_000_000_000_i64}})),
    )
    .await
    .expect("the API server takes it");
    let done = wait_final(&ops, "grow").await;
    let _ = stop.send(());
    task.await.unwrap();
    let failed = failure_message(&done);
    assert_eq!(at(&done, "/status/phase"), Some("Failed"), "{failed}");
    assert!(failed.contains("cannot be read"), "{failed}");
    assert!(done.metadata.finalizers.unwrap_or_default().is_empty());
    let db = redis.get("rd").await.unwrap();
    assert!(paused_conditions(&db).is_empty(), "the database is resumed");
    let petsets = dynamic(&admin, "team", "apps.k8s.appscode.com", "v1", "PetSet", "petsets");
    petsets.get("rd").await.expect("the workload is back");
    sb.shutdown().await.unwrap();
}

async fn setup_namespace(client: &kube::Client, name: &str) {
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
    )
    .await
    .expect("namespace");
}
