//! Shared helpers for the sandbox API tests.
#![allow(dead_code, clippy::unwrap_used)]

pub mod rbac;
pub mod recorder;
pub mod webhook;

use std::time::Duration;

use volops_sandbox::{Sandbox, SandboxOptions};

/// A sandbox with quick bookmarks and a small watch history (so 410 is easy to reach).
pub async fn start() -> (Sandbox, kube::Client) {
    start_with(SandboxOptions {
        bookmark_interval: Duration::from_millis(200),
        watch_history: 50,
        ..Default::default()
    })
    .await
}

pub async fn start_with(opts: SandboxOptions) -> (Sandbox, kube::Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sb = Sandbox::start(opts).await.unwrap();
    let client = sb.client().await.unwrap();
    (sb, client)
}

/// (code, reason, message) of an API error; panics on any other result.
pub fn status<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> (u16, String, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// A raw HTTPS client trusting the sandbox CA and sending the admin token (for wire-level
/// checks).
pub fn raw_client(sb: &Sandbox) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {}", sb.admin_token());
    headers.insert(reqwest::header::AUTHORIZATION, bearer.parse().unwrap());
    anonymous_client(sb).default_headers(headers).build().unwrap()
}

/// A raw HTTPS client trusting the sandbox CA, without credentials.
pub fn anonymous_client(sb: &Sandbox) -> reqwest::ClientBuilder {
    let ca = reqwest::Certificate::from_pem(sb.ca_pem().as_bytes()).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
}

pub fn cm(name: &str) -> k8s_openapi::api::core::v1::ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"app": "x"}}, "data": {"k": "v"}
    }))
    .unwrap()
}

/// kubectl on PATH, or None (a failure when CI=true, where the tests must not skip).
pub fn kubectl() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "kubectl is required when CI=true"
        );
        eprintln!("SKIPPED: kubectl not found on PATH");
    }
    found
}

/// The volops controller's identity (docs/ and the chart: release namespace volops-system).
pub const CONTROLLER: &str = "system:serviceaccount:volops-system:volops-controller";

/// A client acting as the tenant `alice`; the one place tenants' rights get set up.
pub async fn tenant_client(sb: &Sandbox) -> kube::Client {
    grant_all(sb, "alice", rbac::user("alice")).await;
    sb.client_as("alice", &["tenants", "system:authenticated"])
        .await
        .unwrap()
}

/// A client acting as the volops controller's ServiceAccount.
pub async fn controller_client(sb: &Sandbox) -> kube::Client {
    grant_all(
        sb,
        "volops-controller",
        rbac::service_account("volops-system", "volops-controller"),
    )
    .await;
    sb.client_as(
        CONTROLLER,
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:volops-system",
            "system:authenticated",
        ],
    )
    .await
    .unwrap()
}

/// Binds `subject` to `cluster-admin` (idempotent): these admission tests are about which
/// webhooks a user reaches, not about what RBAC lets the user do.
async fn grant_all(sb: &Sandbox, name: &str, subject: serde_json::Value) {
    use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
    let admin = sb.client().await.unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("test-all-{name}")},
        "roleRef": {"apiGroup": rbac::GROUP, "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [subject],
    }))
    .unwrap();
    match kube::Api::<ClusterRoleBinding>::all(admin)
        .create(&Default::default(), &binding)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("binding {name}: {e}"),
    }
}
