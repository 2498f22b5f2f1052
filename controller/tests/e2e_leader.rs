//! Two controllers with leader election: only the leader acts; when it dies the other finishes.

mod support;

use std::sync::Arc;

use kube::api::PostParams;
use serde_json::json;
use support::*;
use volops_controller::{Config, LeaderConfig, Metrics};

fn config(identity: &str) -> Config {
    Config {
        leader_election: Some(LeaderConfig {
            lease_name: "volops-controller".into(),
            namespace: "default".into(),
            duration: 3,
            grace: 1,
        }),
        identity: identity.into(),
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_acts_and_the_standby_takes_over() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "standard", "online").await;
    let _redis = database(&client, "db", "Standalone", "rd", "standard").await;
    let (ma, mb) = (Arc::new(Metrics::default()), Arc::new(Metrics::default()));
    let (_stop_a, task_a) = start_controller_with(client.clone(), ma.clone(), config("a"));
    let (stop_b, task_b) = start_controller_with(client.clone(), mb.clone(), config("b"));
    let ops = ops_api(&client, "db", "RedisOpsRequest");
    let pp = PostParams::default();
    ops.create(
        &pp,
        &ops_request("RedisOpsRequest", "one", "rd", "Online", "2Gi", json!({})),
    )
    .await
    .unwrap();
    let one = wait_final(&ops, "one").await;
    assert_eq!(at(&one, "/status/phase"), Some("Successful"));
    let (a, b) = (
        expansions(&ma, "RedisOpsRequest"),
        expansions(&mb, "RedisOpsRequest"),
    );
    assert!(
        (a > 0) != (b > 0),
        "exactly one controller patched PVCs: a={a} b={b}"
    );

    // Kill the leader; the standby must take the lease and run the next request.
    let (survivor, before) = if a > 0 {
        task_a.abort();
        let _ = task_a.await;
        (mb.clone(), b)
    } else {
        task_b.abort();
        let _ = task_b.await;
        (ma.clone(), a)
    };
    ops.create(
        &pp,
        &ops_request("RedisOpsRequest", "two", "rd", "Online", "3Gi", json!({})),
    )
    .await
    .unwrap();
    let two = wait_final(&ops, "two").await;
    assert_eq!(
        at(&two, "/status/phase"),
        Some("Successful"),
        "{:#?}",
        two.data["status"]
    );
    assert!(
        expansions(&survivor, "RedisOpsRequest") > before,
        "the standby did the second expansion"
    );
    let _ = stop_b.send(());
    sb.shutdown().await.unwrap();
}
