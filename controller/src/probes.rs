//! `/healthz`, `/readyz` and `/metrics` on `--probe-listen`.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, http::header, response::IntoResponse, routing::get};

use crate::{
    error::{Error, Result},
    metrics::Metrics,
};

#[derive(Clone)]
pub struct ProbeState {
    pub metrics: Arc<Metrics>,
    pub ready: Arc<AtomicBool>,
}

pub fn router(state: ProbeState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(s): State<ProbeState>) -> impl IntoResponse {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

async fn metrics(State(s): State<ProbeState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

/// Binds the probe listener (so a bad address fails at start) and returns the server future.
pub async fn bind(
    addr: SocketAddr,
    state: ProbeState,
) -> Result<(SocketAddr, impl Future<Output = std::io::Result<()>> + Send)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Probe { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Probe { addr, source })?;
    Ok((local, async move { axum::serve(listener, router(state)).await }))
}
