//! A graceful stop must finish even when the controller never completed its first list of ops
//! requests (API server failing, or a stop right after start). kube-runtime holds every
//! reconcile until that list is in, and stops driving the list once a graceful shutdown
//! begins: without our guard the stop waited forever (seen as a slow stop after chaos runs).

mod support;

use std::{sync::Arc, time::Duration};

use support::*;
use volops_controller::Metrics;
use volops_sandbox::{FaultConfig, FaultRule};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_finishes_when_the_first_list_never_succeeded() {
    let (sb, client) = sandbox().await;
    setup(&client, "demo", "online", "online").await;
    // Every list of ops requests fails: the controller's store never becomes ready.
    sb.faults().set(FaultConfig {
        seed: 1,
        rules: ["redisopsrequests", "zookeeperopsrequests"]
            .into_iter()
            .map(|resource| FaultRule {
                verb: "list".into(),
                resource: resource.into(),
                rate: 1.0,
                code: 500,
                retry_after_seconds: 1,
            })
            .collect(),
        latency_ms: 0,
        watch_cut_seconds: 0,
    });
    let metrics = Arc::new(Metrics::default());
    let (stop, task) = start_controller(client.clone(), metrics.clone());
    // Let it try (and fail) to list a few times.
    let failed_lists = async {
        while metrics.api_requests_total() < 4 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, failed_lists)
        .await
        .expect("the controller sends requests");
    stop.send(()).expect("controller still running");
    // A hang detector, not a timing goal: before the fix this never returned.
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("graceful stop finished")
        .expect("controller task ok");
}
