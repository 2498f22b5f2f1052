//! A tiny HTTPS admission webhook for tests: `/mutate` adds the label `mutated=yes`,
//! `/validate` denies objects whose `data.deny` is set and warns otherwise.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

pub struct TestWebhook {
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub calls: Arc<AtomicUsize>,
}

impl TestWebhook {
    pub fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn mutate(State(calls): State<Arc<AtomicUsize>>, Json(review): Json<Value>) -> Json<Value> {
    calls.fetch_add(1, Ordering::SeqCst);
    let uid = review["request"]["uid"].clone();
    let has_labels = review["request"]["object"]["metadata"]["labels"].is_object();
    let patch = if has_labels {
        json!([{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}])
    } else {
        json!([{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}])
    };
    let patch = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
    Json(
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": patch}}),
    )
}

async fn validate(State(calls): State<Arc<AtomicUsize>>, Json(review): Json<Value>) -> Json<Value> {
    calls.fetch_add(1, Ordering::SeqCst);
    let uid = review["request"]["uid"].clone();
    let deny = !review["request"]["object"]["data"]["deny"].is_null();
    let response = if deny {
        json!({"uid": uid, "allowed": false, "status": {"code": 403, "reason": "Forbidden",
            "message": "objects with data.deny are not allowed"}})
    } else {
        json!({"uid": uid, "allowed": true, "warnings": ["checked by the test webhook"]})
    };
    Json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}))
}

/// Starts the webhook on 127.0.0.1 with a cert for 127.0.0.1 and `dns` names.
pub async fn start(dns: &[&str]) -> TestWebhook {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dns: Vec<String> = dns.iter().map(|s| s.to_string()).collect();
    let bundle = volops_certs::generate(&dns, &["127.0.0.1".parse().unwrap()], 1).unwrap();
    let certs = vec![CertificateDer::from_pem_slice(bundle.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(bundle.key_pem.as_bytes()).unwrap();
    let cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .with_state(calls.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                    .await;
            });
        }
    });
    TestWebhook {
        addr,
        ca_pem: bundle.ca_cert_pem,
        calls,
    }
}

/// Mutating + validating configurations pointing at the webhook's URL, for configmaps.
pub fn configs(hook: &TestWebhook) -> (Value, Value) {
    let rules = json!([{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
        "resources": ["configmaps"]}]);
    let client =
        |path: &str| json!({"url": format!("https://{}/{path}", hook.addr), "caBundle": hook.ca_bundle()});
    let m = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "test-mutate"},
        "webhooks": [{"name": "mutate.volops.test", "clientConfig": client("mutate"), "rules": rules,
            "sideEffects": "None", "admissionReviewVersions": ["v1"], "failurePolicy": "Fail"}]});
    let v = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "test-validate"},
        "webhooks": [{"name": "deny.volops.test", "clientConfig": client("validate"), "rules": rules,
            "sideEffects": "None", "admissionReviewVersions": ["v1"], "failurePolicy": "Fail"}]});
    (m, v)
}
