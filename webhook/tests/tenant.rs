//! Issue 18 through `/validate`: what a tenant writes is not trusted (the controller's
//! annotations, a timeout that is not a duration, storage grown around an ops request, a policy
//! volops cannot enforce), and the controller's own writes pass unchecked.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{Value, json};
use volops_shared::facts::{DirectGrowth, RuleOptions};

const CONTROLLER: &str = "system:serviceaccount:volops-system:volops-controller";

fn options(direct_growth: DirectGrowth) -> RuleOptions {
    RuleOptions {
        direct_growth,
        controller_username: Some(Arc::from(CONTROLLER)),
        ..RuleOptions::default()
    }
}

async fn check(w: &World, review: &Review, direct_growth: DirectGrowth) -> Value {
    post(&w.router(options(direct_growth)), "/validate", review).await
}

fn annotated(key: &str, value: &str) -> Value {
    let mut obj = redis_ops("rd", "2Gi");
    obj["metadata"]["annotations"] = json!({ key: value, "example.com/note": "fine" });
    obj
}

fn update(kind: &'static str, old: Value, new: Value) -> Review {
    let mut r = Review::new(kind, "UPDATE", Some(new));
    r.old_object = Some(old);
    r
}

#[tokio::test]
async fn owned_annotations_are_the_controllers_alone() {
    let w = World::standard();
    let deny = DirectGrowth::Deny;
    let forged = annotated("volops.dev/workload.statefulset.rd", "{}");
    let create = Review::create_redis_ops(forged.clone());
    assert_denied(
        &check(&w, &create, deny).await,
        403,
        "RedisOpsRequest demo/grow: annotations under volops.dev/ and volumeexpansion.ops.kubedb.com/ are written \
         only by the volops controller, which keeps what it must restore there (added: \
         volops.dev/workload.statefulset.rd); leave them out of the request",
    );
    let pod = Review::create_redis_ops(annotated("volumeexpansion.ops.kubedb.com/rd-shard0-0", "{}"));
    assert_eq!(check(&w, &pod, deny).await["status"]["code"], 403);
    assert_allowed(
        &check(
            &w,
            &Review::create_redis_ops(annotated("example.com/x", "y")),
            deny,
        )
        .await,
    );

    // UPDATE: added, changed, removed; the status subresource and other annotations alike.
    let plain = redis_ops("rd", "2Gi");
    let saved = annotated("volops.dev/workload.statefulset.rd", "saved");
    for (old, new, what) in [
        (&plain, &forged, "added"),
        (&saved, &forged, "changed"),
        (&saved, &plain, "removed"),
    ] {
        let mut r = update("RedisOpsRequest", old.clone(), new.clone());
        let resp = check(&w, &r, deny).await;
        assert_eq!(resp["status"]["code"], 403, "{resp}");
        let message = resp["status"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("({what}: volops.dev/workload.statefulset.rd)")),
            "{message}"
        );
        r.sub_resource = Some("status");
        assert_eq!(check(&w, &r, deny).await["allowed"], false);
        // The controller writes them.
        r.username = CONTROLLER;
        assert_allowed(&check(&w, &r, deny).await);
    }
    let mut kept = saved.clone();
    kept["metadata"]["annotations"]["example.com/note"] = json!("changed");
    assert_allowed(&check(&w, &update("RedisOpsRequest", saved, kept), deny).await);
    // Without --controller-username nobody is exempt.
    let mut r = Review::create_redis_ops(forged);
    r.username = CONTROLLER;
    assert_eq!(validate(&w, &r).await["allowed"], false);
}

#[tokio::test]
async fn a_timeout_must_be_a_go_duration() {
    let w = World::standard();
    let with = |t: Value| {
        let mut obj = redis_ops("rd", "2Gi");
        obj["spec"]["timeout"] = t;
        Review::create_redis_ops(obj)
    };
    assert_denied(
        &validate(&w, &with(json!("300"))).await,
        422,
        "spec.timeout \"300\" is not a duration: write a Go duration with its unit, such as 300s for 300 seconds, \
         5m or 1h30m",
    );
    assert_eq!(validate(&w, &with(json!(300))).await["status"]["code"], 422);
    assert_eq!(validate(&w, &with(json!("0s"))).await["status"]["code"], 422);
    for ok in ["300s", "5m", "1h30m"] {
        assert_allowed(&validate(&w, &with(json!(ok))).await);
    }
}

fn grown_pvc(w: &World, i: usize, size: &str) -> Review {
    let old = w.pvcs[i].clone();
    let mut new = old.clone();
    new["spec"]["resources"]["requests"]["storage"] = json!(size);
    update("PersistentVolumeClaim", old, new)
}

fn cap(name: &str, extra: Value) -> Value {
    let mut spec = json!({"maxSize": "3Gi"});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    json!({"apiVersion": "volops.dev/v1alpha1", "kind": "VolumeExpansionPolicy",
           "metadata": {"name": name}, "spec": spec})
}

#[tokio::test]
async fn a_pvc_grown_directly_is_denied_for_a_database_and_judged_otherwise() {
    let mut w = World::standard();
    w.policies.push(cap("cap", json!({})));
    let deny = DirectGrowth::Deny;
    assert_denied(
        &check(&w, &grown_pvc(&w, 0, "50Gi"), deny).await,
        403,
        "PVC demo/data-rd-shard0-0 of Redis demo/rd cannot grow from 1Gi to 50Gi by editing it: the volumes of a \
         database grow only through a RedisOpsRequest with spec.type VolumeExpansion, which also updates its \
         workloads and spec.storage (this cluster denies direct growth: volops webhook --direct-growth deny)",
    );
    let within = DirectGrowth::WithinPolicy;
    assert_denied(
        &check(&w, &grown_pvc(&w, 0, "50Gi"), within).await,
        403,
        "VolumeExpansionPolicy \"cap\" denies growing PVC demo/data-rd-shard0-0 directly: 50Gi is above its maxSize \
         of 3Gi; ask for at most 3Gi",
    );
    assert_allowed(&check(&w, &grown_pvc(&w, 0, "3Gi"), within).await);
    // A PVC of no database: the policy judges it whatever the mode.
    w.pvcs.push(pvc("scratch", json!({}), "fast", "1Gi"));
    let last = w.pvcs.len() - 1;
    assert_eq!(
        check(&w, &grown_pvc(&w, last, "50Gi"), deny).await["status"]["message"],
        "VolumeExpansionPolicy \"cap\" denies growing PVC demo/scratch directly: 50Gi is above its maxSize of 3Gi; \
         ask for at most 3Gi"
    );
    assert_allowed(&check(&w, &grown_pvc(&w, last, "2Gi"), deny).await);
    // Quotas count the PVC's growth.
    w.quotas.push(json!({"apiVersion": "v1", "kind": "ResourceQuota",
                         "metadata": {"name": "storage", "namespace": "demo"},
                         "spec": {"hard": {"requests.storage": "9Gi"}}}));
    let resp = check(&w, &grown_pvc(&w, last, "3Gi"), deny).await;
    assert_eq!(
        resp["status"]["message"],
        "ResourceQuota demo/storage would be exceeded: requests.storage would grow from 8Gi to 10Gi, above its \
         limit of 9Gi; ask for a smaller size or have the quota raised"
    );
    // Anything but a growing request passes: other edits, a shrink, the status, the controller.
    let mut labelled = grown_pvc(&w, 0, "1Gi");
    if let Some(o) = labelled.object.as_mut() {
        o["metadata"]["labels"]["extra"] = json!("x");
    }
    assert_allowed(&check(&w, &labelled, deny).await);
    assert_allowed(&check(&w, &grown_pvc(&w, 0, "512Mi"), deny).await);
    let mut status = grown_pvc(&w, 0, "50Gi");
    status.sub_resource = Some("status");
    assert_allowed(&check(&w, &status, deny).await);
    let mut controller = grown_pvc(&w, 0, "50Gi");
    controller.username = CONTROLLER;
    assert_allowed(&check(&w, &controller, deny).await);
}

#[tokio::test]
async fn a_database_spec_grown_directly_is_denied_or_judged_from_its_volumes() {
    let mut w = World::standard();
    let edit = |from: &str, to: &str| {
        update(
            "Redis",
            redis("rd", "Durable", "fast", from),
            redis("rd", "Durable", "fast", to),
        )
    };
    assert_denied(
        &check(&w, &edit("1Gi", "500Ti"), DirectGrowth::Deny).await,
        403,
        "spec.storage.resources.requests.storage of Redis demo/rd cannot grow from 1Gi (largest PVC \
         data-rd-shard0-0) to 500Ti by editing the database: an edit grows none of its volumes; create a \
         RedisOpsRequest with spec.type VolumeExpansion instead (this cluster denies direct growth: volops webhook \
         --direct-growth deny)",
    );
    w.policies.push(cap("cap", json!({})));
    assert_denied(
        &check(&w, &edit("1Gi", "500Ti"), DirectGrowth::WithinPolicy).await,
        403,
        "VolumeExpansionPolicy \"cap\" denies growing spec.storage.resources.requests.storage of Redis demo/rd to \
         500Ti: 500Ti is above its maxSize of 3Gi; ask for at most 3Gi",
    );
    assert_allowed(&check(&w, &edit("1Gi", "3Gi"), DirectGrowth::WithinPolicy).await);
    // After a bypass raised it to 500Ti, lowering it back to the volumes' size is allowed, below is not.
    assert_allowed(&check(&w, &edit("500Ti", "1Gi"), DirectGrowth::Deny).await);
    assert_eq!(
        check(&w, &edit("500Ti", "512Mi"), DirectGrowth::Deny).await["status"]["code"],
        422
    );
    // Other edits of the database pass; the controller's write of the new size passes.
    let mut replicas = edit("1Gi", "1Gi");
    if let Some(o) = replicas.object.as_mut() {
        o["spec"]["cluster"]["shards"] = json!(3);
    }
    assert_allowed(&check(&w, &replicas, DirectGrowth::Deny).await);
    let mut controller = edit("1Gi", "2Gi");
    controller.username = CONTROLLER;
    assert_allowed(&check(&w, &controller, DirectGrowth::Deny).await);
}

#[tokio::test]
async fn a_policy_volops_cannot_enforce_is_refused() {
    let w = World::standard();
    let write = |policy: Value| Review::new("VolumeExpansionPolicy", "CREATE", Some(policy));
    assert_allowed(&validate(&w, &write(cap("ok", json!({"maxIncrease": "50%"})))).await);
    assert_denied(
        &validate(&w, &write(cap("typo", json!({"maxSize": "5GB"})))).await,
        422,
        "VolumeExpansionPolicy \"typo\" cannot be enforced: spec.maxSize \"5GB\" is not a quantity (quantities must \
         match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'); write one such as 100Gi",
    );
    let selector =
        json!({"namespaceSelector": {"matchExpressions": [{"key": "tenant", "operator": "exists"}]}});
    assert_denied(
        &validate(&w, &write(cap("op", selector))).await,
        422,
        "VolumeExpansionPolicy \"op\" cannot be enforced: spec.namespaceSelector.matchExpressions[0].operator \
         \"exists\" is not one of In, NotIn, Exists, DoesNotExist",
    );
    // UPDATE too; and a spec that is not even the policy's shape.
    let mut r = update(
        "VolumeExpansionPolicy",
        cap("p", json!({})),
        cap("p", json!({"maxIncrease": "lots"})),
    );
    assert_eq!(validate(&w, &r).await["status"]["code"], 422);
    r.object = Some(cap("p", json!({"enforcement": "deny"})));
    let resp = validate(&w, &r).await;
    let message = resp["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("VolumeExpansionPolicy \"p\" cannot be enforced: unknown variant `deny`"),
        "{message}"
    );
}

#[tokio::test]
async fn a_stored_policy_volops_cannot_enforce_denies_what_it_may_apply_to() {
    let mut w = World::standard();
    // Stored before the webhook checked policies: selects nobody knows which namespaces.
    w.policies.push(cap(
        "broken",
        json!({"namespaceSelector": {"matchExpressions": [{"key": "tenant", "operator": "In", "values": []}]}}),
    ));
    let resp = validate(&w, &Review::create_redis_ops(redis_ops("rd", "2Gi"))).await;
    assert_eq!(resp["status"]["code"], 403, "{resp}");
    assert_eq!(
        resp["status"]["message"],
        "VolumeExpansionPolicy \"broken\" denies this request: it cannot be enforced \
         (spec.namespaceSelector.matchExpressions[0].values must not be empty for operator In), so it holds back \
         every expansion it may apply to until it is fixed"
    );
}
