//! `/healthz` and `/readyz` on `--probe-listen`, `/metrics` on `--metrics-listen` (or on the
//! probe listener when both name the same address), so that a NetworkPolicy can open the
//! metrics port to scrapers only.

use std::{
    future::IntoFuture,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{
    error::{Error, Result},
    metrics::{CONTENT_TYPE, Metrics, TEXT_CONTENT_TYPE, to_text_format, wants_text_format},
};

#[derive(Clone)]
pub struct ProbeState {
    pub metrics: Arc<Metrics>,
    pub ready: Arc<AtomicBool>,
}

/// Probes and metrics on one listener.
pub fn router(state: ProbeState) -> Router {
    probes_router(state.clone()).merge(metrics_router(state))
}

/// `/healthz` and `/readyz` only.
pub fn probes_router(state: ProbeState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// `/metrics` only.
pub fn metrics_router(state: ProbeState) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state)
}

async fn readyz(State(s): State<ProbeState>) -> impl IntoResponse {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

/// OpenMetrics, or the Prometheus text format when the scraper asks for it.
async fn metrics(State(s): State<ProbeState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let text = s.metrics.encode();
    if wants_text_format(accept) {
        return ([(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)], to_text_format(&text)).into_response();
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

async fn listen(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Probe { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Probe { addr, source })?;
    Ok((listener, local))
}

/// Binds the probe listener and, when `metrics` is another address, the metrics listener (so a
/// bad address fails at start); returns where probes and metrics are served and the server future.
pub async fn bind(
    addr: SocketAddr,
    metrics: Option<SocketAddr>,
    state: ProbeState,
) -> Result<(
    SocketAddr,
    SocketAddr,
    impl Future<Output = std::io::Result<()>> + Send,
)> {
    let (probe_listener, probe_addr) = listen(addr).await?;
    let metrics_listener = match metrics.filter(|m| *m != addr) {
        Some(m) => Some(listen(m).await?),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().map_or(probe_addr, |(_, a)| *a);
    let serve = async move {
        match metrics_listener {
            Some((listener, _)) => {
                let probes = axum::serve(probe_listener, probes_router(state.clone())).into_future();
                let metrics = axum::serve(listener, metrics_router(state)).into_future();
                tokio::try_join!(probes, metrics).map(|_| ())
            }
            None => axum::serve(probe_listener, router(state)).await,
        }
    };
    Ok((probe_addr, metrics_addr, serve))
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
        assert_eq!(
            get(super::probes_router(state.clone()), "/metrics").await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get(super::metrics_router(state), "/healthz").await.0,
            StatusCode::NOT_FOUND
        );
    }

    /// The status of a plain HTTP/1.0 GET over a socket, as a scraper or the kubelet sends it.
    async fn http_get(addr: SocketAddr, path: &str) -> StatusCode {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.unwrap();
        let head = String::from_utf8_lossy(&answer);
        let code = head.split_whitespace().nth(1).unwrap();
        StatusCode::from_bytes(code.as_bytes()).unwrap()
    }

    #[tokio::test]
    async fn metrics_listen_serves_metrics_apart_and_the_probe_address_shares_one_listener() {
        let state = ProbeState {
            metrics: Arc::new(Metrics::default()),
            ready: Arc::new(AtomicBool::new(true)),
        };
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let (probe, metrics, serve) = bind(any, Some(any), state.clone()).await.unwrap();
        // Port 0 twice asks for two listeners only when the addresses differ: here they are the same.
        assert_eq!(probe, metrics);
        let task = tokio::spawn(serve);
        assert_eq!(http_get(probe, "/metrics").await, StatusCode::OK);
        task.abort();

        let other = SocketAddr::from(([127, 0, 0, 2], 0));
        let (probe, metrics, serve) = bind(any, Some(other), state).await.unwrap();
        assert_ne!(probe, metrics);
        let task = tokio::spawn(serve);
        assert_eq!(http_get(metrics, "/metrics").await, StatusCode::OK);
        assert_eq!(http_get(metrics, "/readyz").await, StatusCode::NOT_FOUND);
        assert_eq!(http_get(probe, "/metrics").await, StatusCode::NOT_FOUND);
        assert_eq!(http_get(probe, "/readyz").await, StatusCode::OK);
        task.abort();
    }
}
