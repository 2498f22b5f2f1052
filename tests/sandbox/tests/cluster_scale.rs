//! Scale smoke test (ignored by default; run with `--ignored --nocapture`): 200 Redis DBs with
//! 6 PVCs each come up Ready; prints the time it took.
#![allow(clippy::expect_used)]

#[path = "cluster_common.rs"]
mod common;

use common::*;
use kube::api::{DynamicObject, ListParams, PostParams};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale figure, minutes on a shared 2-core machine"]
async fn two_hundred_dbs_with_1200_pvcs_come_up() {
    let (sb, client) = sandbox().await;
    namespace(&client, "scale").await;
    storage_class(&client, "standard", "online").await;
    kubedb_crds(&client).await;
    let redis = db_api(&client, "scale", true);
    let start = Instant::now();
    for i in 0..200 {
        let db: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "kubedb.com/v1", "kind": "Redis",
            "metadata": {"name": format!("rd{i}"), "namespace": "scale"},
            "spec": {"version": "7", "mode": "Cluster", "cluster": {"shards": 3, "replicas": 2},
                     "storage": {"storageClassName": "standard", "resources": {"requests": {"storage": "1Gi"}}}}
        }))
        .expect("db");
        redis.create(&PostParams::default(), &db).await.expect("created");
    }
    let created = start.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let list = redis.list(&ListParams::default()).await.expect("list");
        let ready = list.items.iter().filter(|d| phase(d) == Some("Ready")).count();
        if ready == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "only {ready}/200 Ready after 300 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "200 Redis clusters (1,200 pods + PVCs): created in {created:?}, all Ready after {:?}",
        start.elapsed()
    );
    sb.shutdown().await.expect("shutdown");
}
