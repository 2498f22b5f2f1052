//! The AdmissionReview protocol around the rules: mutation bytes, malformed bodies, size limit,
//! uid echo, unexpected kinds, DELETE, dryRun plan warnings, metrics and readiness.

mod common;

use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use common::*;
use serde_json::{Value, json};
use volops_shared::facts::RuleOptions;
use volops_webhook::metrics::Metrics;
use volops_webhook::probes::{self, ProbeState};
use volops_webhook::routes::MAX_BODY;

#[tokio::test]
async fn mutation_response_bytes_are_golden() {
    let app = World::standard().router(RuleOptions::default());
    let mut obj = redis_ops("rd", "2Gi");
    obj["spec"]["volumeExpansion"]
        .as_object_mut()
        .unwrap()
        .remove("mode");
    let review = Review::create_redis_ops(obj.clone());
    let (status, body) = post_raw(&app, "/mutate", serde_json::to_vec(&review.to_json()).unwrap()).await;
    assert_eq!(status, 200);
    // The difference between the request and its defaulted form, in the order of its members.
    let patch = r#"[{"op":"add","path":"/metadata/labels","value":{"ops.kubedb.com/kind":"Redis","ops.kubedb.com/name":"rd"}},{"op":"add","path":"/spec/apply","value":"IfReady"},{"op":"add","path":"/spec/maxRetries","value":1},{"op":"add","path":"/spec/timeout","value":"10m"},{"op":"add","path":"/spec/volumeExpansion/mode","value":"Online"}]"#;
    let b64 = base64::engine::general_purpose::STANDARD.encode(patch);
    let golden = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true,"patchType":"JSONPatch","patch":"{b64}"}}}}"#
    );
    assert_eq!(String::from_utf8(body).unwrap(), golden);
    // The patch applies and yields the defaulted object.
    let ops: json_patch::Patch = serde_json::from_str(patch).unwrap();
    json_patch::patch(&mut obj, &ops).unwrap();
    assert_eq!(obj["spec"]["volumeExpansion"]["mode"], "Online");
    assert_eq!(obj["spec"]["maxRetries"], 1);
}

/// The patch the webhook sends for the manifests of KubeDB's docs (and volops's own Offline
/// example) is the one it sent before the defaults moved onto the typed spec: the same
/// additions (in another order, which JSON patch additions to distinct members do not mind),
/// giving the same object.
#[tokio::test]
async fn mutation_patches_of_the_docs_manifests_are_the_ones_sent_before() {
    let app = World::standard().router(RuleOptions::default());
    let labels = |kind: &str, db: &str| {
        json!({"op": "add", "path": "/metadata/labels",
                                               "value": {"ops.kubedb.com/kind": kind, "ops.kubedb.com/name": db}})
    };
    let apply = json!({"op": "add", "path": "/spec/apply", "value": "IfReady"});
    let timeout = json!({"op": "add", "path": "/spec/timeout", "value": "10m"});
    let retries = json!({"op": "add", "path": "/spec/maxRetries", "value": 1});
    // As the webhook built them before (shared/src/defaults.rs at commit 9294f86).
    let before = [
        (
            "redis-online-expansion",
            json!([apply, timeout, retries, labels("Redis", "sample-redis")]),
        ),
        (
            "redis-offline-expansion",
            json!([retries, labels("Redis", "redis-standalone")]),
        ),
        (
            "zookeeper-online-expansion",
            json!([apply, timeout, retries, labels("ZooKeeper", "zk-quickstart")]),
        ),
        (
            "zookeeper-offline-expansion",
            json!([apply, timeout, retries, labels("ZooKeeper", "zk-quickstart")]),
        ),
    ];
    let examples = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for (file, want) in before {
        let text = std::fs::read_to_string(examples.join(format!("{file}.yaml"))).unwrap();
        let obj: Value = serde_yaml::from_str(&text).unwrap();
        let kind = if file.starts_with("redis") {
            "RedisOpsRequest"
        } else {
            "ZooKeeperOpsRequest"
        };
        let resp = post(&app, "/mutate", &Review::new(kind, "CREATE", Some(obj.clone()))).await;
        assert_eq!(resp["allowed"], true, "{file}: {resp}");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(resp["patch"].as_str().unwrap())
            .unwrap();
        let got: Value = serde_json::from_slice(&bytes).unwrap();
        let sorted = |v: &Value| {
            let mut ops: Vec<String> = v.as_array().unwrap().iter().map(Value::to_string).collect();
            ops.sort();
            ops
        };
        assert_eq!(sorted(&got), sorted(&want), "{file}");
        let apply_patch = |patch: &Value| {
            let mut o = obj.clone();
            json_patch::patch(
                &mut o,
                &serde_json::from_value::<json_patch::Patch>(patch.clone()).unwrap(),
            )
            .unwrap();
            o
        };
        assert_eq!(apply_patch(&got), apply_patch(&want), "{file}");
    }
}

#[tokio::test]
async fn mutation_without_defaults_to_add_has_no_patch() {
    let app = World::standard().router(RuleOptions::default());
    let mut obj = redis_ops("rd", "2Gi");
    obj["spec"]["apply"] = json!("Always");
    obj["spec"]["timeout"] = json!("5m");
    obj["spec"]["maxRetries"] = json!(2);
    obj["metadata"]["labels"] = json!({"ops.kubedb.com/kind": "Redis", "ops.kubedb.com/name": "rd"});
    let resp = post(&app, "/mutate", &Review::create_redis_ops(obj)).await;
    assert_allowed(&resp);
    assert!(
        resp.get("patch").is_none() && resp.get("patchType").is_none(),
        "{resp}"
    );
    // UPDATE is never mutated.
    let resp = post(
        &app,
        "/mutate",
        &Review::new("RedisOpsRequest", "UPDATE", Some(redis_ops("rd", "2Gi"))),
    )
    .await;
    assert!(resp.get("patch").is_none(), "{resp}");
}

#[tokio::test]
async fn malformed_bodies_get_400_with_a_reason() {
    let app = World::standard().router(RuleOptions::default());
    let (status, body) = post_raw(&app, "/validate", b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&body).starts_with("malformed AdmissionReview: "),
        "{body:?}"
    );
    let (status, body) = post_raw(
        &app,
        "/validate",
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(String::from_utf8_lossy(&body), "AdmissionReview has no request");
    let (status, _) = post_raw(&app, "/mutate", br#"{"request":{"uid":"x"}}"#.to_vec()).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn bodies_above_8_mib_get_413_and_large_ones_below_pass() {
    let app = World::standard().router(RuleOptions::default());
    let mut obj = redis_ops("rd", "2Gi");
    obj["metadata"]["annotations"] = json!({"big": "x".repeat(MAX_BODY - 4096)});
    let (status, _) = post_raw(
        &app,
        "/validate",
        serde_json::to_vec(&Review::create_redis_ops(obj).to_json()).unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post_raw(&app, "/validate", vec![b' '; MAX_BODY + 1]).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn uid_is_echoed_on_allow_and_deny() {
    let w = World::standard();
    for (size, allowed) in [("2Gi", true), ("1Gi", false)] {
        let mut review = Review::create_redis_ops(redis_ops("rd", size));
        review.uid = format!("uid-{size}");
        let resp = validate(&w, &review).await; // `post` asserts the echo
        assert_eq!(resp["uid"], review.uid.as_str());
        assert_eq!(resp["allowed"], allowed);
    }
}

#[tokio::test]
async fn unexpected_kinds_are_allowed_with_a_warning() {
    let app = World::standard().router(RuleOptions::default());
    for path in ["/validate", "/mutate"] {
        let review = Review::new("ConfigMap", "CREATE", Some(json!({"metadata": {"name": "cm"}})));
        let resp = post(&app, path, &review).await;
        assert_allowed(&resp);
        assert_eq!(
            warnings(&resp),
            ["volops webhook does not handle ConfigMap; allowed without checks"]
        );
        assert!(resp.get("patch").is_none());
    }
}

#[tokio::test]
async fn delete_is_always_allowed() {
    let w = World::standard();
    let mut review = Review::new("RedisOpsRequest", "DELETE", None);
    review.old_object = Some(redis_ops("nope", "1Gi"));
    let resp = validate(&w, &review).await;
    assert_allowed(&resp);
    assert!(warnings(&resp).is_empty());
}

#[tokio::test]
async fn dry_run_adds_plan_warnings() {
    let mut w = World::standard();
    w.policies.push(
        json!({"apiVersion": "volops.dev/v1alpha1", "kind": "VolumeExpansionPolicy",
        "metadata": {"name": "soft"}, "spec": {"maxSize": "1500Mi", "enforcement": "Warn"}}),
    );
    let mut review = Review::create_redis_ops(redis_ops("rd", "2Gi"));
    let plain = validate(&w, &review).await;
    let policy_warning =
        "VolumeExpansionPolicy \"soft\" (Warn): 2Gi is above its maxSize of 1500Mi; ask for at most 1500Mi";
    assert_eq!(warnings(&plain), [policy_warning]);
    review.dry_run = true;
    let resp = validate(&w, &review).await;
    assert_allowed(&resp);
    let mut expected = vec![
        policy_warning.to_owned(),
        "plan: Redis demo/rd will be paused during the expansion and resumed after it".to_owned(),
    ];
    for pvc in [
        "data-rd-shard0-0",
        "data-rd-shard0-1",
        "data-rd-shard1-0",
        "data-rd-shard1-1",
    ] {
        expected.push(format!(
            "plan: PVC {pvc} grows 1Gi -> 2Gi (Online, all volumes at once)"
        ));
    }
    expected.push(
        "plan: the petsets of Redis rd will be recreated with claim size 2Gi; its pods keep running".into(),
    );
    assert_eq!(warnings(&resp), expected);
    // A denied dry run carries no plan.
    review.object = Some(redis_ops("rd", "1Gi"));
    let denied = validate(&w, &review).await;
    assert_eq!(denied["allowed"], false);
    assert!(warnings(&denied).iter().all(|w| !w.starts_with("plan:")));
}

#[tokio::test]
async fn metrics_count_decisions_and_report_caches() {
    let w = World::standard();
    let metrics = Arc::new(Metrics::new());
    let state = Arc::new(volops_webhook::routes::AppState {
        caches: w.caches(),
        options: RuleOptions::default(),
        metrics: metrics.clone(),
    });
    let app = volops_webhook::routes::router(state, std::time::Duration::from_secs(5));
    post(
        &app,
        "/validate",
        &Review::create_redis_ops(redis_ops("rd", "2Gi")),
    )
    .await;
    post(
        &app,
        "/validate",
        &Review::create_redis_ops(redis_ops("rd", "1Gi")),
    )
    .await;
    post(
        &app,
        "/validate",
        &Review::create_redis_ops(redis_ops("rd", "1Gi")),
    )
    .await;
    let text = metrics.render(&w.caches()).unwrap();
    assert!(text.contains(r#"volops_webhook_admission_requests_total{endpoint="validate",kind="RedisOpsRequest",operation="CREATE",allowed="false"} 2"#), "{text}");
    assert!(text.contains(r#"volops_webhook_admission_requests_total{endpoint="validate",kind="RedisOpsRequest",operation="CREATE",allowed="true"} 1"#), "{text}");
    assert!(
        text.contains("volops_webhook_admission_duration_seconds_count 3"),
        "{text}"
    );
    assert!(
        text.contains(r#"volops_webhook_admission_duration_seconds_bucket{le="0.0001"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"volops_webhook_cache_objects{cache="persistentvolumeclaims"} 7"#),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn readyz_waits_for_every_cache() {
    let w = World::standard();
    let (caches, mut writers) = volops_webhook::Caches::new();
    let serving = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let app = probes::router(Arc::new(ProbeState {
        caches,
        metrics: Arc::new(Metrics::new()),
        serving,
    }));
    let get = |path: &'static str| {
        let app = app.clone();
        async move {
            use tower::ServiceExt;
            let req = http::Request::get(path).body(axum::body::Body::empty()).unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let body = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 503);
    assert!(
        body.contains("redis") && body.contains("volumeexpansionpolicies"),
        "{body}"
    );
    fill(&mut writers.redis, &w.redis);
    fill(&mut writers.zookeeper, &w.zookeeper);
    fill(&mut writers.redis_ops, &[]);
    fill(&mut writers.zookeeper_ops, &[]);
    fill(&mut writers.pvcs, &w.pvcs);
    fill(&mut writers.classes, &w.classes);
    fill(&mut writers.quotas, &[]);
    fill(&mut writers.namespaces, &w.namespaces);
    assert_eq!(
        get("/readyz").await,
        (
            http::StatusCode::SERVICE_UNAVAILABLE,
            "caches not synced: volumeexpansionpolicies".into()
        )
    );
    fill(&mut writers.policies, &[]);
    assert_eq!(get("/readyz").await.0, 200);
    let (status, text) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains(r#"volops_webhook_cache_objects{cache="redis"} 1"#),
        "{text}"
    );
}

/// A rough in-process figure (no TLS, no sockets): printed, not asserted.
#[tokio::test]
async fn measure_validate_latency_in_process() {
    let app = World::standard().router(RuleOptions::default());
    let body = serde_json::to_vec(&Review::create_redis_ops(redis_ops("rd", "2Gi")).to_json()).unwrap();
    let n = 2000;
    let started = Instant::now();
    for _ in 0..n {
        let (status, out) = post_raw(&app, "/validate", body.clone()).await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["response"]["allowed"], true);
    }
    let per = started.elapsed() / n;
    println!("in-process /validate (debug build, incl. client-side parse): {per:?} per request");
}

#[tokio::test]
async fn a_request_whose_body_never_arrives_times_out_with_503() {
    let w = World::standard();
    let state = Arc::new(volops_webhook::routes::AppState {
        caches: w.caches(),
        options: RuleOptions::default(),
        metrics: Arc::new(Metrics::new()),
    });
    let app = volops_webhook::routes::router(state, std::time::Duration::from_millis(100));
    let stalled = futures::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
    let req = http::Request::post("/validate")
        .body(axum::body::Body::from_stream(stalled))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(app, req).await.unwrap();
    assert_eq!(resp.status(), 503);
}
