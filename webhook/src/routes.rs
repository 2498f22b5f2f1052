//! The admission HTTP API (`POST /validate`, `POST /mutate`) as an axum Router.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use volops_shared::facts::RuleOptions;

use crate::admit::{Decision, Endpoint, decide};
use crate::caches::Caches;
use crate::metrics::{DenialLabels, Metrics, RequestLabels, label};
use crate::review::{ReviewIn, ReviewOut};

/// Largest AdmissionReview accepted (object + oldObject of a ~1.5 MiB etcd object, with room).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// What the admission handlers share.
pub struct AppState {
    pub caches: Caches,
    pub options: RuleOptions,
    pub metrics: Arc<Metrics>,
}

/// The admission router; `timeout` bounds reading each request's body (deciding is CPU-only
/// and takes microseconds).
pub fn router(state: Arc<AppState>, timeout: Duration) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .with_state(Served { app: state, timeout })
}

/// The router's state: the handlers' state and the body-read limit. No middleware layer: each
/// one costs a boxed future and a service clone per request.
#[derive(Clone)]
struct Served {
    app: Arc<AppState>,
    timeout: Duration,
}

async fn validate(State(s): State<Served>, req: Request) -> Response {
    match read_body(req, s.timeout).await {
        Ok(body) => handle(Endpoint::Validate, &s.app, &body),
        Err(resp) => resp,
    }
}

async fn mutate(State(s): State<Served>, req: Request) -> Response {
    match read_body(req, s.timeout).await {
        Ok(body) => handle(Endpoint::Mutate, &s.app, &body),
        Err(resp) => resp,
    }
}

/// The body, at most [`MAX_BODY`] bytes (413 above), read within `limit` (503 after it:
/// kube-apiserver gives up at 10 s). A body already buffered never arms the timer.
async fn read_body(req: Request, limit: Duration) -> Result<Bytes, Response> {
    let too_large = || (StatusCode::PAYLOAD_TOO_LARGE, "admission review too large").into_response();
    // Read up to the limit even when Content-Length already says too much: answering before
    // the client has sent its body makes it see a broken pipe instead of the 413.
    let body = Limited::new(req.into_body(), MAX_BODY);
    match tokio::time::timeout(limit, body.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(e)) => {
            Err((StatusCode::BAD_REQUEST, format!("reading admission review: {e}")).into_response())
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = limit.as_millis() as u64,
                "admission request timed out"
            );
            Err((StatusCode::SERVICE_UNAVAILABLE, "admission request timed out").into_response())
        }
    }
}

fn bad_request(reason: String) -> Response {
    tracing::warn!(%reason, "rejected malformed admission review");
    (StatusCode::BAD_REQUEST, reason).into_response()
}

/// One admission review: parse, decide, log, count, encode (the routes and benchmarks call it).
pub fn handle(endpoint: Endpoint, state: &AppState, body: &[u8]) -> Response {
    let started = Instant::now();
    let review: ReviewIn<'_> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("malformed AdmissionReview: {e}")),
    };
    let Some(req) = review.request else {
        return bad_request("AdmissionReview has no request".to_owned());
    };
    let decision = decide(endpoint, &req, &state.caches, &state.options);
    log_decision(endpoint, &req, &decision);
    count(&state.metrics, endpoint, &req, &decision);
    let mut bytes = Vec::with_capacity(512);
    if let Err(e) = serde_json::to_writer(&mut bytes, &ReviewOut::new(decision.response)) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding response: {e}"),
        )
            .into_response();
    }
    state.metrics.latency.observe(started.elapsed().as_secs_f64());
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// One line per review at debug level: at info it would cost more than the decision itself at
/// load; the counters above say how many were allowed and denied, and by which rule.
fn log_decision(endpoint: Endpoint, req: &crate::review::AdmissionRequest<'_>, d: &Decision) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let (name, namespace) = (
        req.name.as_deref().unwrap_or_default(),
        req.namespace.as_deref().unwrap_or_default(),
    );
    let reason = d
        .response
        .status
        .as_ref()
        .map(|s| s.message.as_str())
        .unwrap_or_default();
    tracing::debug!(
        endpoint = ?endpoint,
        uid = %req.uid,
        kind = %req.kind.kind,
        namespace,
        name,
        operation = %req.operation,
        sub_resource = req.sub_resource.as_deref().unwrap_or_default(),
        dry_run = req.is_dry_run(),
        allowed = d.response.allowed,
        rule = d.rule.unwrap_or_default(),
        reason,
        warnings = d.response.warnings.len(),
        "admission decision"
    );
}

fn count(metrics: &Metrics, endpoint: Endpoint, req: &crate::review::AdmissionRequest<'_>, d: &Decision) {
    let allowed = d.response.allowed;
    if let Some(rule) = d.rule {
        metrics
            .denials
            .get_or_create(&DenialLabels {
                kind: label(&req.kind.kind),
                rule,
            })
            .inc();
    }
    metrics
        .requests
        .get_or_create(&RequestLabels {
            endpoint: match endpoint {
                Endpoint::Validate => "validate",
                Endpoint::Mutate => "mutate",
            },
            kind: label(&req.kind.kind),
            operation: label(&req.operation),
            allowed: if allowed { "true" } else { "false" },
        })
        .inc();
}
