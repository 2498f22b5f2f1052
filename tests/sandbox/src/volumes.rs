//! The admin endpoint that fills volumes, for processes outside the test (the demo): the
//! simulated cluster's own control, not part of the Kubernetes API. Needs cluster-admin (the
//! admin kubeconfig), like `/sandbox/v1/faults`.
//!
//! - `GET /sandbox/v1/volumes/{namespace}/{claim}`: the volume's usage.
//! - `PUT /sandbox/v1/volumes/{namespace}/{claim}` with `{"used": "85%"}`, `{"used": "5Gi"}`,
//!   `{"usedBytes": 5368709120}` or `{"usedPercent": 85}`: fills it (capped at the capacity).
//!
//! Both answer `{"namespace", "persistentVolumeClaim", "volumeName", "capacityBytes",
//! "usedBytes", "availableBytes"}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use volops_sandbox_cluster::{Fill, VolumeError, VolumeUsage};

use crate::api::{Api, error_response};
use crate::machinery::ApiError;

/// The body of a fill.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FillRequest {
    /// `85%` or a quantity (`5Gi`).
    pub used: Option<String>,
    pub used_bytes: Option<u64>,
    pub used_percent: Option<f64>,
}

impl FillRequest {
    /// The fill it asks for: exactly one of the fields.
    pub fn fill(&self) -> Result<Fill, String> {
        match (&self.used, self.used_bytes, self.used_percent) {
            (Some(text), None, None) => text.parse(),
            (None, Some(bytes), None) => Ok(Fill::Bytes(bytes)),
            (None, None, Some(p)) if (0.0..=100.0).contains(&p) => Ok(Fill::Percent(p)),
            (None, None, Some(p)) => Err(format!("usedPercent {p} is not between 0 and 100")),
            _ => Err("give exactly one of used, usedBytes, usedPercent".into()),
        }
    }
}

fn volume_error(e: &VolumeError) -> ApiError {
    match e {
        VolumeError::ClaimNotFound { name, .. } => ApiError::not_found("persistentvolumeclaims", name),
        VolumeError::NotBound { name, .. } => {
            ApiError::conflict("persistentvolumeclaims", name, &e.to_string())
        }
        VolumeError::Api { .. } => ApiError::internal(&e.to_string()),
    }
}

fn no_cluster() -> Response {
    error_response(&ApiError::new(
        503,
        "ServiceUnavailable",
        "the simulated cluster is not running",
    ))
}

fn answer(result: Result<VolumeUsage, VolumeError>) -> Response {
    match result {
        Ok(usage) => axum::Json(usage).into_response(),
        Err(e) => error_response(&volume_error(&e)),
    }
}

pub async fn get_usage(State(api): State<Arc<Api>>, Path((ns, claim)): Path<(String, String)>) -> Response {
    let Some(kubelets) = api.kubelets.get() else {
        return no_cluster();
    };
    answer(kubelets.volume_usage(&ns, &claim).await)
}

pub async fn put_fill(
    State(api): State<Arc<Api>>,
    Path((ns, claim)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let Some(kubelets) = api.kubelets.get() else {
        return no_cluster();
    };
    let fill = serde_json::from_slice::<FillRequest>(&body)
        .map_err(|e| e.to_string())
        .and_then(|r| r.fill());
    match fill {
        Ok(fill) => answer(kubelets.fill_volume(&ns, &claim, fill).await),
        Err(e) => error_response(&ApiError::bad_request(&format!("invalid fill: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Fill, String> {
        serde_json::from_str::<FillRequest>(body)
            .map_err(|e| e.to_string())
            .and_then(|r| r.fill())
    }

    #[test]
    fn fills_read_from_every_form() {
        assert_eq!(parse(r#"{"used": "85%"}"#), Ok(Fill::Percent(85.0)));
        assert_eq!(parse(r#"{"used": "1Ki"}"#), Ok(Fill::Bytes(1024)));
        assert_eq!(parse(r#"{"usedBytes": 7}"#), Ok(Fill::Bytes(7)));
        assert_eq!(parse(r#"{"usedPercent": 99.5}"#), Ok(Fill::Percent(99.5)));
        assert!(parse(r#"{"usedPercent": 101}"#).is_err());
        assert!(parse(r#"{"usedBytes": 7, "used": "1%"}"#).is_err());
        assert!(parse(r#"{}"#).is_err());
        assert!(parse(r#"{"size": 1}"#).is_err());
    }
}
