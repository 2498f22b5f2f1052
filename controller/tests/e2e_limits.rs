//! A database whose name is as long as a StatefulSet's may be (52 characters): the keys of the
//! annotations that save its workload and pod stay within Kubernetes' 63-character limit (the
//! sandbox rejects longer ones as kube-apiserver does), and the expansion goes through.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::{Api, api::PostParams};
use serde_json::{Value, json};
use support::*;
use volops_controller::Metrics;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_expansion_of_a_database_with_a_52_character_name_succeeds() {
    let name = "orders-cache-primary-eu-west-1-production-replica-ab";
    assert_eq!(name.len(), 52);
    let (sb, client) = sandbox().await;
    setup(&client, "db", "slow", "offline").await;
    let redis = database(&client, "db", "Standalone", name, "slow").await;

    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let ops = ops_api(&client, "db", "RedisOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request("RedisOpsRequest", "grow", name, "Offline", "2Gi", json!({})),
    )
    .await
    .expect("ops request created");
    let done = wait_final(&ops, "grow").await;
    let _ = stop.send(());
    task.await.unwrap();
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{:#?}",
        done.data.pointer("/status/conditions")
    );

    let sts = dynamic(&client, "db", "apps", "v1", "StatefulSet", "statefulsets");
    let set = sts
        .get(name)
        .await
        .expect("statefulset recreated under its own name");
    assert_eq!(
        set.data
            .pointer("/spec/volumeClaimTemplates/0/spec/resources/requests/storage"),
        Some(&Value::from("2Gi"))
    );
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "db");
    let pvc = pvcs.get(&format!("data-{name}-0")).await.unwrap();
    let capacity = &pvc.status.unwrap().capacity.unwrap()["storage"].0;
    assert_eq!(capacity, "2Gi");
    let db = redis.get(name).await.unwrap();
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("2Gi"));
    assert!(paused_conditions(&db).is_empty());
    sb.shutdown().await.unwrap();
}
