//! Issue 18, admission side: what a tenant (`alice`, acting through the API server over HTTPS)
//! writes is not trusted. Finding 1: the controller's annotations; finding 2: a timeout that
//! is not a duration; finding 6: storage grown around an ops request, and policies volops
//! cannot enforce.

#![allow(clippy::unwrap_used)] // test code: helpers outside #[test] fns

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use volops_e2e::chart_config::Target;
use volops_e2e::wait::{at, phase, wait_final, wait_for, wait_ready};
use volops_e2e::{Harness, HarnessOptions, repo_root};
use volops_shared::DatabaseKind;

const NS: &str = "demo";
const DB: &str = "redis-standalone";

/// A harness (controller stopped) with `examples/redis-standalone.yaml` Ready, its PVC Bound and
/// in the webhook's cache.
async fn standalone_redis() -> Harness {
    let h = Harness::start(HarnessOptions {
        start_controller: false,
        ..HarnessOptions::default()
    })
    .await
    .unwrap();
    for f in ["namespace.yaml", "storageclasses.yaml", "redis-standalone.yaml"] {
        h.apply_file(&repo_root().join("examples").join(f)).await.unwrap();
    }
    wait_ready(&h.databases(DatabaseKind::Redis, NS), DB, h.timeout())
        .await
        .unwrap();
    wait_bound(&h, &format!("data-{DB}-0")).await;
    h.webhook()
        .wait_cache("persistentvolumeclaims", 1, h.timeout())
        .await
        .unwrap();
    h
}

async fn wait_bound(h: &Harness, pvc: &str) {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(h.client(), NS);
    wait_for(
        &pvcs,
        pvc,
        "PVC Bound",
        h.timeout(),
        |p: &PersistentVolumeClaim| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"),
    )
    .await
    .unwrap();
}

fn grow_request(name: &str, size: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "ops.kubedb.com/v1alpha1", "kind": "RedisOpsRequest",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"type": "VolumeExpansion", "databaseRef": {"name": DB},
                 "volumeExpansion": {"mode": "Online", "redis": size}}
    }))
    .unwrap()
}

/// The API server's refusal: (HTTP code, message). Panics when the call succeeded.
fn refused<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Ok(v) => panic!("expected a refusal, the API server accepted: {v:?}"),
        Err(kube::Error::Api(s)) => (s.code, s.message),
        Err(e) => panic!("expected an API refusal, got {e}"),
    }
}

fn merge(v: Value) -> Patch<Value> {
    Patch::Merge(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding1_a_tenant_cannot_write_the_controllers_annotations() {
    let h = standalone_redis().await;
    let alice = h.tenant_client().await.unwrap();
    let ops = |c: &kube::Client| -> Api<DynamicObject> {
        Api::namespaced_with(c.clone(), NS, &DatabaseKind::Redis.ops_resource())
    };
    let pp = PostParams::default();

    // At CREATE: a saved workload manifest, or a saved pod, written by the tenant.
    for key in [
        "volops.dev/workload.statefulset.redis-standalone",
        "volumeexpansion.ops.kubedb.com/redis-standalone-0",
    ] {
        let mut forged = grow_request("forged", "2Gi");
        forged
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(key.to_owned(), r#"{"kind":"StatefulSet"}"#.to_owned());
        let (code, message) = refused(ops(&alice).create(&pp, &forged).await);
        println!("tenant CREATE with {key}: {code} {message}");
        assert_eq!(code, 403, "{message}");
        assert!(
            message.contains(&format!(
                "RedisOpsRequest demo/forged: annotations under volops.dev/ and volumeexpansion.ops.kubedb.com/ are \
                 written only by the volops controller, which keeps what it must restore there (added: {key})"
            )),
            "{message}"
        );
    }
    assert!(ops(&alice).get_opt("forged").await.unwrap().is_none());

    // At UPDATE: added, then (once the controller wrote one) changed and removed.
    ops(&alice)
        .create(&pp, &grow_request("grow", "2Gi"))
        .await
        .unwrap();
    let pq = PatchParams::default();
    let add = json!({"metadata": {"annotations": {"volops.dev/workload.statefulset.evil": "{}"}}});
    let (code, message) = refused(ops(&alice).patch("grow", &pq, &merge(add)).await);
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains("(added: volops.dev/workload.statefulset.evil)"),
        "{message}"
    );
    let key = "volops.dev/workload.statefulset.redis-standalone";
    let saved = json!({"metadata": {"annotations": {key: "saved by the controller"}}});
    ops(&h.controller_client())
        .patch("grow", &pq, &merge(saved))
        .await
        .unwrap();
    let change = json!({"metadata": {"annotations": {key: "forged"}}});
    let (_, message) = refused(ops(&alice).patch("grow", &pq, &merge(change)).await);
    assert!(message.contains(&format!("(changed: {key})")), "{message}");
    let remove = json!({"metadata": {"annotations": {key: null}}});
    let (_, message) = refused(ops(&alice).patch("grow", &pq, &merge(remove)).await);
    assert!(message.contains(&format!("(removed: {key})")), "{message}");

    // Through /status the API server keeps the stored metadata: nothing to intercept there.
    let via_status = json!({"metadata": {"annotations": {"volops.dev/workload.statefulset.evil": "{}"}},
                            "status": {"phase": "Pending"}});
    let _ = ops(&alice).patch_status("grow", &pq, &merge(via_status)).await;
    // Other annotations are the tenant's to write.
    let note = json!({"metadata": {"annotations": {"example.com/note": "mine"}}});
    ops(&alice).patch("grow", &pq, &merge(note)).await.unwrap();
    let stored = ops(&h.client()).get("grow").await.unwrap();
    let annotations = stored.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get(key).map(String::as_str),
        Some("saved by the controller")
    );
    assert!(
        !annotations.contains_key("volops.dev/workload.statefulset.evil"),
        "{annotations:?}"
    );
    assert_eq!(
        annotations.get("example.com/note").map(String::as_str),
        Some("mine")
    );
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding2_a_timeout_that_is_not_a_duration_is_denied_at_admission() {
    let h = standalone_redis().await;
    let alice = h.tenant_client().await.unwrap();
    let ops: Api<DynamicObject> = Api::namespaced_with(alice, NS, &DatabaseKind::Redis.ops_resource());
    let mut seconds = grow_request("in-seconds", "2Gi");
    seconds.data["spec"]["timeout"] = json!("300");
    let (code, message) = refused(ops.create(&PostParams::default(), &seconds).await);
    println!("timeout \"300\": {code} {message}");
    assert_eq!(code, 422, "{message}");
    assert!(
        message.ends_with(
            "spec.timeout \"300\" is not a duration: write a Go duration with its unit, such as 300s for 300 seconds, \
             5m or 1h30m"
        ),
        "{message}"
    );
    assert!(ops.get_opt("in-seconds").await.unwrap().is_none());
    let mut go = grow_request("go-duration", "2Gi");
    go.data["spec"]["timeout"] = json!("5m");
    let created = ops.create(&PostParams::default(), &go).await.unwrap();
    assert_eq!(at(&created, "/spec/timeout"), Some("5m"));
    h.shutdown().await.unwrap();
}

/// A policy capping every tenant namespace's volumes at 3Gi.
async fn cap_policy(h: &Harness) {
    h.apply_yaml(
        "apiVersion: volops.dev/v1alpha1\nkind: VolumeExpansionPolicy\nmetadata:\n  name: cap-3gi\nspec:\n  \
         namespaceSelector:\n    matchExpressions:\n    - key: tenant\n      operator: Exists\n  maxSize: 3Gi\n",
    )
    .await
    .unwrap();
    h.webhook()
        .wait_cache("volumeexpansionpolicies", 1, h.timeout())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding6_storage_grown_around_an_ops_request_is_judged() {
    let h = standalone_redis().await;
    cap_policy(&h).await;
    let alice = h.tenant_client().await.unwrap();
    let pq = PatchParams::default();
    let size = |s: &str| json!({"spec": {"resources": {"requests": {"storage": s}}}});

    // The database's own PVC, patched to 50Gi under a 3Gi policy.
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(alice.clone(), NS);
    let pvc = format!("data-{DB}-0");
    let (code, message) = refused(pvcs.patch(&pvc, &pq, &merge(size("50Gi"))).await);
    println!("direct PVC growth: {code} {message}");
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains(&format!(
            "PVC demo/{pvc} of Redis demo/{DB} cannot grow from 1Gi to 50Gi by editing it: the volumes of a database \
             grow only through a RedisOpsRequest"
        )),
        "{message}"
    );
    // The database's spec.storage edited upward.
    let dbs: Api<DynamicObject> =
        Api::namespaced_with(alice.clone(), NS, &DatabaseKind::Redis.database_resource());
    let storage = json!({"spec": {"storage": {"resources": {"requests": {"storage": "500Ti"}}}}});
    let (code, message) = refused(dbs.patch(DB, &pq, &merge(storage)).await);
    println!("spec.storage edit: {code} {message}");
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains(&format!(
            "spec.storage.resources.requests.storage of Redis demo/{DB} cannot grow from 1Gi (largest PVC {pvc}) to \
             500Ti by editing the database"
        )),
        "{message}"
    );

    // A PVC of no database: judged by the policy.
    let scratch: PersistentVolumeClaim = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "scratch", "namespace": NS},
        "spec": {"storageClassName": "topolvm-provisioner", "accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .unwrap();
    pvcs.create(&PostParams::default(), &scratch).await.unwrap();
    wait_bound(&h, "scratch").await;
    let (code, message) = refused(pvcs.patch("scratch", &pq, &merge(size("50Gi"))).await);
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains(
            "VolumeExpansionPolicy \"cap-3gi\" denies growing PVC demo/scratch directly: 50Gi is above its maxSize \
             of 3Gi"
        ),
        "{message}"
    );
    pvcs.patch("scratch", &pq, &merge(size("2Gi"))).await.unwrap();
    let stored = h.client();
    let db_pvc = Api::<PersistentVolumeClaim>::namespaced(stored, NS)
        .get(&pvc)
        .await
        .unwrap();
    let request = db_pvc.spec.and_then(|s| s.resources).and_then(|r| r.requests);
    assert_eq!(request.unwrap()["storage"].0, "1Gi");
    h.shutdown().await.unwrap();
}

/// Labels `demo` with the webhook opt-out (`set`) or removes it.
async fn opt_out(h: &Harness, set: bool) {
    let label = if set { json!("disabled") } else { Value::Null };
    Api::<Namespace>::all(h.client())
        .patch(
            NS,
            &PatchParams::default(),
            &merge(json!({"metadata": {"labels": {"volops.dev/webhook": label}}})),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding6_a_spec_raised_while_the_webhook_was_bypassed_does_not_block_expansion() {
    let mut h = standalone_redis().await;
    let alice = h.tenant_client().await.unwrap();
    let dbs: Api<DynamicObject> =
        Api::namespaced_with(alice.clone(), NS, &DatabaseKind::Redis.database_resource());
    // The namespace opted out for a moment: the edit goes through unchecked.
    opt_out(&h, true).await;
    let storage = json!({"spec": {"storage": {"resources": {"requests": {"storage": "500Ti"}}}}});
    dbs.patch(DB, &PatchParams::default(), &merge(storage))
        .await
        .unwrap();
    opt_out(&h, false).await;
    h.webhook().wait_cache("redis", 1, h.timeout()).await.unwrap();

    // The volumes are still 1Gi: growing them to 2Gi is growth, not a "shrink" from 500Ti.
    h.start_controller();
    let ops: Api<DynamicObject> = Api::namespaced_with(alice, NS, &DatabaseKind::Redis.ops_resource());
    ops.create(&PostParams::default(), &grow_request("after-bypass", "2Gi"))
        .await
        .unwrap();
    let done = wait_final(
        &h.ops_requests(DatabaseKind::Redis, NS),
        "after-bypass",
        h.timeout(),
    )
    .await
    .unwrap();
    assert_eq!(phase(&done), Some("Successful"), "{:#}", done.data["status"]);
    let db = h.databases(DatabaseKind::Redis, NS).get(DB).await.unwrap();
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("2Gi"));
    h.shutdown().await.unwrap();
}

fn policy(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(
        json!({"apiVersion": "volops.dev/v1alpha1", "kind": "VolumeExpansionPolicy",
                                  "metadata": {"name": name}, "spec": spec}),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding6_a_policy_volops_cannot_enforce_is_refused_and_a_stored_one_fails_closed() {
    let mut h = standalone_redis().await;
    let client = h.client();
    let policies = |c: &kube::Client| -> Api<DynamicObject> {
        Api::all_with(
            c.clone(),
            &kube::api::ApiResource::erase::<volops_shared::api::VolumeExpansionPolicy>(&()),
        )
    };
    let pp = PostParams::default();
    // The CRD's schema refuses the typos of the issue.
    for (name, spec, expected) in [
        ("typo-size", json!({"maxSize": "5GB"}), "spec.maxSize"),
        (
            "typo-operator",
            json!({"namespaceSelector": {"matchExpressions": [{"key": "tenant", "operator": "exists"}]}}),
            "spec.namespaceSelector.matchExpressions[0].operator",
        ),
        (
            "typo-enforcement",
            json!({"enforcement": "deny"}),
            "spec.enforcement",
        ),
    ] {
        let (code, message) = refused(policies(&client).create(&pp, &policy(name, spec)).await);
        println!("policy {name}: {code} {message}");
        assert_eq!(code, 422, "{message}");
        assert!(message.contains(expected), "{message}");
    }
    // What a schema cannot say, the webhook refuses.
    let empty_in = json!({"namespaceSelector": {"matchExpressions": [{"key": "tenant", "operator": "In", "values": []}]},
                          "maxSize": "3Gi"});
    let (code, message) = refused(
        policies(&client)
            .create(&pp, &policy("empty-in", empty_in.clone()))
            .await,
    );
    println!("policy empty-in: {code} {message}");
    assert_eq!(code, 422, "{message}");
    assert!(
        message.ends_with(
            "VolumeExpansionPolicy \"empty-in\" cannot be enforced: spec.namespaceSelector.matchExpressions[0].values \
             must not be empty for operator In"
        ),
        "{message}"
    );
    let (_, message) = refused(
        policies(&client)
            .create(&pp, &policy("negative", json!({"maxSize": -5})))
            .await,
    );
    assert!(
        message.contains("spec.maxSize \"-5\" must not be negative"),
        "{message}"
    );

    // Stored while the webhook was not registered (an upgrade from a release without this check).
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .delete("volops", &DeleteParams::default())
        .await
        .unwrap();
    policies(&client)
        .create(&pp, &policy("empty-in", empty_in))
        .await
        .unwrap();
    h.register_webhooks(&Target::default()).await.unwrap();
    h.webhook()
        .wait_cache("volumeexpansionpolicies", 1, h.timeout())
        .await
        .unwrap();
    let alice = h.tenant_client().await.unwrap();
    let ops: Api<DynamicObject> = Api::namespaced_with(alice, NS, &DatabaseKind::Redis.ops_resource());
    let (code, message) = refused(ops.create(&pp, &grow_request("under-broken-policy", "2Gi")).await);
    println!("request under a broken policy: {code} {message}");
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains("VolumeExpansionPolicy \"empty-in\" denies this request: it cannot be enforced"),
        "{message}"
    );

    // The controller re-checks at Admit: a request that got past no webhook fails, closed.
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .delete("volops", &DeleteParams::default())
        .await
        .unwrap();
    ops.create(&pp, &grow_request("under-broken-policy", "2Gi"))
        .await
        .unwrap();
    h.start_controller();
    let done = wait_final(
        &h.ops_requests(DatabaseKind::Redis, NS),
        "under-broken-policy",
        h.timeout(),
    )
    .await
    .unwrap();
    let conditions = done.data["status"]["conditions"].to_string();
    assert_eq!(phase(&done), Some("Failed"), "{conditions}");
    assert!(conditions.contains("it cannot be enforced"), "{conditions}");
    let pvc = Api::<PersistentVolumeClaim>::namespaced(client, NS)
        .get(&format!("data-{DB}-0"))
        .await
        .unwrap();
    let request = pvc.spec.and_then(|s| s.resources).and_then(|r| r.requests);
    assert_eq!(request.unwrap()["storage"].0, "1Gi");
    h.shutdown().await.unwrap();
}
