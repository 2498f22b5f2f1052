//! kube's audit log (level Metadata): every request with its user, verb, object reference, the
//! authorizer's decision and the response code — what proves which permissions a component
//! really used.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::rbac::{self, rule, user};
use common::start_with;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use volops_sandbox::SandboxOptions;

fn alice_events(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["user"]["username"] == "alice")
        .collect()
}

#[tokio::test]
async fn the_audit_log_records_decisions_and_codes() {
    let (sb, admin) = start_with(SandboxOptions {
        audit_capacity: 1000,
        ..Default::default()
    })
    .await;
    rbac::namespace(&admin, "demo").await;
    rbac::role(
        &admin,
        "demo",
        "reader",
        json!([rule(&["get", "list"], &[""], &["configmaps"])]),
    )
    .await;
    rbac::role_binding(
        &admin,
        "demo",
        "alice-reader",
        "Role",
        "reader",
        json!([user("alice")]),
    )
    .await;
    let alice = sb.client_with_certificate("alice", &["tenants"]).await.unwrap();
    let cms = Api::<ConfigMap>::namespaced(alice, "demo");
    cms.list(&Default::default()).await.unwrap();
    assert!(cms.get("missing").await.is_err());
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    assert!(cms.create(&PostParams::default(), &cm).await.is_err());

    let events = sb.audit_events();
    let alice = alice_events(&events);
    let seen: Vec<(String, u64, String)> = alice
        .iter()
        .map(|e| {
            (
                e["verb"].as_str().unwrap().to_owned(),
                e["responseStatus"]["code"].as_u64().unwrap(),
                e["annotations"]["authorization.k8s.io/decision"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("list".to_owned(), 200, "allow".to_owned()),
            ("get".to_owned(), 404, "allow".to_owned()),
            ("create".to_owned(), 403, "forbid".to_owned()),
        ]
    );
    let get = alice[1];
    assert_eq!(get["kind"], "Event");
    assert_eq!(get["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(get["stage"], "ResponseComplete");
    assert_eq!(get["objectRef"]["resource"], "configmaps");
    assert_eq!(get["objectRef"]["namespace"], "demo");
    assert_eq!(get["objectRef"]["name"], "missing");
    let reason = alice[0]["annotations"]["authorization.k8s.io/reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("alice-reader"), "{reason}");
}

#[tokio::test]
async fn no_audit_log_unless_asked_for() {
    let (sb, admin) = start_with(SandboxOptions::default()).await;
    Api::<ConfigMap>::namespaced(admin, "default")
        .list(&Default::default())
        .await
        .unwrap();
    assert!(sb.audit_events().is_empty());
}
