//! End to end in the sandbox: the status and events of a request are KubeDB's
//! (docs/KUBEDB.md, "Status and events"): its condition types, reasons and messages in order,
//! its event reasons, its failure shape; and a request an earlier volops failed with
//! `{type: Failed, reason: <step>}` is still cleaned up after an upgrade.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::events::v1::Event;
use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams, PostParams},
};
use serde_json::json;
use support::*;
use volops_controller::Metrics;

/// The condition types KubeDB writes (docs/KUBEDB.md, "Status and events"), in the order volops must write them.
const KUBEDB_TYPES: [&str; 12] = [
    "VolumeExpansion",
    "OrphanPetSetPods",
    "OrphanStatefulSetPods",
    "VolumeExpansionSucceeded",
    "UpdateNodePVCs",
    "UpdatePetSets",
    "UpdateStatefulSets",
    "ReadyPetSets",
    "ReadyStatefulSets",
    "UpdateDatabase",
    "ResumeDatabase",
    "Successful",
];

/// The workload kind the sandbox's provisioner runs database `name` on.
async fn workload_kind(client: &kube::Client, ns: &str, name: &str) -> &'static str {
    let petsets = dynamic(client, ns, "apps.k8s.appscode.com", "v1", "PetSet", "petsets");
    match petsets.get_opt(name).await {
        Ok(Some(_)) => "PetSet",
        _ => "StatefulSet",
    }
}

/// The request's conditions as (type, status, reason, message), in order.
fn conditions(r: &DynamicObject) -> Vec<(String, String, String, String)> {
    let s = |c: &serde_json::Value, k: &str| c[k].as_str().unwrap_or_default().to_owned();
    r.data["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (s(c, "type"), s(c, "status"), s(c, "reason"), s(c, "message")))
        .collect()
}

/// The events about request `name`, as (type, reason, note, reporting controller); polled
/// until one has `last_reason` and `last_note` (events are published in the background).
async fn events(client: &kube::Client, ns: &str, name: &str, last: (&str, &str)) -> Vec<[String; 4]> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let all: Vec<[String; 4]> = api
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| {
                [
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                    e.reporting_controller.unwrap_or_default(),
                ]
            })
            .collect();
        if all.iter().any(|[_, r, n, _]| r == last.0 && n == last.1) {
            return all;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no event {last:?} among {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs one expansion of `db` (kind ZooKeeper, or a Redis mode) in `ns` to Successful and
/// checks its status and events against KubeDB's catalogue.
async fn expand_and_check(client: &kube::Client, ns: &str, db_kind: &str, mode: &str, class: &str) {
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns_obj = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    nss.create(&PostParams::default(), &ns_obj).await.unwrap();
    database(client, ns, db_kind, "db", class).await;
    let (kind, ops_kind) = if db_kind == "ZooKeeper" {
        ("ZooKeeper", "ZooKeeperOpsRequest")
    } else {
        ("Redis", "RedisOpsRequest")
    };
    let workload = workload_kind(client, ns, "db").await;
    let ops = ops_api(client, ns, ops_kind);
    ops.create(
        &PostParams::default(),
        &ops_request(ops_kind, "grow", "db", mode, "2Gi", json!({})),
    )
    .await
    .unwrap();
    let done = wait_final(&ops, "grow").await;
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{:#?}",
        done.data["status"]
    );
    assert_eq!(done.data["status"]["observedGeneration"], json!(1));

    let (pvc_type, pvc_message) = if kind == "ZooKeeper" {
        ("UpdateNodePVCs", "successfully updated node PVC sizes")
    } else {
        ("VolumeExpansionSucceeded", "successfully updated PVC sizes")
    };
    let plural = if workload == "PetSet" {
        "petSets"
    } else {
        "statefulSets"
    };
    let orphan = format!("successfully deleted the {plural} with orphan propagation policy");
    let reconciled = format!("successfully reconciled the {kind} resources");
    let recreated = format!("{workload} is recreated");
    let started = format!(
        "{kind} ops-request has started to expand volume of {} nodes.",
        kind.to_lowercase()
    );
    let resumed = format!("Successfully resumed {kind} database: {ns}/db for {ops_kind}: grow");
    let completed = format!("Successfully completed volumeExpansion for {kind}");
    let orphan_type = format!("Orphan{workload}Pods");
    let update_type = format!("Update{workload}s");
    let ready_type = format!("Ready{workload}s");
    let want: Vec<(&str, &str, &str)> = vec![
        ("VolumeExpansion", "VolumeExpansion", &started),
        (&orphan_type, &orphan_type, &orphan),
        (pvc_type, pvc_type, pvc_message),
        (&update_type, &update_type, &reconciled),
        (&ready_type, &ready_type, &recreated),
        (
            "UpdateDatabase",
            "UpdateDatabase",
            "successfully updated the storage of",
        ),
        ("ResumeDatabase", "DatabaseResumeSucceeded", &resumed),
        ("Successful", "Successful", &completed),
    ];
    let got = conditions(&done);
    let kubedb: Vec<&(String, String, String, String)> = got
        .iter()
        .filter(|(t, ..)| KUBEDB_TYPES.contains(&t.as_str()))
        .collect();
    assert_eq!(kubedb.len(), want.len(), "{db_kind} {mode}: {got:#?}");
    for ((t, status, reason, message), (wt, wr, wm)) in kubedb.iter().zip(&want) {
        assert_eq!(
            (t.as_str(), status.as_str(), reason.as_str()),
            (*wt, "True", *wr),
            "{got:#?}"
        );
        assert!(message.starts_with(wm), "{t}: {message:?} is not {wm:?}");
    }
    // volops's extras are there too, and never KubeDB's `Failed` type.
    let types: Vec<&str> = got.iter().map(|(t, ..)| t.as_str()).collect();
    assert!(types.contains(&"ClaimedByVolops"), "{types:?}");
    let pause = got
        .iter()
        .find(|(t, ..)| t == "PauseDatabase")
        .expect("PauseDatabase");
    assert_eq!(
        (pause.1.as_str(), pause.2.as_str(), pause.3.as_str()),
        (
            "True",
            "DatabasePauseSucceeded",
            format!("Successfully paused {kind} database: {ns}/db for {ops_kind}: grow").as_str()
        )
    );
    assert!(
        !types.contains(&"Failed") && !types.contains(&"Cleanup"),
        "{types:?}"
    );

    let seen = events(client, ns, "grow", ("Successful", &completed)).await;
    let want_events: Vec<(&str, String)> = vec![
        ("Starting", format!("Start processing for {ops_kind}: {ns}/grow")),
        ("Starting", format!("Pausing {kind} database: {ns}/db")),
        (
            "Successful",
            format!("Successfully paused {kind} database: {ns}/db for {ops_kind}: grow"),
        ),
        (orphan_type.as_str(), orphan.clone()),
        (pvc_type, pvc_message.to_owned()),
        (update_type.as_str(), reconciled.clone()),
        (ready_type.as_str(), recreated.clone()),
        ("Starting", format!("Resuming {kind} database: {ns}/db")),
        ("Successful", resumed.clone()),
        ("Successful", completed.clone()),
    ];
    for (reason, note) in &want_events {
        assert!(
            seen.iter()
                .any(|[t, r, n, _]| t == "Normal" && r == reason && n == note),
            "{db_kind} {mode}: no Normal {reason} {note:?} among {seen:#?}"
        );
    }
    assert!(seen.iter().any(|[_, r, ..]| r == "UpdateDatabase"), "{seen:#?}");
    assert!(seen.iter().all(|[t, ..]| t == "Normal"), "{seen:#?}");
    // Events name who really acted: volops, not KubeDB's ops-manager.
    assert!(seen.iter().all(|[.., by]| by == "volops-controller"), "{seen:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_online_and_zookeeper_offline_write_kubedbs_conditions_and_events() {
    let (sb, client) = sandbox().await;
    setup(&client, "default", "standard", "online").await;
    storage_class(&client, "slow", "offline", 20).await;
    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    expand_and_check(&client, "rd-online", "Standalone", "Online", "standard").await;
    expand_and_check(&client, "zk-offline", "ZooKeeper", "Offline", "slow").await;
    let _ = stop.send(());
    task.await.unwrap();
    sb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_has_kubedbs_shape_and_the_database_ends_resumed() {
    let (sb, client) = sandbox().await;
    // A driver that refuses every resize: the request fails in Expand.
    setup(&client, "db", "broken", "fail").await;
    let redis = database(&client, "db", "Standalone", "rd", "broken").await;
    let workload = workload_kind(&client, "db", "rd").await;
    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let ops = ops_api(&client, "db", "RedisOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request("RedisOpsRequest", "grow", "rd", "Online", "2Gi", json!({})),
    )
    .await
    .unwrap();
    let done = wait_final(&ops, "grow").await;
    assert_eq!(at(&done, "/status/phase"), Some("Failed"));
    let ve = condition(&done, "VolumeExpansion")
        .expect("VolumeExpansion")
        .clone();
    assert_eq!(ve["status"], "True", "{ve}");
    assert_eq!(ve["reason"], "Failed", "{ve}");
    assert_eq!(ve["observedGeneration"], 1, "{ve}");
    let message = ve["message"].as_str().unwrap();
    assert!(message.contains("Infeasible"), "{message}");
    assert!(condition(&done, "Failed").is_none(), "{:#?}", done.data["status"]);
    assert!(condition(&done, "Successful").is_none());
    // volops's extra: which step failed, and that the cleanup put everything back.
    let cleanup = condition(&done, "Cleanup").expect("Cleanup").clone();
    assert_eq!(
        (&cleanup["status"], &cleanup["reason"]),
        (&json!("True"), &json!("Expand")),
        "{cleanup}"
    );
    let note = format!("Fail to be ready RedisOpsRequest: \"grow\". Reason: {message}");
    let seen = events(&client, "db", "grow", ("FailedToStart", &note)).await;
    let _ = stop.send(());
    task.await.unwrap();
    assert!(
        seen.iter()
            .any(|[t, r, n, _]| t == "Warning" && r == "FailedToStart" && *n == note),
        "{seen:#?}"
    );
    let db = redis.get("rd").await.unwrap();
    assert!(paused_conditions(&db).is_empty(), "database resumed");
    let (group, plural) = if workload == "PetSet" {
        ("apps.k8s.appscode.com", "petsets")
    } else {
        ("apps", "statefulsets")
    };
    dynamic(&client, "db", group, "v1", workload, plural)
        .get("rd")
        .await
        .expect("workload restored");
    sb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_an_earlier_volops_failed_is_still_cleaned_up() {
    let (sb, client) = sandbox().await;
    // An offline-only driver never finishes an Online resize: the request stays in Expand,
    // with its workload orphan-deleted and the database paused.
    setup(&client, "db", "standard", "offline").await;
    let redis = database(&client, "db", "Standalone", "rd", "standard").await;
    let workload = workload_kind(&client, "db", "rd").await;
    let (_stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let ops = ops_api(&client, "db", "RedisOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request("RedisOpsRequest", "grow", "rd", "Online", "2Gi", json!({})),
    )
    .await
    .unwrap();
    let orphaned = wait_for(&ops, "grow", "orphaned", |r| {
        has_condition(r, &format!("Orphan{workload}Pods"))
    })
    .await;
    // The controller goes away (an upgrade) ...
    task.abort();
    let _ = task.await;
    assert!(!paused_conditions(&redis.get("rd").await.unwrap()).is_empty());
    // ... after recording a failure in the shape volops wrote before: `{type: Failed,
    // reason: <step>}`.
    let mut conditions = orphaned.data["status"]["conditions"].as_array().unwrap().clone();
    conditions.push(json!({"type": "Failed", "status": "True", "reason": "Expand",
        "message": "recorded by an earlier volops", "observedGeneration": 1,
        "lastTransitionTime": "2026-01-01T00:00:00Z"}));
    let patch = json!({"metadata": {"resourceVersion": orphaned.metadata.resource_version},
                       "status": {"conditions": conditions}});
    ops.patch_status("grow", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("the old failure recorded");

    // The new controller cleans it up and ends it in KubeDB's shape.
    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let done = wait_final(&ops, "grow").await;
    let _ = stop.send(());
    task.await.unwrap();
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Failed"),
        "{:#?}",
        done.data["status"]
    );
    assert_eq!(
        failure(&done),
        ("Expand".to_owned(), "recorded by an earlier volops".to_owned()),
        "{:#?}",
        done.data["status"]
    );
    assert!(condition(&done, "Failed").is_none(), "{:#?}", done.data["status"]);
    assert_eq!(condition(&done, "Cleanup").unwrap()["status"], "True");
    assert!(
        condition(&done, "UpdatePetSets").is_none() && condition(&done, "UpdateStatefulSets").is_none(),
        "the expansion did not go on: {:#?}",
        done.data["status"]
    );
    let db = redis.get("rd").await.unwrap();
    assert!(paused_conditions(&db).is_empty(), "database resumed");
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("1Gi"));
    let (group, plural) = if workload == "PetSet" {
        ("apps.k8s.appscode.com", "petsets")
    } else {
        ("apps", "statefulsets")
    };
    let w = dynamic(&client, "db", group, "v1", workload, plural)
        .get("rd")
        .await
        .expect("workload restored");
    assert_eq!(
        w.data
            .pointer("/spec/volumeClaimTemplates/0/spec/resources/requests/storage"),
        Some(&json!("1Gi"))
    );
    sb.shutdown().await.unwrap();
}
