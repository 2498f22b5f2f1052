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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use tower::ServiceExt;

    async fn get(router: Router, path: &str) -> (StatusCode, String, String) {
        let req = axum::http::Request::get(path).body(Body::empty()).unwrap();
        let res = router.oneshot(req).await.unwrap();
        let status = res.status();
        let ctype = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = String::from_utf8(to_bytes(res.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
        (status, ctype, body)
    }

    #[tokio::test]
    async fn probes_answer_and_readiness_follows_the_flag() {
        let state = ProbeState {
            metrics: Arc::new(Metrics::default()),
            ready: Arc::new(AtomicBool::new(false)),
        };
        let router = super::router(state.clone());
        assert_eq!(get(router.clone(), "/healthz").await.0, StatusCode::OK);
        assert_eq!(
            get(router.clone(), "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        state.ready.store(true, Ordering::Relaxed);
        assert_eq!(get(router.clone(), "/readyz").await.0, StatusCode::OK);
        let labels = crate::metrics::ErrorLabels {
            kind: "RedisOpsRequest".into(),
            error: "kube".into(),
        };
        state.metrics.reconcile_errors.get_or_create(&labels).inc_by(2);
        let (status, ctype, body) = get(router.clone(), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
        assert!(
            body.contains(
                "volops_controller_reconcile_errors_total{kind=\"RedisOpsRequest\",error=\"kube\"} 2"
            ),
            "{body}"
        );
        assert!(body.ends_with("# EOF\n"));
        assert_eq!(get(router, "/nope").await.0, StatusCode::NOT_FOUND);
    }
}
