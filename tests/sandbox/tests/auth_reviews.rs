//! The access review APIs (SelfSubjectAccessReview, SubjectAccessReview,
//! LocalSubjectAccessReview, SelfSubjectRulesReview) answering as kube-apiserver's RBAC does,
//! their validation, and discovery of every new resource.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::rbac::{self, rule, user};
use common::{start, status};
use k8s_openapi::api::authorization::v1::{
    LocalSubjectAccessReview, SelfSubjectAccessReview, SelfSubjectRulesReview, SubjectAccessReview,
    SubjectAccessReviewStatus,
};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

async fn can_i(client: &kube::Client, spec: Value) -> SubjectAccessReviewStatus {
    let review: SelfSubjectAccessReview = serde_json::from_value(json!({"spec": spec})).unwrap();
    Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .unwrap()
}

fn res(verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Value {
    json!({"resourceAttributes": {"verb": verb, "group": group, "resource": resource,
        "subresource": sub, "namespace": ns, "name": name}})
}

#[tokio::test]
async fn access_reviews_answer_like_rbac() {
    let (sb, admin) = start().await;
    rbac::namespace(&admin, "demo").await;
    rbac::role(
        &admin,
        "demo",
        "r",
        json!([
            rule(&["get"], &[""], &["pods/log"]),
            {"verbs": ["update"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"]},
        ]),
    )
    .await;
    rbac::role_binding(&admin, "demo", "alice-r", "Role", "r", json!([user("alice")])).await;
    let alice = sb.client_with_certificate("alice", &[]).await.unwrap();

    let yes = can_i(&alice, res("get", "", "pods", "log", "demo", "p")).await;
    assert!(yes.allowed);
    assert_eq!(
        yes.reason.as_deref(),
        Some(r#"RBAC: allowed by RoleBinding "alice-r/demo" of Role "r" to User "alice""#)
    );
    assert!(
        !can_i(&alice, res("get", "", "pods", "", "demo", "p"))
            .await
            .allowed
    );
    assert!(
        can_i(&alice, res("update", "", "configmaps", "", "demo", "cfg"))
            .await
            .allowed
    );
    assert!(
        !can_i(&alice, res("update", "", "configmaps", "", "demo", "other"))
            .await
            .allowed
    );
    assert!(
        !can_i(&alice, res("get", "", "pods", "log", "other", "p"))
            .await
            .allowed
    );
    let no = can_i(&alice, res("delete", "", "pods", "", "demo", "")).await;
    assert_eq!((no.allowed, no.denied, no.reason), (false, None, None));
    // Non-resource URLs: discovery yes (bootstrap policy), metrics no.
    let url = |path: &str| json!({"nonResourceAttributes": {"verb": "get", "path": path}});
    assert!(can_i(&alice, url("/apis")).await.allowed);
    assert!(!can_i(&alice, url("/metrics")).await.allowed);
    // The admin may do anything.
    assert!(
        can_i(&admin, res("delete", "", "nodes", "", "", "n"))
            .await
            .allowed
    );

    // Exactly one kind of attributes.
    let bad: SelfSubjectAccessReview = serde_json::from_value(json!({"spec": {}})).unwrap();
    let (code, reason, message) = status(
        Api::<SelfSubjectAccessReview>::all(alice.clone())
            .create(&PostParams::default(), &bad)
            .await,
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert_eq!(
        message,
        r#"SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified"#
    );

    // SubjectAccessReview: the admin asks about alice; alice may not ask at all.
    let sar = |spec: Value| -> SubjectAccessReview { serde_json::from_value(json!({"spec": spec})).unwrap() };
    let mut spec = res("get", "", "pods", "log", "demo", "p");
    spec["user"] = json!("alice");
    let sars: Api<SubjectAccessReview> = Api::all(admin.clone());
    assert!(
        sars.create(&PostParams::default(), &sar(spec.clone()))
            .await
            .unwrap()
            .status
            .unwrap()
            .allowed
    );
    spec["user"] = json!("bob");
    assert!(
        !sars
            .create(&PostParams::default(), &sar(spec.clone()))
            .await
            .unwrap()
            .status
            .unwrap()
            .allowed
    );
    let (code, _, message) = status(
        Api::<SubjectAccessReview>::all(alice.clone())
            .create(&PostParams::default(), &sar(spec))
            .await,
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        r#"subjectaccessreviews.authorization.k8s.io is forbidden: User "alice" cannot create resource "subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope"#
    );
    let (code, _, message) = status(
        sars.create(
            &PostParams::default(),
            &sar(res("get", "", "pods", "", "demo", "")),
        )
        .await,
    );
    assert_eq!(code, 422);
    assert!(
        message.ends_with("spec.user: Invalid value: \"\": at least one of user or group must be specified"),
        "{message}"
    );

    // LocalSubjectAccessReview is pinned to its namespace.
    let lsars: Api<LocalSubjectAccessReview> = Api::namespaced(admin.clone(), "demo");
    let mut spec = res("get", "", "pods", "log", "other", "p");
    spec["user"] = json!("alice");
    let lsar: LocalSubjectAccessReview = serde_json::from_value(json!({"spec": spec})).unwrap();
    let (code, reason, message) = status(lsars.create(&PostParams::default(), &lsar).await);
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        message,
        "spec.resourceAttributes.namespace must match namespace: demo"
    );
}

#[tokio::test]
async fn rules_review_lists_what_a_user_holds() {
    let (sb, admin) = start().await;
    rbac::namespace(&admin, "demo").await;
    rbac::role(
        &admin,
        "demo",
        "r",
        json!([rule(&["get", "list"], &[""], &["configmaps"])]),
    )
    .await;
    rbac::role_binding(&admin, "demo", "alice-r", "Role", "r", json!([user("alice")])).await;
    let alice = sb.client_with_certificate("alice", &[]).await.unwrap();
    let review = |ns: &str| -> SelfSubjectRulesReview {
        serde_json::from_value(json!({"spec": {"namespace": ns}})).unwrap()
    };
    let reviews: Api<SelfSubjectRulesReview> = Api::all(alice.clone());
    let st = reviews
        .create(&PostParams::default(), &review("demo"))
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(!st.incomplete);
    let rules: Vec<Value> = st
        .resource_rules
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    assert!(
        rules.contains(&json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"]}))
    );
    assert!(rules.contains(
        &json!({"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]})
    ));
    assert!(st.non_resource_rules.iter().any(|r| {
        r.non_resource_urls
            .as_ref()
            .unwrap()
            .contains(&"/api/*".to_string())
    }));
    // Elsewhere only the bootstrap rules remain.
    let other = reviews
        .create(&PostParams::default(), &review("other"))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(other.resource_rules.len(), st.resource_rules.len() - 1);
    // A namespace is required.
    let (code, _, message) = status(reviews.create(&PostParams::default(), &review("")).await);
    assert_eq!((code, message.as_str()), (400, "no namespace on request"));
}

#[tokio::test]
async fn discovery_lists_the_auth_resources() {
    let (_sb, admin) = start().await;
    let list = |gv: &str| {
        let admin = admin.clone();
        let path = if gv == "v1" {
            "/api/v1".to_owned()
        } else {
            format!("/apis/{gv}")
        };
        async move {
            let req = http::Request::get(path).body(Vec::new()).unwrap();
            let text = admin.request_text(req).await.unwrap();
            let v: Value = serde_json::from_str(&text).unwrap();
            v["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["name"].as_str().unwrap().to_owned(), r["verbs"].clone()))
                .collect::<Vec<_>>()
        }
    };
    let core = list("v1").await;
    assert!(core.contains(&("serviceaccounts/token".into(), json!(["create"]))));
    let authz = list("authorization.k8s.io/v1").await;
    for r in [
        "localsubjectaccessreviews",
        "selfsubjectaccessreviews",
        "selfsubjectrulesreviews",
        "subjectaccessreviews",
    ] {
        assert!(authz.contains(&(r.into(), json!(["create"]))), "{r}");
    }
    let authn = list("authentication.k8s.io/v1").await;
    assert!(authn.contains(&("selfsubjectreviews".into(), json!(["create"]))));
    assert!(authn.contains(&("tokenreviews".into(), json!(["create"]))));
    let rbac_resources: Vec<String> = list("rbac.authorization.k8s.io/v1")
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        rbac_resources,
        vec!["clusterrolebindings", "clusterroles", "rolebindings", "roles"]
    );
}
