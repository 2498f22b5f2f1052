//! Queueing: one request at a time per database, and superseded requests are Skipped.

mod support;

use std::sync::Arc;

use kube::api::PostParams;
use serde_json::json;
use support::*;
use volops_controller::Metrics;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_request_waits_for_the_first_and_older_pending_ones_are_skipped() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "standard", "online").await;
    let redis = database(&client, "db", "Standalone", "rd", "standard").await;
    let ops = ops_api(&client, "db", "RedisOpsRequest");
    let pp = PostParams::default();
    // Both Pending before any controller runs: the older one is superseded.
    ops.create(
        &pp,
        &ops_request("RedisOpsRequest", "a-old", "rd", "Online", "2Gi", json!({})),
    )
    .await
    .unwrap();
    ops.create(
        &pp,
        &ops_request("RedisOpsRequest", "b-new", "rd", "Online", "2Gi", json!({})),
    )
    .await
    .unwrap();
    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let skipped = wait_final(&ops, "a-old").await;
    assert_eq!(at(&skipped, "/status/phase"), Some("Skipped"));
    assert!(has_condition(&skipped, "Skipped"));
    wait_for(&ops, "b-new", "b-new Progressing", |r| {
        at(r, "/status/phase") == Some("Progressing")
    })
    .await;
    // A third request while b-new runs waits behind it.
    ops.create(
        &pp,
        &ops_request("RedisOpsRequest", "c-next", "rd", "Online", "3Gi", json!({})),
    )
    .await
    .unwrap();
    let first = wait_final(&ops, "b-new").await;
    let second = wait_final(&ops, "c-next").await;
    let _ = stop.send(());
    task.await.unwrap();
    assert_eq!(at(&first, "/status/phase"), Some("Successful"));
    assert_eq!(
        at(&second, "/status/phase"),
        Some("Successful"),
        "{:#?}",
        second.data["status"]
    );
    let first_done = condition_time(&first, "Successful").unwrap();
    let second_started = condition_time(&second, "VolumeExpansion").unwrap();
    assert!(
        second_started >= first_done,
        "c-next started {second_started} before b-new ended {first_done}"
    );
    let db = redis.get("rd").await.unwrap();
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("3Gi"));
    sb.shutdown().await.unwrap();
}
