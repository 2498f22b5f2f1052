//! An HTTPS admission webhook that records every AdmissionReview it gets: `/allow` allows,
//! `/deny` denies, `/label-a` and `/label-b` add the labels `a=1` and `b=2`.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::post;
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

type Seen = Arc<Mutex<Vec<(String, Value)>>>;

pub struct Recorder {
    pub addr: SocketAddr,
    ca_pem: String,
    seen: Seen,
}

impl Recorder {
    pub fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }
    /// `clientConfig` pointing at `path`.
    pub fn client_config(&self, path: &str) -> Value {
        json!({"url": format!("https://{}/{path}", self.addr), "caBundle": self.ca_bundle()})
    }
    /// The `request` of every review received on `path`, in order.
    pub fn requests(&self, path: &str) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, r)| r["request"].clone())
            .collect()
    }
    pub fn paths(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(|(p, _)| p.clone()).collect()
    }
}

async fn answer(
    State(seen): State<Seen>,
    Path(path): Path<String>,
    Json(review): Json<Value>,
) -> Json<Value> {
    seen.lock().unwrap().push((path.clone(), review.clone()));
    let uid = review["request"]["uid"].clone();
    let has_labels = review["request"]["object"]["metadata"]["labels"].is_object();
    let label = |k: &str, v: &str| {
        let ops = if has_labels {
            json!([{"op": "add", "path": format!("/metadata/labels/{k}"), "value": v}])
        } else {
            json!([{"op": "add", "path": "/metadata/labels", "value": {k: v}}])
        };
        let patch = base64::engine::general_purpose::STANDARD.encode(ops.to_string());
        json!({"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": patch})
    };
    let response = match path.as_str() {
        "deny" => json!({"uid": uid, "allowed": false,
            "status": {"code": 403, "reason": "Forbidden", "message": "denied by the recorder"}}),
        "label-a" => label("a", "1"),
        "label-b" => label("b", "2"),
        _ => json!({"uid": uid, "allowed": true}),
    };
    Json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}))
}

/// Starts the recorder on 127.0.0.1 with a certificate for 127.0.0.1.
pub async fn start() -> Recorder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bundle = volops_certs::generate(&[], &["127.0.0.1".parse().unwrap()], 1).unwrap();
    let certs = vec![CertificateDer::from_pem_slice(bundle.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(bundle.key_pem.as_bytes()).unwrap();
    let cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/{path}", post(answer))
        .with_state(seen.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
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
    Recorder {
        addr,
        ca_pem: bundle.ca_cert_pem,
        seen,
    }
}
