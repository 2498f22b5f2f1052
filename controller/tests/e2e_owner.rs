//! One owner per VolumeExpansion request (controller/DESIGN-NOTES.md, "One owner per
//! request"): volops acts only on a request it claimed, never on one KubeDB's ops-manager
//! started, and with `--volume-expansion-owner kubedb` on none.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{sync::Arc, time::Duration};

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use support::*;
use volops_controller::{Config, Metrics, PauseHandshake, metrics::RequestLabels};
use volops_shared::facts::VolumeExpansionOwner;

/// What KubeDB's ops-manager writes when it starts a VolumeExpansion request (its first condition).
async fn started_by_kubedb(ops: &kube::Api<kube::api::DynamicObject>, name: &str) {
    let status = json!({"status": {"phase": "Progressing", "observedGeneration": 1, "conditions": [
        {"type": "VolumeExpansion", "status": "True", "reason": "VolumeExpansion",
         "message": "Redis ops-request has started to expand volume of redis nodes.",
         "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}});
    ops.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volops_leaves_alone_and_reports_a_request_kubedb_started() {
    let (_sb, client) = sandbox().await;
    setup(&client, "db", "standard", "online").await;
    let redis = database(&client, "db", "Standalone", "rd", "standard").await;
    database(&client, "db", "Standalone", "rd2", "standard").await;
    let ops = ops_api(&client, "db", "RedisOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request("RedisOpsRequest", "kubedbs", "rd", "Online", "2Gi", json!({})),
    )
    .await
    .unwrap();
    started_by_kubedb(&ops, "kubedbs").await;
    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    // A free request beside it is claimed and run.
    ops.create(
        &PostParams::default(),
        &ops_request("RedisOpsRequest", "ours", "rd2", "Online", "2Gi", json!({})),
    )
    .await
    .unwrap();
    let ours = wait_final(&ops, "ours").await;
    assert_eq!(
        at(&ours, "/status/phase"),
        Some("Successful"),
        "{:#?}",
        ours.data["status"]
    );
    assert!(has_condition(&ours, "ClaimedByVolops"));
    let deadline = std::time::Instant::now() + WAIT;
    let reported = loop {
        let events = events_about(&client, "db", "kubedbs").await;
        if let Some(e) = events.iter().find(|e| e.1 == "NotClaimed") {
            break e.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no NotClaimed event: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = stop.send(());
    task.await.unwrap();
    assert_eq!(reported.0, "Warning");
    assert!(
        reported
            .2
            .contains("phase Progressing, conditions [VolumeExpansion]")
            && reported.2.contains("volops leaves it alone"),
        "{reported:?}"
    );
    let theirs = ops.get("kubedbs").await.unwrap();
    assert!(
        !has_condition(&theirs, "ClaimedByVolops"),
        "{:#?}",
        theirs.data["status"]
    );
    assert_eq!(at(&theirs, "/status/phase"), Some("Progressing"));
    assert!(theirs.metadata.finalizers.as_ref().is_none_or(Vec::is_empty));
    let conditions = theirs.data["status"]["conditions"].as_array().unwrap();
    assert_eq!(conditions.len(), 1, "volops wrote to its status: {conditions:#?}");
    let db = redis.get("rd").await.unwrap();
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("1Gi"));
    assert!(paused_conditions(&db).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_kubedb_owning_volume_expansion_volops_does_nothing_to_those_requests() {
    let (_sb, client) = sandbox().await;
    setup(&client, "db", "standard", "online").await;
    let redis = database(&client, "db", "Standalone", "rd", "standard").await;
    let ops = ops_api(&client, "db", "RedisOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request("RedisOpsRequest", "grow", "rd", "Online", "2Gi", json!({})),
    )
    .await
    .unwrap();
    let metrics = Arc::new(Metrics::default());
    let config = Config {
        pause_handshake: PauseHandshake::Kubedb,
        volume_expansion_owner: VolumeExpansionOwner::Kubedb,
        ..Config::default()
    };
    let (stop, task) = start_controller_with(client.clone(), metrics.clone(), config);
    // The controller watches the requests (its first list held `grow`) ...
    let watch = RequestLabels {
        verb: "watch".into(),
        resource: "redisopsrequests".into(),
    };
    let deadline = std::time::Instant::now() + WAIT;
    while metrics.api_requests.get_or_create(&watch).get() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the controller never watched the requests"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ... and sees KubeDB's ops-manager run it, a status write at a time.
    started_by_kubedb(&ops, "grow").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let done = json!({"status": {"phase": "Successful"}});
    ops.patch_status("grow", &PatchParams::default(), &Patch::Merge(&done))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(());
    task.await.unwrap();
    let r = ops.get("grow").await.unwrap();
    assert!(!has_condition(&r, "ClaimedByVolops"), "{:#?}", r.data["status"]);
    assert!(r.metadata.finalizers.as_ref().is_none_or(Vec::is_empty));
    assert!(events_about(&client, "db", "grow").await.is_empty());
    let db = redis.get("rd").await.unwrap();
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("1Gi"));
    assert!(paused_conditions(&db).is_empty());
}
