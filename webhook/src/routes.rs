//! The admission HTTP API (`POST /validate`, `POST /mutate`) as an axum Router.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use volops_shared::facts::RuleOptions;

use crate::admit::{Decision, Endpoint, decide};
use crate::body::{self, BodyLimits};
use crate::caches::Caches;
use crate::limits::Limits;
use crate::metrics::{DenialLabels, Metrics, RequestLabels, label};
use crate::review::{ReviewIn, ReviewOut};

/// Largest AdmissionReview accepted by default (object + oldObject of a ~1.5 MiB etcd object,
/// with room; `--max-body-bytes`).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// What the admission handlers share.
pub struct AppState {
    pub caches: Caches,
    pub options: RuleOptions,
    pub metrics: Arc<Metrics>,
}

/// The admission router with the default body limits; `timeout` bounds reading each request's
/// body (deciding is CPU-only and takes microseconds).
pub fn router(state: Arc<AppState>, timeout: Duration) -> Router {
    router_with(state, BodyLimits::new(timeout, &Limits::default()))
}

/// The admission router reading bodies within `body` (size, time, memory of all bodies).
pub fn router_with(state: Arc<AppState>, body: BodyLimits) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .with_state(Served { app: state, body })
}

/// The router's state: the handlers' state and the body limits. No middleware layer: each
/// one costs a boxed future and a service clone per request.
#[derive(Clone)]
struct Served {
    app: Arc<AppState>,
    body: BodyLimits,
}

async fn validate(State(s): State<Served>, req: Request) -> Response {
    review(Endpoint::Validate, &s, req).await
}

async fn mutate(State(s): State<Served>, req: Request) -> Response {
    review(Endpoint::Mutate, &s, req).await
}

/// Reads the body within the limits and decides; the body's memory charge is held until the
/// answer is built.
async fn review(endpoint: Endpoint, s: &Served, req: Request) -> Response {
    match body::read(req.into_body(), &s.body).await {
        Ok((bytes, charge)) => {
            let resp = handle(endpoint, &s.app, &bytes);
            drop(charge);
            resp
        }
        Err(refusal) => {
            s.app.metrics.count_refused(refusal.reason());
            refusal.into_response()
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
