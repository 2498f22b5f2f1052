//! Kubernetes' limits on annotations, which the sandbox enforces as kube-apiserver does: a
//! database name as long as a StatefulSet's may be (52 characters) keeps the keys of the saved
//! workload and pod within 63 characters, and a Redis cluster whose manifests would pass the
//! 256 KiB of annotations an object may hold is saved compressed, as is, in Offline mode, a pod
//! larger than that. Every expansion goes through.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::{
    Api,
    api::{DynamicObject, PostParams},
};
use serde_json::{Value, json};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_expansion_of_a_database_with_a_52_character_name_succeeds() {
    let name = "orders-cache-primary-eu-west-1-production-replica-ab";
    assert_eq!(name.len(), 52);
    let (sb, client) = sandbox().await;
    setup(&client, "db", "slow", "offline").await;
    let redis = database(&client, "db", "Standalone", name, "slow").await;

    let done = grow_redis(&client, name, "Offline", "2Gi").await;
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{:#?}",
        done.data.pointer("/status/conditions")
    );

    let sts = petsets(&client, "db");
    let set = sts.get(name).await.expect("petset recreated under its own name");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_whose_saved_manifests_pass_256_kib_is_expanded() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "slow", "online").await;
    // ~105 KB of env per shard's PetSet, three shards: ~310 KB of manifests in plain JSON.
    big_redis(
        &client,
        json!({"mode": "Cluster", "cluster": {"shards": 3, "replicas": 2}}),
        700,
    )
    .await;
    let sts = petsets(&client, "db");
    let mut plain = 0;
    for shard in ["big-shard0", "big-shard1", "big-shard2"] {
        plain += serde_json::to_string(&sts.get(shard).await.unwrap().data["spec"])
            .unwrap()
            .len();
    }
    assert!(plain > 256 * 1024, "the manifests hold {plain} bytes");

    let done = grow_redis(&client, "big", "Online", "2Gi").await;
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{:#?}",
        done.data.pointer("/status/conditions")
    );
    for shard in ["big-shard0", "big-shard1", "big-shard2"] {
        let set = sts.get(shard).await.expect("petset recreated");
        assert_eq!(
            set.data
                .pointer("/spec/volumeClaimTemplates/0/spec/resources/requests/storage"),
            Some(&Value::from("2Gi"))
        );
        let env = set
            .data
            .pointer("/spec/template/spec/containers/0/env")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        assert_eq!(env, 150, "{shard} recreated with its whole pod template");
    }
    sb.shutdown().await.unwrap();
}

/// A Redis named `big` on the `slow` class whose pod template carries 150 env entries of
/// `value_bytes` each (few long values: the sandbox's managed-fields bookkeeping is slow with
/// thousands of items); `topology` is merged into its spec. Waits until it is Ready.
async fn big_redis(client: &kube::Client, topology: Value, value_bytes: usize) {
    let env: Vec<Value> = (0..150)
        .map(|i| json!({"name": format!("REDIS_SETTING_{i:03}"), "value": format!("{i:03}-").repeat(value_bytes / 4)}))
        .collect();
    let mut spec = json!({"version": "7.2.4",
        "podTemplate": {"spec": {"containers": [{"name": "redis", "env": env}]}},
        "storage": {"storageClassName": "slow", "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}});
    if let (Some(s), Some(t)) = (spec.as_object_mut(), topology.as_object()) {
        s.extend(t.clone());
    }
    let redis = dynamic(client, "db", "kubedb.com", "v1", "Redis", "redises");
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1", "kind": "Redis",
        "metadata": {"name": "big", "namespace": "db"}, "spec": spec
    }))
    .unwrap();
    redis
        .create(&PostParams::default(), &obj)
        .await
        .expect("database created");
    wait_for(&redis, "big", "database Ready", |o| {
        at(o, "/status/phase") == Some("Ready")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_expansion_saves_a_pod_past_256_kib_compressed() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "slow", "offline").await;
    // ~270 KB of env: the pod alone would pass 256 KiB of annotations in plain JSON.
    big_redis(&client, json!({"mode": "Standalone"}), 1800).await;

    let done = grow_redis(&client, "big", "Offline", "2Gi").await;
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{:#?}",
        done.data.pointer("/status/conditions")
    );
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "db");
    let pod = pods.get("big-0").await.expect("pod recreated");
    let env = pod.spec.unwrap().containers[0].env.clone().unwrap_or_default();
    assert_eq!(env.len(), 150, "the pod came back with its whole spec");
    sb.shutdown().await.unwrap();
}
