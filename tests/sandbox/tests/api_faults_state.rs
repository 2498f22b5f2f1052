//! Fault injection (lib handle and admin endpoint) and the state snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{cm, raw_client, start, start_with, status};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;
use volops_sandbox::{FaultConfig, FaultRule, SandboxOptions};

fn rule(verb: &str, code: u16) -> FaultRule {
    FaultRule {
        verb: verb.into(),
        resource: "configmaps".into(),
        rate: 1.0,
        code,
        retry_after_seconds: 3,
    }
}

#[tokio::test]
async fn injected_errors_by_verb_and_resource() {
    let (sb, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    sb.faults().set(FaultConfig {
        rules: vec![rule("get", 500), rule("create", 409)],
        ..Default::default()
    });
    let (code, reason, _) = status(cms.get("a").await);
    assert_eq!((code, reason.as_str()), (500, "InternalError"));
    let (code, reason, _) = status(cms.create(&PostParams::default(), &cm("b")).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    // Other verbs and resources are untouched.
    assert_eq!(cms.list(&Default::default()).await.unwrap().items.len(), 1);

    // 429 carries Retry-After; set through the admin endpoint.
    let http = raw_client(&sb);
    let cfg = json!({"seed": 1, "rules": [{"verb": "list", "resource": "configmaps", "rate": 1.0, "code": 429,
        "retryAfterSeconds": 3}]});
    let put = http
        .put(format!("{}/sandbox/v1/faults", sb.url()))
        .json(&cfg)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let resp = http
        .get(format!("{}/api/v1/namespaces/default/configmaps", sb.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["reason"], "TooManyRequests");
    // The admin endpoint itself is never faulted, even with a catch-all rule.
    sb.faults().set(FaultConfig {
        rules: vec![FaultRule {
            verb: "*".into(),
            resource: "*".into(),
            rate: 1.0,
            code: 500,
            retry_after_seconds: 1,
        }],
        ..Default::default()
    });
    let got: FaultConfig = http
        .get(format!("{}/sandbox/v1/faults", sb.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got.rules.len(), 1);
    let bad = http
        .put(format!("{}/sandbox/v1/faults", sb.url()))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    sb.faults().clear();
    cms.get("a").await.unwrap();

    // Latency is added to every API request.
    sb.faults().set(FaultConfig {
        latency_ms: 300,
        ..Default::default()
    });
    let t = Instant::now();
    cms.get("a").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let opts = SandboxOptions {
        state_file: Some(state.clone()),
        ..Default::default()
    };
    let (sb, client) = start_with(opts.clone()).await;
    let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_json::from_value(json!({"metadata": {"name": "gadgets.example.com"}, "spec": {"group": "example.com",
            "scope": "Cluster", "names": {"plural": "gadgets", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}))
        .unwrap();
    Api::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let before = cms.create(&PostParams::default(), &cm("kept")).await.unwrap();
    sb.shutdown().await.unwrap();
    assert!(state.exists());

    let (sb, client) = start_with(opts).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let after = cms.get("kept").await.unwrap();
    assert_eq!(after.metadata.uid, before.metadata.uid);
    assert_eq!(after.metadata.resource_version, before.metadata.resource_version);
    // New writes continue above the restored resourceVersion; the CRD is served again.
    let next = cms.create(&PostParams::default(), &cm("new")).await.unwrap();
    let rv = |c: &ConfigMap| {
        c.metadata
            .resource_version
            .clone()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(rv(&next) > rv(&before));
    let ar = kube::discovery::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        "example.com",
        "v1",
        "Gadget",
    ));
    let gadgets: Api<kube::core::DynamicObject> = Api::all_with(client, &ar);
    assert!(gadgets.list(&Default::default()).await.unwrap().items.is_empty());
    sb.shutdown().await.unwrap();
}
