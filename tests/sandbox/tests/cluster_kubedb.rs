//! KubeDB-like provisioner + StatefulSet/PetSet controller through kube::Client.
// Helpers outside #[test] fns panic on purpose too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "cluster_common.rs"]
mod common;

use common::*;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn ready_replicas(o: &DynamicObject) -> i64 {
    o.data
        .pointer("/status/readyReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_and_zookeeper_come_up_ready_with_kubedb_names() {
    let (sb, client) = sandbox().await;
    namespace(&client, "db").await;
    storage_class(&client, "standard", "online").await;
    kubedb_crds(&client).await;
    let redis = db_api(&client, "db", true);
    let zk = db_api(&client, "db", false);
    let rd: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1", "kind": "Redis", "metadata": {"name": "rd", "namespace": "db"},
        "spec": {"version": "7.2.4", "mode": "Cluster", "cluster": {"shards": 3, "replicas": 2},
                 "storage": {"storageClassName": "standard", "accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "1Gi"}}}}
    }))
    .expect("redis");
    redis
        .create(&PostParams::default(), &rd)
        .await
        .expect("redis created");
    let z: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1alpha2", "kind": "ZooKeeper", "metadata": {"name": "zk", "namespace": "db"},
        "spec": {"version": "3.9.1", "replicas": 3,
                 "storage": {"storageClassName": "standard", "accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "2Gi"}}}}
    }))
    .expect("zk");
    zk.create(&PostParams::default(), &z).await.expect("zk created");

    wait_for(&redis, "rd", "redis Ready", |o| phase(o) == Some("Ready")).await;
    wait_for(&zk, "zk", "zookeeper Ready", |o| phase(o) == Some("Ready")).await;

    let sts: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "db",
        &volops_sandbox_cluster::util::statefulset_ar(),
    );
    let pets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "db", &volops_sandbox_cluster::util::petset_ar());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "db");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "db");
    let rd_uid = redis.get("rd").await.expect("rd").uid().expect("uid");
    for i in 0..3 {
        let set = sts.get(&format!("rd-shard{i}")).await.expect("shard statefulset");
        assert_eq!(ready_replicas(&set), 2);
        let owner = &set.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Redis", rd_uid.as_str(), Some(true))
        );
        for j in 0..2 {
            let pod = pods.get(&format!("rd-shard{i}-{j}")).await.expect("pod");
            assert_eq!(pod.owner_references()[0].uid, set.uid().expect("set uid"));
            let pvc = pvcs.get(&format!("data-rd-shard{i}-{j}")).await.expect("pvc");
            let labels: &BTreeMap<String, String> = pvc.metadata.labels.as_ref().expect("labels");
            assert_eq!(labels["app.kubernetes.io/instance"], "rd");
            assert_eq!(labels["app.kubernetes.io/name"], "redises.kubedb.com");
            assert_eq!(labels["app.kubernetes.io/managed-by"], "kubedb.com");
            assert_eq!(labels["redis.kubedb.com/shard"], i.to_string());
            let st = pvc.status.expect("pvc status");
            assert_eq!(st.phase.as_deref(), Some("Bound"));
            assert_eq!(st.capacity.expect("capacity")["storage"].0, "1Gi");
        }
    }
    let pet = pets.get("zk").await.expect("zookeeper petset");
    assert_eq!(ready_replicas(&pet), 3);
    for j in 0..3 {
        pods.get(&format!("zk-{j}")).await.expect("zk pod");
        let pvc = pvcs.get(&format!("zk-data-zk-{j}")).await.expect("zk pvc");
        assert_eq!(pvc.labels()["app.kubernetes.io/name"], "zookeepers.kubedb.com");
    }
    let by_instance = pvcs
        .list(&ListParams::default().labels("app.kubernetes.io/instance=rd"))
        .await
        .expect("list");
    assert_eq!(by_instance.items.len(), 6);
    let svcs: Api<Service> = Api::namespaced(client.clone(), "db");
    for name in ["rd", "rd-pods", "zk", "zk-pods"] {
        svcs.get(name).await.expect("service");
    }
    sb.shutdown().await.expect("shutdown");
}

fn with_paused(o: &DynamicObject, status: Option<&str>) -> Value {
    let mut conds: Vec<Value> = o
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["type"] != "Paused")
        .collect();
    if let Some(s) = status {
        conds.push(json!({"type": "Paused", "status": s, "reason": "Paused",
                          "message": "VolumeExpansion ops is in process", "lastTransitionTime": "2026-01-01T00:00:00Z"}));
    }
    json!({"status": {"conditions": conds}})
}

fn paused(o: &DynamicObject) -> Option<String> {
    volops_sandbox_cluster::kubedb::build::paused_status(o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_handshake_orphan_delete_and_adoption_keep_pods() {
    let (sb, client) = sandbox().await;
    namespace(&client, "db").await;
    storage_class(&client, "standard", "online").await;
    kubedb_crds(&client).await;
    let zk = db_api(&client, "db", false);
    let z: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1alpha2", "kind": "ZooKeeper", "metadata": {"name": "zk", "namespace": "db"},
        "spec": {"version": "3.9.1", "replicas": 3,
                 "storage": {"storageClassName": "standard", "resources": {"requests": {"storage": "1Gi"}}}}
    }))
    .expect("zk");
    zk.create(&PostParams::default(), &z).await.expect("zk created");
    let ready = wait_for(&zk, "zk", "zookeeper Ready", |o| phase(o) == Some("Ready")).await;

    // Pause: Unknown -> True by the provisioner.
    let pp = PatchParams::default();
    zk.patch_status("zk", &pp, &Patch::Merge(with_paused(&ready, Some("Unknown"))))
        .await
        .expect("ask pause");
    let acked = wait_for(&zk, "zk", "Paused=True", |o| paused(o).as_deref() == Some("True")).await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "db");
    let before: Vec<(String, String)> = (0..3)
        .map(|j| format!("zk-{j}"))
        .map(|n| (n.clone(), n))
        .collect();
    let mut uids = BTreeMap::new();
    for (name, _) in &before {
        uids.insert(
            name.clone(),
            pods.get(name).await.expect("pod").uid().expect("uid"),
        );
    }
    let pets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "db", &volops_sandbox_cluster::util::petset_ar());
    let old_set_uid = pets.get("zk").await.expect("petset").uid().expect("uid");
    pets.delete("zk", &DeleteParams::orphan())
        .await
        .expect("orphan delete");
    wait_gone(&pets, "zk", "petset").await;

    // While paused the provisioner must not recreate it; a no-op status write makes it look.
    let phase_before = phase(&acked).map(str::to_owned);
    zk.patch(
        "zk",
        &pp,
        &Patch::Merge(json!({"metadata": {"annotations": {"test/poke": "1"}}})),
    )
    .await
    .expect("poke");
    let recreated = tokio::time::timeout(std::time::Duration::from_millis(300), async {
        wait_for(&pets, "zk", "petset while paused", |_| true).await
    })
    .await;
    assert!(recreated.is_err(), "paused provisioner recreated the PetSet");
    let still = zk.get("zk").await.expect("zk");
    assert_eq!(
        phase(&still).map(str::to_owned),
        phase_before,
        "paused provisioner touched status.phase"
    );
    for (name, uid) in &uids {
        let pod = pods.get(name).await.expect("orphaned pod survives");
        assert_eq!(pod.uid().as_ref(), Some(uid));
        assert!(
            pod.owner_references().is_empty(),
            "orphan delete strips ownerReferences"
        );
    }

    // Resume: remove the condition; the PetSet comes back and adopts the running pods.
    zk.patch_status("zk", &pp, &Patch::Merge(with_paused(&still, None)))
        .await
        .expect("resume");
    let set = wait_for(&pets, "zk", "recreated petset Ready", |o| ready_replicas(o) == 3).await;
    let new_uid = set.uid().expect("uid");
    assert_ne!(new_uid, old_set_uid);
    for (name, uid) in &uids {
        let pod = wait_for(&pods, name, "adopted pod", |p| {
            p.owner_references()
                .iter()
                .any(|r| r.uid == new_uid && r.controller == Some(true))
        })
        .await;
        assert_eq!(pod.uid().as_ref(), Some(uid), "adoption must not recreate pods");
    }
    wait_for(&zk, "zk", "zookeeper Ready again", |o| phase(o) == Some("Ready")).await;
    sb.shutdown().await.expect("shutdown");
}
