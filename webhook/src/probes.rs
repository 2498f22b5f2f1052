//! The plain-HTTP routers: the kubelet's probes (`/healthz`, `/readyz`) and `/metrics`, served
//! on one listener or on two (`--metrics-listen`, so that a NetworkPolicy can open the metrics
//! port to scrapers only).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::caches::Caches;
use crate::metrics::{CONTENT_TYPE, Metrics, TEXT_CONTENT_TYPE, to_text_format, wants_text_format};

pub struct ProbeState {
    pub caches: Caches,
    pub metrics: Arc<Metrics>,
    /// Set once the serving certificate is loaded and the HTTPS listener is bound.
    pub serving: Arc<AtomicBool>,
}

/// Probes and metrics on one listener.
pub fn router(state: Arc<ProbeState>) -> Router {
    probes_router(state.clone()).merge(metrics_router(state))
}

/// `/healthz` and `/readyz` only.
pub fn probes_router(state: Arc<ProbeState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// `/metrics` only.
pub fn metrics_router(state: Arc<ProbeState>) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state)
}

async fn readyz(State(s): State<Arc<ProbeState>>) -> Response {
    if !s.serving.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "certificate not loaded").into_response();
    }
    let unsynced = s.caches.unsynced();
    if !unsynced.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("caches not synced: {}", unsynced.join(", ")),
        )
            .into_response();
    }
    (StatusCode::OK, "ok").into_response()
}

/// OpenMetrics, or the Prometheus text format when the scraper asks for it.
async fn metrics(State(s): State<Arc<ProbeState>>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    match s.metrics.render(&s.caches) {
        Ok(text) if wants_text_format(accept) => {
            ([(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)], to_text_format(&text)).into_response()
        }
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics: {e}"),
        )
            .into_response(),
    }
}
