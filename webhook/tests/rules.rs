//! Every validation rule through `/validate`, allow and deny side, with the message the user
//! sees verbatim.

mod common;

use common::*;
use serde_json::json;
use volops_shared::facts::RuleOptions;

#[tokio::test]
async fn valid_growth_is_allowed_without_warnings() {
    let resp = validate(
        &World::standard(),
        &Review::create_redis_ops(redis_ops("rd", "2Gi")),
    )
    .await;
    assert_allowed(&resp);
    assert!(warnings(&resp).is_empty(), "{resp}");
}

#[tokio::test]
async fn rule1_type_missing_unknown_and_other() {
    let w = World::standard();
    let mut obj = redis_ops("rd", "2Gi");
    obj["spec"].as_object_mut().unwrap().remove("type");
    assert_denied(
        &validate(&w, &Review::create_redis_ops(obj.clone())).await,
        422,
        "spec.type is required; set it to VolumeExpansion to grow the volumes of the database",
    );
    obj["spec"]["type"] = json!("Bogus");
    assert_denied(
        &validate(&w, &Review::create_redis_ops(obj.clone())).await,
        422,
        "spec.type \"Bogus\" is not a RedisOpsRequest type; the supported types are UpdateVersion, \
         HorizontalScaling, VerticalScaling, VolumeExpansion, Restart, Reconfigure, ReconfigureTLS, \
         ReplaceSentinel, RotateAuth, Announce, StorageMigration",
    );
    obj["spec"]["type"] = json!("Restart");
    // Passed through by default (KubeDB's ops-manager runs it).
    let resp = post(
        &w.router(RuleOptions::default()),
        "/validate",
        &Review::create_redis_ops(obj.clone()),
    )
    .await;
    assert_allowed(&resp);
    assert_eq!(
        warnings(&resp),
        ["volops does not handle RedisOpsRequest of type Restart; it is left to KubeDB's ops-manager"]
    );
    let deny = RuleOptions {
        other_types: volops_shared::facts::OtherTypes::Deny,
        ..RuleOptions::default()
    };
    let resp = post(&w.router(deny), "/validate", &Review::create_redis_ops(obj)).await;
    assert_denied(
        &resp,
        422,
        "volops handles only RedisOpsRequest of type VolumeExpansion, not Restart, and this cluster denies \
         the other types (webhook --other-types deny); run Restart where KubeDB's ops-manager \
         handles it, or ask your cluster admin to pass other types through",
    );
}

#[tokio::test]
async fn rule2_database_must_exist_be_durable_and_have_storage() {
    let mut w = World::standard();
    assert_denied(
        &validate(&w, &Review::create_redis_ops(redis_ops("nope", "2Gi"))).await,
        403,
        "Redis demo/nope not found: spec.databaseRef.name must name a Redis in namespace demo; create the \
         database first or fix the name",
    );
    w.redis.push(redis("eph", "Ephemeral", "fast", "1Gi"));
    assert_denied(
        &validate(&w, &Review::create_redis_ops(redis_ops("eph", "2Gi"))).await,
        403,
        "Redis demo/eph has spec.storageType Ephemeral: it keeps its data in memory-backed volumes that cannot \
         be expanded; only Durable databases can be",
    );
    let mut bare = redis("bare", "Durable", "fast", "1Gi");
    bare["spec"].as_object_mut().unwrap().remove("storage");
    w.redis.push(bare);
    assert_denied(
        &validate(&w, &Review::create_redis_ops(redis_ops("bare", "2Gi"))).await,
        403,
        "Redis demo/bare has no spec.storage, so it has no volumes to expand",
    );
    // A database of the same name in another namespace does not count.
    let mut elsewhere = redis("other", "Durable", "fast", "1Gi");
    elsewhere["metadata"]["namespace"] = json!("prod");
    w.redis.push(elsewhere);
    assert_denied(
        &validate(&w, &Review::create_redis_ops(redis_ops("other", "2Gi"))).await,
        403,
        "Redis demo/other not found: spec.databaseRef.name must name a Redis in namespace demo; create the \
         database first or fix the name",
    );
}

#[tokio::test]
async fn rule3_size_field_and_mode() {
    let w = World::standard();
    let mut obj = redis_ops("rd", "2Gi");
    obj["spec"]["volumeExpansion"]
        .as_object_mut()
        .unwrap()
        .remove("redis");
    assert_denied(
        &validate(&w, &Review::create_redis_ops(obj)).await,
        422,
        "spec.volumeExpansion.redis is required for a VolumeExpansion RedisOpsRequest: set it to the new size \
         of each volume, e.g. 2Gi",
    );
    assert_denied(
        &validate(&w, &Review::create_redis_ops(redis_ops("rd", "lots"))).await,
        422,
        "spec.volumeExpansion.redis \"lots\" is not a valid quantity (quantities must match the regular \
         expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'); write a Kubernetes quantity such as 2Gi or 2G",
    );
    let mut obj = redis_ops("rd", "2Gi");
    obj["spec"]["volumeExpansion"]["mode"] = json!("Sideways");
    assert_denied(
        &validate(&w, &Review::create_redis_ops(obj)).await,
        422,
        "spec.volumeExpansion.mode \"Sideways\" is not supported; use Online or Offline",
    );
    let mut obj = redis_ops("rd", "2Gi");
    obj["spec"]["volumeExpansion"]["mode"] = json!("Offline");
    assert_allowed(&validate(&w, &Review::create_redis_ops(obj)).await);
}

#[tokio::test]
async fn rule4_shrink_and_equal_size_are_denied() {
    let mut w = World::standard();
    assert_denied(
        &validate(&w, &Review::create_redis_ops(redis_ops("rd", "1Gi"))).await,
        422,
        "desired storage 1Gi must be greater than the current 1Gi (largest PVC data-rd-shard0-0); volumes can \
         only grow, so ask for more than 1Gi",
    );
    // A PVC already larger than spec.storage sets the bar.
    w.pvcs[2]["status"]["capacity"]["storage"] = json!("3Gi");
    w.pvcs[2]["spec"]["resources"]["requests"]["storage"] = json!("3Gi");
    assert_denied(
        &validate(&w, &Review::create_redis_ops(redis_ops("rd", "2Gi"))).await,
        422,
        "desired storage 2Gi must be greater than the current 3Gi (largest PVC data-rd-shard1-0); volumes can \
         only grow, so ask for more than 3Gi",
    );
    assert_allowed(&validate(&w, &Review::create_redis_ops(redis_ops("rd", "4Gi"))).await);
}

#[tokio::test]
async fn rule4_is_checked_only_while_pending() {
    let w = World::standard();
    let mut obj = redis_ops("rd", "1Gi");
    obj["status"] = json!({"phase": "Progressing"});
    assert_allowed(&validate(&w, &Review::create_redis_ops(obj)).await);
}

#[tokio::test]
async fn rule5_storage_class_must_exist_and_expand() {
    let mut w = World::standard();
    for pvc in &mut w.pvcs[..4] {
        pvc["spec"]["storageClassName"] = json!("fixed");
    }
    assert_denied(
        &validate(&w, &Review::create_redis_ops(redis_ops("rd", "2Gi"))).await,
        403,
        "StorageClass \"fixed\" of PVC data-rd-shard0-0 does not allow volume expansion; ask your cluster admin \
         to set allowVolumeExpansion: true on it (if its driver supports resizing)",
    );
    for pvc in &mut w.pvcs[..4] {
        pvc["spec"]["storageClassName"] = json!("gone");
    }
    assert_denied(
        &validate(&w, &Review::create_redis_ops(redis_ops("rd", "2Gi"))).await,
        403,
        "StorageClass \"gone\" of PVC data-rd-shard0-0 does not exist; volumes of a missing class cannot be \
         expanded, so recreate the class (with allowVolumeExpansion: true) first",
    );
}

#[tokio::test]
async fn rule6_pvcs_bound_and_not_resizing() {
    let mut w = World::standard();
    w.pvcs[1]["status"]["phase"] = json!("Pending");
    assert_denied(
        &validate(&w, &Review::create_redis_ops(redis_ops("rd", "2Gi"))).await,
        403,
        "PVC data-rd-shard0-1 is Pending, not Bound; wait until every volume of the database is bound, then retry",
    );
    let mut w = World::standard();
    w.pvcs[3]["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
    w.pvcs[3]["status"]["allocatedResourceStatuses"] = json!({"storage": "ControllerResizeInProgress"});
    assert_denied(
        &validate(&w, &Review::create_redis_ops(redis_ops("rd", "3Gi"))).await,
        403,
        "PVC data-rd-shard1-1 already has a resize in progress (requested 2Gi, capacity 1Gi); wait until it \
         finishes, then retry",
    );
}

#[tokio::test]
async fn rule7_quota_must_hold_the_grown_total() {
    let mut w = World::standard();
    w.quotas.push(json!({"apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "storage", "namespace": "demo"},
        "spec": {"hard": {"requests.storage": "10Gi", "fast.storageclass.storage.k8s.io/requests.storage": "12Gi"}}}));
    // 4 Redis + 3 ZooKeeper PVCs at 1Gi: growing the Redis ones to 2Gi makes 11Gi.
    assert_denied(
        &validate(&w, &Review::create_redis_ops(redis_ops("rd", "2Gi"))).await,
        403,
        "ResourceQuota demo/storage would be exceeded: requests.storage would grow from 7Gi to 11Gi, above its \
         limit of 10Gi; ask for a smaller size or have the quota raised",
    );
    assert_allowed(&validate(&w, &Review::create_redis_ops(redis_ops("rd", "1792Mi"))).await);
    // A quota in another namespace does not apply.
    w.quotas[0]["metadata"]["namespace"] = json!("prod");
    assert_allowed(&validate(&w, &Review::create_redis_ops(redis_ops("rd", "2Gi"))).await);
}

fn policy(name: &str, enforcement: &str, tenant: &str) -> serde_json::Value {
    json!({"apiVersion": "volops.dev/v1alpha1", "kind": "VolumeExpansionPolicy", "metadata": {"name": name},
           "spec": {"namespaceSelector": {"matchLabels": {"tenant": tenant}}, "maxSize": "3Gi",
                    "allowedModes": ["Online"], "enforcement": enforcement}})
}

#[tokio::test]
async fn rule8_deny_policy_denies_and_warn_policy_warns() {
    let mut w = World::standard();
    w.policies.push(policy("cap", "Deny", "a"));
    assert_denied(
        &validate(&w, &Review::create_redis_ops(redis_ops("rd", "4Gi"))).await,
        403,
        "VolumeExpansionPolicy \"cap\" denies this request: 4Gi is above its maxSize of 3Gi; ask for at most 3Gi",
    );
    let mut offline = redis_ops("rd", "2Gi");
    offline["spec"]["volumeExpansion"]["mode"] = json!("Offline");
    assert_denied(
        &validate(&w, &Review::create_redis_ops(offline)).await,
        403,
        "VolumeExpansionPolicy \"cap\" denies this request: mode Offline is not allowed (allowedModes: Online)",
    );
    assert_allowed(&validate(&w, &Review::create_redis_ops(redis_ops("rd", "3Gi"))).await);

    let mut w = World::standard();
    w.policies.push(policy("cap", "Warn", "a"));
    let resp = validate(&w, &Review::create_redis_ops(redis_ops("rd", "4Gi"))).await;
    assert_allowed(&resp);
    assert_eq!(
        warnings(&resp),
        ["VolumeExpansionPolicy \"cap\" (Warn): 4Gi is above its maxSize of 3Gi; ask for at most 3Gi"]
    );

    // A policy whose selector does not match the namespace is ignored.
    let mut w = World::standard();
    w.policies.push(policy("cap", "Deny", "b"));
    assert_allowed(&validate(&w, &Review::create_redis_ops(redis_ops("rd", "4Gi"))).await);
}

#[tokio::test]
async fn rule9_spec_is_immutable_but_status_updates_pass() {
    let w = World::standard();
    let old = redis_ops("rd", "2Gi");
    let mut changed = old.clone();
    changed["spec"]["volumeExpansion"]["redis"] = json!("3Gi");
    let mut review = Review::new("RedisOpsRequest", "UPDATE", Some(changed));
    review.old_object = Some(old.clone());
    assert_denied(
        &validate(&w, &review).await,
        422,
        "the spec of RedisOpsRequest demo/grow cannot change once the request is accepted (changed: \
         spec.volumeExpansion.redis); create a new RedisOpsRequest instead",
    );
    let mut status = old.clone();
    status["status"] = json!({"phase": "Progressing"});
    let mut review = Review::new("RedisOpsRequest", "UPDATE", Some(status));
    review.old_object = Some(old.clone());
    review.sub_resource = Some("status");
    assert_allowed(&validate(&w, &review).await);
    let mut labelled = old.clone();
    labelled["metadata"]["labels"] = json!({"team": "a"});
    let mut review = Review::new("RedisOpsRequest", "UPDATE", Some(labelled));
    review.old_object = Some(old);
    assert_allowed(&validate(&w, &review).await);
}

#[tokio::test]
async fn rule10_second_request_is_allowed_with_a_queue_warning() {
    let mut w = World::standard();
    let mut first = redis_ops("rd", "2Gi");
    first["metadata"]["name"] = json!("first");
    first["status"] = json!({"phase": "Progressing"});
    w.redis_ops.push(first);
    let resp = validate(&w, &Review::create_redis_ops(redis_ops("rd", "3Gi"))).await;
    assert_allowed(&resp);
    assert_eq!(
        warnings(&resp),
        [
            "RedisOpsRequest demo/first is already Progressing for Redis demo/rd; this request will wait until it finishes"
        ]
    );
}

#[tokio::test]
async fn database_storage_shrink_is_denied_and_growth_judged() {
    let w = World::standard();
    let old = redis("rd", "Durable", "fast", "1Gi");
    let mut review = Review::new("Redis", "UPDATE", Some(redis("rd", "Durable", "fast", "512Mi")));
    review.old_object = Some(old.clone());
    assert_denied(
        &validate(&w, &review).await,
        422,
        "spec.storage.resources.requests.storage of Redis demo/rd cannot shrink from 1Gi to 512Mi: volumes can \
         only grow; to grow them, create a RedisOpsRequest with spec.type VolumeExpansion",
    );
    // Growth by an edit grows no volume: denied by default, judged by the rules within policy
    // (tests/tenant.rs has the details).
    let mut review = Review::new("Redis", "UPDATE", Some(redis("rd", "Durable", "fast", "2Gi")));
    review.old_object = Some(old);
    let resp = validate(&w, &review).await;
    assert_eq!(resp["status"]["code"], 403, "{resp}");
    let within = RuleOptions {
        direct_growth: volops_shared::facts::DirectGrowth::WithinPolicy,
        ..RuleOptions::default()
    };
    assert_allowed(&post(&w.router(within), "/validate", &review).await);
}

#[tokio::test]
async fn zookeeper_requests_use_the_node_field() {
    let w = World::standard();
    let zk = |size: &str| {
        json!({"apiVersion": "ops.kubedb.com/v1alpha1", "kind": "ZooKeeperOpsRequest",
               "metadata": {"name": "zk-grow", "namespace": "demo"},
               "spec": {"type": "VolumeExpansion", "databaseRef": {"name": "zk"},
                        "volumeExpansion": {"mode": "Online", "node": size}}})
    };
    let review = |obj| Review::new("ZooKeeperOpsRequest", "CREATE", Some(obj));
    assert_allowed(&validate(&w, &review(zk("2Gi"))).await);
    assert_denied(
        &validate(&w, &review(zk("500Mi"))).await,
        422,
        "desired storage 500Mi must be greater than the current 1Gi (largest PVC zk-data-zk-0); volumes can only \
         grow, so ask for more than 1Gi",
    );
}
