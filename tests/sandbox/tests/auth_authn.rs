//! Authentication as kube-apiserver does it: client certificates (CN user, O groups) from the
//! client CA, the admin token, ServiceAccount tokens from the TokenRequest API (expiry, deleted
//! and recreated accounts, audiences, pod binding), anonymous requests, and 401s.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::rbac::{self, rule};
use common::{anonymous_client, start, status};
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest, TokenReview, UserInfo};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

async fn whoami(client: &kube::Client) -> Result<UserInfo, kube::Error> {
    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    Ok(review.status.unwrap().user_info.unwrap())
}

fn unauthorized<T: std::fmt::Debug>(r: Result<T, kube::Error>) {
    assert_eq!(status(r), (401, "Unauthorized".into(), "Unauthorized".into()));
}

#[tokio::test]
async fn client_certificates_name_user_and_groups() {
    let (sb, admin) = start().await;
    let alice = sb
        .client_with_certificate("alice", &["tenants", "ops"])
        .await
        .unwrap();
    let me = whoami(&alice).await.unwrap();
    assert_eq!(me.username.as_deref(), Some("alice"));
    assert_eq!(me.groups.unwrap(), vec!["tenants", "ops", "system:authenticated"]);
    let ids = &me.extra.unwrap()["authentication.kubernetes.io/credential-id"];
    assert!(ids[0].starts_with("X509SHA256="), "{ids:?}");

    // The admin kubeconfig stays all-powerful.
    let me = whoami(&admin).await.unwrap();
    assert_eq!(me.username.as_deref(), Some("sandbox-admin"));
    assert!(me.groups.unwrap().contains(&"system:masters".to_string()));

    // A certificate another CA signed is a 401, not anonymous.
    let (other, _) = start().await;
    let foreign = other.client_certificate("mallory", &["system:masters"]).unwrap();
    let identity =
        reqwest::Identity::from_pem(format!("{}{}", foreign.cert_pem, foreign.key_pem).as_bytes()).unwrap();
    let web = anonymous_client(&sb).identity(identity).build().unwrap();
    let resp = web.get(format!("{}/api", sb.url())).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );
    // This sandbox's own certificate over the same raw client works.
    let own = sb.client_certificate("carol", &[]).unwrap();
    let identity =
        reqwest::Identity::from_pem(format!("{}{}", own.cert_pem, own.key_pem).as_bytes()).unwrap();
    let web = anonymous_client(&sb).identity(identity).build().unwrap();
    assert_eq!(
        web.get(format!("{}/api", sb.url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn bad_or_missing_credentials() {
    let (sb, _admin) = start().await;
    let web = anonymous_client(&sb).build().unwrap();
    let url = format!("{}/api/v1/namespaces/default/pods", sb.url());
    let near_admin = format!("{}0", sb.admin_token());
    for token in ["garbage", "a.b.c", &near_admin] {
        let resp = web.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{token}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["message"], "Unauthorized");
        assert_eq!(body["reason"], "Unauthorized");
        assert!(body.get("details").is_none());
    }
    unauthorized(
        Api::<Pod>::all(sb.client_with_token("nope").await.unwrap())
            .list(&ListParams::default())
            .await,
    );
    // Another sandbox's ServiceAccount token is not this one's.
    let (other, other_admin) = start().await;
    rbac::create_service_account(&other_admin, "default", "sa").await;
    let token = other.service_account_token("default", "sa").await.unwrap();
    assert_eq!(
        web.get(&url).bearer_auth(&token).send().await.unwrap().status(),
        401
    );
    // No credentials (or a scheme kube ignores) is the anonymous user, then RBAC decides.
    for resp in [
        web.get(&url).send().await.unwrap(),
        web.get(&url)
            .basic_auth("admin", Some("pw"))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(resp.status(), 403);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["message"],
            "pods is forbidden: User \"system:anonymous\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
    }
}

#[tokio::test]
async fn service_account_tokens_live_and_die_with_their_account() {
    let (sb, admin) = start().await;
    rbac::namespace(&admin, "ops").await;
    let sa = rbac::create_service_account(&admin, "ops", "ctl").await;
    let token = sb.service_account_token("ops", "ctl").await.unwrap();
    let ctl = sb.client_with_token(&token).await.unwrap();

    let me = whoami(&ctl).await.unwrap();
    assert_eq!(me.username.as_deref(), Some("system:serviceaccount:ops:ctl"));
    assert_eq!(me.uid, sa.metadata.uid);
    assert_eq!(
        me.groups.unwrap(),
        vec![
            "system:serviceaccounts",
            "system:serviceaccounts:ops",
            "system:authenticated"
        ]
    );

    // Authorized as the ServiceAccount: a binding naming it grants.
    let pods: Api<Pod> = Api::namespaced(ctl.clone(), "ops");
    let (code, _, message) = status(pods.list(&ListParams::default()).await);
    assert_eq!(code, 403);
    assert_eq!(
        message,
        r#"pods is forbidden: User "system:serviceaccount:ops:ctl" cannot list resource "pods" in API group "" in the namespace "ops""#
    );
    rbac::role(&admin, "ops", "pods", json!([rule(&["list"], &[""], &["pods"])])).await;
    rbac::role_binding(
        &admin,
        "ops",
        "ctl-pods",
        "Role",
        "pods",
        json!([{"kind": "ServiceAccount", "name": "ctl"}]),
    )
    .await;
    pods.list(&ListParams::default()).await.unwrap();

    // Expired: an hour later the same token is refused; a fresh one works.
    sb.advance_token_clock(Duration::from_secs(3600));
    unauthorized(pods.list(&ListParams::default()).await);
    let fresh = sb.service_account_client("ops", "ctl").await.unwrap();
    Api::<Pod>::namespaced(fresh, "ops")
        .list(&ListParams::default())
        .await
        .unwrap();

    // Deleted: refused. Recreated under the same name: still refused (another UID).
    let token = sb.service_account_token("ops", "ctl").await.unwrap();
    let before = Api::<Pod>::namespaced(sb.client_with_token(&token).await.unwrap(), "ops");
    before.list(&ListParams::default()).await.unwrap();
    Api::<ServiceAccount>::namespaced(admin.clone(), "ops")
        .delete("ctl", &DeleteParams::default())
        .await
        .unwrap();
    unauthorized(before.list(&ListParams::default()).await);
    rbac::create_service_account(&admin, "ops", "ctl").await;
    unauthorized(before.list(&ListParams::default()).await);
    let after = sb.service_account_client("ops", "ctl").await.unwrap();
    Api::<Pod>::namespaced(after, "ops")
        .list(&ListParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn token_request_api_like_kube() {
    let (sb, admin) = start().await;
    rbac::namespace(&admin, "ops").await;
    rbac::create_service_account(&admin, "ops", "ctl").await;
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "ops");
    let request = |spec: Value| -> TokenRequest { serde_json::from_value(json!({"spec": spec})).unwrap() };

    let tr = sas
        .create_token_request("ctl", &PostParams::default(), &request(json!({})))
        .await
        .unwrap();
    assert_eq!(tr.metadata.name.as_deref(), Some("ctl"));
    assert_eq!(tr.spec.expiration_seconds, Some(3600));
    assert_eq!(tr.spec.audiences, vec![ISSUER]);
    let st = tr.status.unwrap();
    let expires = st.expiration_timestamp.0.as_second() - jiff::Timestamp::now().as_second();
    assert!((3590..=3600).contains(&expires), "{expires}");
    assert_eq!(st.token.split('.').count(), 3);

    let (code, reason, message) = status(
        sas.create_token_request("nope", &PostParams::default(), &request(json!({})))
            .await,
    );
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (404, "NotFound", r#"serviceaccounts "nope" not found"#)
    );
    let (code, reason, message) = status(
        sas.create_token_request(
            "ctl",
            &PostParams::default(),
            &request(json!({"expirationSeconds": 60})),
        )
        .await,
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert_eq!(
        message,
        r#"TokenRequest.authentication.k8s.io "ctl" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds"#
    );

    // A token for another audience is not accepted by the API server, but TokenReview with
    // that audience vouches for it.
    let vault = sas
        .create_token_request(
            "ctl",
            &PostParams::default(),
            &request(json!({"audiences": ["vault"]})),
        )
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    unauthorized(whoami(&sb.client_with_token(&vault).await.unwrap()).await);
    let reviews: Api<TokenReview> = Api::all(admin.clone());
    let review = |token: &str, auds: &[&str]| -> TokenReview {
        serde_json::from_value(json!({"spec": {"token": token, "audiences": auds}})).unwrap()
    };
    let ok = reviews
        .create(&PostParams::default(), &review(&vault, &["vault"]))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(ok.authenticated, Some(true));
    assert_eq!(ok.audiences, Some(vec!["vault".to_string()]));
    assert_eq!(
        ok.user.unwrap().username.as_deref(),
        Some("system:serviceaccount:ops:ctl")
    );
    let bad = reviews
        .create(&PostParams::default(), &review(&vault, &[]))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_ne!(bad.authenticated, Some(true));
    assert!(bad.error.is_some());

    // A token bound to a pod dies with the pod; the user carries the pod in its extras.
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"},
        "spec": {"serviceAccountName": "ctl", "containers": [{"name": "c", "image": "x"}]}}))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "ops");
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let bound = sas
        .create_token_request(
            "ctl",
            &PostParams::default(),
            &request(json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p"}})),
        )
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let client = sb.client_with_token(&bound).await.unwrap();
    let me = whoami(&client).await.unwrap();
    assert_eq!(
        me.extra.unwrap()["authentication.kubernetes.io/pod-name"],
        vec!["p"]
    );
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    unauthorized(whoami(&client).await);
}

#[tokio::test]
async fn a_mounted_token_is_a_pods_identity() {
    let (sb, admin) = start().await;
    rbac::namespace(&admin, "volops-system").await;
    rbac::create_service_account(&admin, "volops-system", "volops-controller").await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = sb
        .mount_service_account_token("volops-system", "volops-controller", dir.path())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("namespace")).unwrap(),
        "volops-system"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ca.crt")).unwrap(),
        sb.ca_pem()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    // What a binary handed this kubeconfig (kube-rs reads the token file) authenticates as.
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(cfg).unwrap();
    assert_eq!(
        whoami(&client).await.unwrap().username.as_deref(),
        Some("system:serviceaccount:volops-system:volops-controller")
    );
}
