//! kubectl sees the simulated cluster as it would see a real one: `get pods,pvc,sts` with the
//! built-in columns and `describe pvc` with capacity, class and resize events.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "cluster_common.rs"]
mod cluster;
mod common;

use std::path::Path;

use cluster::*;
use common::kubectl;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;

async fn run(kubectl: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let out = tokio::process::Command::new(kubectl)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .await
        .expect("kubectl runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The row of `table` whose first column is `name`, split into columns.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_shows_pods_claims_and_workloads_like_a_cluster() {
    let Some(kubectl) = kubectl() else { return };
    let (sb, client) = sandbox().await;
    namespace(&client, "db").await;
    storage_class(&client, "standard", "online").await;
    kubedb_crds(&client).await;
    let redis = db_api(&client, "db", true);
    let rd: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1", "kind": "Redis", "metadata": {"name": "rd", "namespace": "db"},
        "spec": {"version": "7.2.4", "replicas": 2,
                 "storage": {"storageClassName": "standard", "accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "1Gi"}}}}
    }))
    .unwrap();
    redis.create(&PostParams::default(), &rd).await.unwrap();
    wait_for(&redis, "rd", "redis Ready", |o| phase(o) == Some("Ready")).await;
    let kubeconfig = sb.kubeconfig_path().to_path_buf();

    let all = run(&kubectl, &kubeconfig, &["get", "pods,pvc,petsets", "-n", "db"]).await;
    let pod = row(&all, "pod/rd-1");
    assert_eq!(&pod[1..3], ["1/1", "Running"], "{all}");
    let pvc = row(&all, "persistentvolumeclaim/data-rd-0");
    assert_eq!(pvc[1], "Bound", "{all}");
    assert!(pvc[2].starts_with("pvc-"), "volume column: {all}");
    assert_eq!(pvc[3], "1Gi", "capacity column: {all}");
    assert_eq!(pvc[4], "RWO", "access modes column: {all}");
    assert_eq!(pvc[5], "standard", "storage class column: {all}");
    // Redis runs on a PetSet (READY, REPLICAS columns of the PetSet CRD).
    assert_eq!(
        &row(&all, "petset.apps.k8s.appscode.com/rd")[1..3],
        ["2", "2"],
        "{all}"
    );

    // Grow one claim through the API and let the simulated resizer finish it.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "db");
    let grow = json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}});
    claims
        .patch("data-rd-0", &PatchParams::default(), &Patch::Merge(&grow))
        .await
        .unwrap();
    wait_for(
        &claims,
        "data-rd-0",
        "capacity 2Gi",
        |p: &PersistentVolumeClaim| {
            p.status
                .as_ref()
                .and_then(|s| s.capacity.as_ref())
                .and_then(|c| c.get("storage"))
                .map(|q| q.0.as_str())
                == Some("2Gi")
        },
    )
    .await;

    let described = run(
        &kubectl,
        &kubeconfig,
        &["describe", "pvc", "data-rd-0", "-n", "db"],
    )
    .await;
    for want in [
        "Name:",
        "data-rd-0",
        "Namespace:",
        "db",
        "StorageClass:",
        "standard",
        "Status:",
        "Bound",
        "Capacity:",
    ] {
        assert!(described.contains(want), "describe lacks {want:?}:\n{described}");
    }
    let capacity_line = described.lines().find(|l| l.starts_with("Capacity:")).unwrap();
    assert!(capacity_line.contains("2Gi"), "{described}");
    assert!(
        described.contains("FileSystemResizeSuccessful"),
        "resize events in describe:\n{described}"
    );
    assert!(
        described.contains("app.kubernetes.io/instance=rd"),
        "labels in describe:\n{described}"
    );
}
