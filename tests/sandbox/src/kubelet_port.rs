//! The plain-HTTP scrape endpoint of the kubelets' metrics, like a kubelet's read-only port
//! (10255): no TLS and no credentials, so a Prometheus server scrapes it without Kubernetes
//! access. `GET /metrics` is every reachable node's `kubelet_volume_stats_*`; `GET /healthz`.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, header};
use tokio::net::TcpListener;
use tokio::sync::watch;
use volops_sandbox_cluster::Kubelets;
use volops_sandbox_cluster::stats::metrics::CONTENT_TYPE;

use crate::SandboxError;

/// Binds `listen` and serves until `shutdown` flips; returns the bound address.
pub async fn start(
    listen: SocketAddr,
    kubelets: Kubelets,
    mut shutdown: watch::Receiver<bool>,
) -> Result<SocketAddr, SandboxError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| SandboxError::Bind(listen, e))?;
    let addr = listener.local_addr().map_err(|e| SandboxError::Bind(listen, e))?;
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(kubelets);
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stopped| *stopped).await;
        };
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(stop).await {
            tracing::warn!(error = %e, "kubelet metrics endpoint stopped");
        }
    });
    Ok(addr)
}

async fn metrics(State(kubelets): State<Kubelets>) -> Response {
    let mut resp = kubelets.metrics_all().into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp
}
