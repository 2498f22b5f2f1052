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
use volops_sandbox_cluster::{ClusterConfig, RedisWorkload};

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

    let pets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "db", &volops_sandbox_cluster::util::petset_ar());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "db");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "db");
    let rd_uid = redis.get("rd").await.expect("rd").uid().expect("uid");
    for i in 0..3 {
        // Current KubeDB runs Redis on PetSets, one per shard.
        let set = pets.get(&format!("rd-shard{i}")).await.expect("shard petset");
        assert_eq!(ready_replicas(&set), 2);
        let owner = &set.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Redis", rd_uid.as_str(), Some(true))
        );
        for j in 0..2 {
            let pod = pods.get(&format!("rd-shard{i}-{j}")).await.expect("pod");
            assert_eq!(pod.owner_references()[0].uid, set.uid().expect("set uid"));
            assert_eq!(pod.owner_references()[0].kind, "PetSet");
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
    let sts: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "db",
        &volops_sandbox_cluster::util::statefulset_ar(),
    );
    let none = sts.list(&ListParams::default()).await.expect("list statefulsets");
    assert!(none.items.is_empty(), "no StatefulSet in the PetSet layout");
    sb.shutdown().await.expect("shutdown");
}

/// A Redis Cluster (2 shards x 2) on `layout`, paused, every shard orphan-deleted, one claim
/// grown meanwhile, resumed: the workloads come back, adopt the same pods and reuse the same
/// claims (never resized or recreated), and the database is Ready again.
async fn redis_shards_survive_orphan_delete_and_are_adopted(layout: RedisWorkload) {
    let (sb, client) = sandbox_with(ClusterConfig::fast().with_redis_workload(layout)).await;
    namespace(&client, "db").await;
    storage_class(&client, "standard", "online").await;
    kubedb_crds(&client).await;
    let redis = db_api(&client, "db", true);
    let rd: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1", "kind": "Redis", "metadata": {"name": "rd", "namespace": "db"},
        "spec": {"version": "8.2.2", "mode": "Cluster", "cluster": {"shards": 2, "replicas": 2},
                 "storage": {"storageClassName": "standard", "accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "1Gi"}}}}
    }))
    .expect("redis");
    redis
        .create(&PostParams::default(), &rd)
        .await
        .expect("redis created");
    let ready = wait_for(&redis, "rd", "redis Ready", |o| phase(o) == Some("Ready")).await;
    let (ar, other) = match layout {
        RedisWorkload::PetSet => (
            volops_sandbox_cluster::util::petset_ar(),
            volops_sandbox_cluster::util::statefulset_ar(),
        ),
        RedisWorkload::StatefulSet => (
            volops_sandbox_cluster::util::statefulset_ar(),
            volops_sandbox_cluster::util::petset_ar(),
        ),
    };
    let sets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "db", &ar);
    let others: Api<DynamicObject> = Api::namespaced_with(client.clone(), "db", &other);
    assert!(
        others
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty(),
        "Redis runs on {} only",
        ar.kind
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "db");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "db");
    let names: Vec<(String, String)> = (0..2)
        .flat_map(|i| (0..2).map(move |j| (i, j)))
        .map(|(i, j)| (format!("rd-shard{i}-{j}"), format!("data-rd-shard{i}-{j}")))
        .collect();
    let mut old_sets = BTreeMap::new();
    for i in 0..2 {
        let name = format!("rd-shard{i}");
        let set = sets.get(&name).await.expect("shard workload");
        assert_eq!(
            set.data["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
            "1Gi"
        );
        old_sets.insert(name, set.uid().expect("uid"));
    }
    let mut before = BTreeMap::new();
    for (pod, pvc) in &names {
        let p = pods.get(pod).await.expect("pod");
        let owner = &p.owner_references()[0];
        assert_eq!(owner.kind, ar.kind, "{pod} is owned by its {}", ar.kind);
        let c = pvcs.get(pvc).await.expect("claim from the claim template");
        assert!(c.owner_references().is_empty(), "claims are retained, not owned");
        before.insert(pod.clone(), (p.uid().expect("uid"), c.uid().expect("uid")));
    }

    let pp = PatchParams::default();
    redis
        .patch_status("rd", &pp, &Patch::Merge(with_paused(&ready, Some("Unknown"))))
        .await
        .expect("ask pause");
    wait_for(&redis, "rd", "Paused=True", |o| {
        paused(o).as_deref() == Some("True")
    })
    .await;
    for name in old_sets.keys() {
        sets.delete(name, &DeleteParams::orphan())
            .await
            .expect("orphan delete");
    }
    for name in old_sets.keys() {
        wait_gone(&sets, name, "shard workload").await;
    }
    for (pod, (uid, _)) in &before {
        let p = pods.get(pod).await.expect("orphaned pod survives");
        assert_eq!(p.uid().as_ref(), Some(uid));
        assert!(p.owner_references().is_empty(), "{pod} is an orphan");
    }
    // Grown while orphaned, as an Online expansion does.
    let grow = json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}});
    pvcs.patch("data-rd-shard1-0", &pp, &Patch::Merge(&grow))
        .await
        .expect("grow claim");

    // Resume with a bigger claim template (what the ops-manager's reconcile writes).
    let paused_db = redis.get("rd").await.expect("rd");
    redis
        .patch(
            "rd",
            &pp,
            &Patch::Merge(json!({"spec": {"storage": {"resources": {"requests": {"storage": "2Gi"}}}}})),
        )
        .await
        .expect("new size");
    redis
        .patch_status("rd", &pp, &Patch::Merge(with_paused(&paused_db, None)))
        .await
        .expect("resume");
    for (name, old_uid) in &old_sets {
        let set = wait_for(&sets, name, "recreated shard Ready", |o| ready_replicas(o) == 2).await;
        assert_ne!(set.uid().as_ref(), Some(old_uid), "{name} is a new object");
        assert_eq!(
            set.data["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
            "2Gi"
        );
        let new_uid = set.uid().expect("uid");
        for j in 0..2 {
            let pod = format!("{name}-{j}");
            let p = wait_for(&pods, &pod, "adopted pod", |p| {
                p.owner_references()
                    .iter()
                    .any(|r| r.uid == new_uid && r.controller == Some(true))
            })
            .await;
            let c = pvcs.get(&format!("data-{pod}")).await.expect("claim");
            assert_eq!(
                (p.uid().expect("uid"), c.uid().expect("uid")),
                before[&pod],
                "{pod} and its claim are the same objects"
            );
        }
    }
    wait_for(&pvcs, "data-rd-shard1-0", "grown claim", |c| {
        c.status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .is_some_and(|cap| cap["storage"].0 == "2Gi")
    })
    .await;
    let untouched = pvcs.get("data-rd-shard0-0").await.expect("claim");
    assert_eq!(
        untouched
            .spec
            .and_then(|s| s.resources)
            .and_then(|r| r.requests)
            .expect("requests")["storage"]
            .0,
        "1Gi",
        "a recreated workload reuses claims by name and never resizes them"
    );
    wait_for(&redis, "rd", "redis Ready again", |o| phase(o) == Some("Ready")).await;
    sb.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_on_petsets_orphan_delete_and_adoption_keep_pods_and_claims() {
    redis_shards_survive_orphan_delete_and_are_adopted(RedisWorkload::PetSet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_on_statefulsets_orphan_delete_and_adoption_keep_pods_and_claims() {
    redis_shards_survive_orphan_delete_and_are_adopted(RedisWorkload::StatefulSet).await;
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
