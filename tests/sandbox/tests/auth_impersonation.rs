//! Impersonation as kube-apiserver's filter does it: `impersonate` on users, groups,
//! serviceaccounts, uids and userextras, kube's Forbidden bodies when missing, and the
//! impersonated user authorized like any other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::rbac::{self, rule, user};
use common::{anonymous_client, start, status};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

/// A raw client authenticating with `user`'s client certificate.
fn as_user(sb: &volops_sandbox::Sandbox, name: &str, groups: &[&str]) -> reqwest::Client {
    let cert = sb.client_certificate(name, groups).unwrap();
    let identity =
        reqwest::Identity::from_pem(format!("{}{}", cert.cert_pem, cert.key_pem).as_bytes()).unwrap();
    anonymous_client(sb).identity(identity).build().unwrap()
}

async fn whoami(web: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = web
        .post(format!("{url}/apis/authentication.k8s.io/v1/selfsubjectreviews"))
        .json(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn impersonation_needs_impersonate_rights() {
    let (sb, admin) = start().await;
    rbac::namespace(&admin, "ops").await;
    let alice = as_user(&sb, "alice", &["tenants"]);
    let url = sb.url().to_owned();

    let (code, body) = whoami(&alice, &url, &[("Impersonate-User", "bob")]).await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
            "reason": "Forbidden", "details": {"name": "bob", "kind": "users"}, "code": 403})
    );
    let (code, body) = whoami(
        &alice,
        &url,
        &[("Impersonate-User", "system:serviceaccount:ops:ctl")],
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "serviceaccounts \"ctl\" is forbidden: User \"alice\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"ops\""
    );
    // Groups without a user is an error of the request itself (kube answers 500).
    let (code, _) = whoami(&alice, &url, &[("Impersonate-Group", "admins")]).await;
    assert_eq!(code, 500);

    // impersonate on the user bob (by name) but not on groups.
    rbac::cluster_role(
        &admin,
        "impersonate-bob",
        json!({}),
        json!([
            {"verbs": ["impersonate"], "apiGroups": [""], "resources": ["users"], "resourceNames": ["bob"]},
            {"verbs": ["impersonate"], "apiGroups": ["authentication.k8s.io"], "resources": ["userextras/scopes"]},
        ]),
    )
    .await;
    rbac::cluster_role_binding(
        &admin,
        "alice-impersonates",
        "impersonate-bob",
        json!([user("alice")]),
    )
    .await;
    let (code, body) = whoami(
        &alice,
        &url,
        &[("Impersonate-User", "bob"), ("Impersonate-Extra-Scopes", "read")],
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        body["status"]["userInfo"],
        json!({"username": "bob", "groups": ["system:authenticated"], "extra": {"scopes": ["read"]}})
    );
    let (code, _) = whoami(&alice, &url, &[("Impersonate-User", "carol")]).await;
    assert_eq!(code, 403);
    let (code, body) = whoami(
        &alice,
        &url,
        &[
            ("Impersonate-User", "bob"),
            ("Impersonate-Group", "system:masters"),
        ],
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "groups \"system:masters\" is forbidden: User \"alice\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope"
    );
    let (code, body) = whoami(
        &alice,
        &url,
        &[("Impersonate-User", "bob"), ("Impersonate-Uid", "u1")],
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "uids.authentication.k8s.io \"u1\" is forbidden: User \"alice\" cannot impersonate resource \"uids\" in API group \"authentication.k8s.io\" at the cluster scope"
    );

    // The impersonated user is authorized as itself, not as the impersonator.
    rbac::role(
        &admin,
        "ops",
        "cm",
        json!([rule(&["list"], &[""], &["configmaps"])]),
    )
    .await;
    rbac::role_binding(&admin, "ops", "alice-cm", "Role", "cm", json!([user("alice")])).await;
    let list = |who: Option<&str>| {
        let mut r = alice.get(format!("{url}/api/v1/namespaces/ops/configmaps"));
        if let Some(u) = who {
            r = r.header("Impersonate-User", u);
        }
        r.send()
    };
    assert_eq!(list(None).await.unwrap().status(), 200);
    let resp = list(Some("bob")).await.unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["message"],
        "configmaps is forbidden: User \"bob\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"ops\""
    );
}

#[tokio::test]
async fn client_as_impersonates_through_the_admin() {
    let (sb, admin) = start().await;
    rbac::namespace(&admin, "demo").await;
    let alice = sb.client_as("alice", &["tenants"]).await.unwrap();
    let me = Api::<SelfSubjectReview>::all(alice.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap()
        .status
        .unwrap()
        .user_info
        .unwrap();
    assert_eq!(me.username.as_deref(), Some("alice"));
    assert_eq!(me.groups.unwrap(), vec!["tenants", "system:authenticated"]);
    let cms: Api<ConfigMap> = Api::namespaced(alice.clone(), "demo");
    let (code, _, message) = status(cms.list(&ListParams::default()).await);
    assert_eq!(code, 403);
    assert!(message.contains("User \"alice\" cannot list"), "{message}");
    rbac::role_binding(
        &admin,
        "demo",
        "tenants-view",
        "ClusterRole",
        "view",
        json!([rbac::group("tenants")]),
    )
    .await;
    cms.list(&ListParams::default()).await.unwrap();

    // A ServiceAccount impersonated without groups gets its own.
    let sa = sb
        .client_as("system:serviceaccount:volops-system:volops-controller", &[])
        .await
        .unwrap();
    let me = Api::<SelfSubjectReview>::all(sa)
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap()
        .status
        .unwrap()
        .user_info
        .unwrap();
    assert_eq!(
        me.groups.unwrap(),
        vec![
            "system:serviceaccounts",
            "system:serviceaccounts:volops-system",
            "system:authenticated"
        ]
    );
}
