//! Defaults without the webhook: a request created straight in the API server (the webhook
//! bypassed, as with the namespace opt-out label or `failurePolicy: Ignore`) still runs with the
//! default step timeout of shared/src/defaults.rs. The CRDs carry no default for it, as
//! KubeDB's do not (`spec.timeout` is every ops type's): only the controller gives it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::*;
use volops_controller::Metrics;
use volops_shared::defaults::DEFAULT_TIMEOUT;

/// Moves the request's step conditions `minutes` into the past: its current step started then.
async fn started_minutes_ago(ops: &kube::Api<kube::api::DynamicObject>, name: &str, minutes: i64) {
    let r = ops.get(name).await.unwrap();
    let then = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(minutes);
    let mut conditions: Vec<Value> = r.data["status"]["conditions"].as_array().unwrap().clone();
    for c in &mut conditions {
        if c["type"] == "VolumeExpansion" || c["type"] == "PauseDatabase" {
            c["lastTransitionTime"] = json!(then.to_string());
        }
    }
    let patch = json!({"metadata": {"resourceVersion": r.metadata.resource_version},
                       "status": {"conditions": conditions}});
    ops.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("status rewritten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_created_without_the_webhook_gets_the_default_step_timeout() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "standard", "online").await;
    let redis = database(&client, "db", "Standalone", "rd", "standard").await;
    // A workload the controller cannot delete: a finalizer keeps it Terminating, so the request
    // stays in OrphanWorkloads until its step timeout strikes.
    let sts = petsets(&client, "db");
    let hold = json!({"metadata": {"finalizers": ["test.volops.dev/hold"]}});
    sts.patch("rd", &Default::default(), &Patch::Merge(&hold))
        .await
        .expect("hold");
    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let ops = ops_api(&client, "db", "RedisOpsRequest");
    // No webhook runs here, and the CRD has no default: the stored request has no spec.timeout.
    let created = ops
        .create(
            &PostParams::default(),
            &ops_request("RedisOpsRequest", "grow", "rd", "Online", "2Gi", json!({})),
        )
        .await
        .expect("ops request created");
    assert!(created.data["spec"].get("timeout").is_none(), "{}", created.data);
    wait_for(&ops, "grow", "paused, orphaning", |r| {
        has_condition(r, "PauseDatabase")
    })
    .await;
    let _ = stop.send(());
    task.await.unwrap();

    // The step has run for longer than the default timeout (10m), and not yet twice as long.
    started_minutes_ago(&ops, "grow", 11).await;
    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let done = wait_final(&ops, "grow").await;
    let _ = stop.send(());
    task.await.unwrap();
    assert_eq!(at(&done, "/status/phase"), Some("Failed"));
    let text = done.data["status"]["conditions"].to_string();
    assert!(
        text.contains(&format!(
            "step OrphanWorkloads did not finish within spec.timeout {DEFAULT_TIMEOUT}"
        )),
        "{text}"
    );
    assert!(
        done.data["spec"].get("timeout").is_none(),
        "the spec stays as written"
    );
    let db = redis.get("rd").await.unwrap();
    assert!(paused_conditions(&db).is_empty(), "database resumed");
    sb.shutdown().await.unwrap();
}
