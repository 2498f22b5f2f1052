//! Shared server state and the HTTP entry point that routes every request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::Value;

use crate::admit::Admission;
use crate::faults::Faults;
use crate::machinery::ApiError;
use crate::registry::Registry;
use crate::route::{self, Route, Target};
use crate::store::Store;
use crate::wire::{self, negotiate::Format, negotiate::Output};

/// Everything a request handler needs.
pub struct Api {
    pub store: Arc<Store>,
    pub registry: RwLock<Registry>,
    pub faults: Faults,
    pub admission: Admission,
    /// Asked for every request (and by admission's CEL `authorizer`): RBAC over the store.
    pub authorizer: Arc<dyn crate::machinery::Authorizer>,
    /// Credentials (admin token, client CA, token signing key) and the RBAC index.
    pub auth: crate::auth::Auth,
    /// kube's audit log (Metadata level), when asked for.
    pub audit: crate::audit::AuditLog,
    pub bookmark_interval: Duration,
    pub server_address: String,
    /// The simulated cluster's kubelets, behind the node proxy (set once the cluster runs).
    pub kubelets: std::sync::OnceLock<volops_sandbox_cluster::Kubelets>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Api {
    pub fn registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }
    pub fn registry_mut(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Parsed request details the verbs need.
pub struct Req {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: HashMap<String, String>,
    pub body: Bytes,
    /// The authenticated (or impersonated) user the request acts as.
    pub user: crate::machinery::UserInfo,
}

impl Req {
    pub fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str).filter(|s| !s.is_empty())
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.q(k), Some("true" | "1"))
    }
    pub fn dry_run(&self) -> bool {
        self.q("dryRun") == Some("All")
    }
    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
    }
    pub fn wants_table(&self) -> bool {
        self.headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|a| a.contains("as=Table"))
    }
    /// The field manager (query, else the user agent's program name as kube does).
    pub fn field_manager(&self) -> String {
        if let Some(m) = self.q("fieldManager") {
            return m.to_string();
        }
        let ua = self
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown");
        ua.split('/').next().unwrap_or("unknown").to_string()
    }
    /// The body as a JSON object, read with the serializer its Content-Type names: JSON, YAML,
    /// or (for built-in kinds only) kube's protobuf envelope; anything else is 415.
    pub fn json_body(&self, info: &crate::registry::ResourceInfo) -> Result<Value, ApiError> {
        let ct = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let unknown = |e: &dyn std::fmt::Display| {
            ApiError::bad_request(&format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml: {e}"
            ))
        };
        match wire::negotiate::input(ct, !info.custom)? {
            Format::Yaml => serde_yaml::from_slice(&self.body).map_err(|e| unknown(&e)),
            Format::Json => serde_json::from_slice(&self.body).map_err(|e| unknown(&e)),
            Format::Protobuf => wire::decode_object(&self.body).map_err(|e| match e {
                wire::WireError::NotBuiltin { .. } => {
                    ApiError::bad_request(&format!("the object provided is unrecognized: {e}"))
                }
                wire::WireError::Malformed(m) => ApiError::bad_request(&m),
            }),
        }
    }
}

/// A JSON reply with optional warnings.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub warnings: Vec<String>,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Reply {
            status: StatusCode::OK,
            body,
            warnings: vec![],
        }
    }
}

impl Reply {
    /// The reply in the negotiated form (JSON, YAML or protobuf).
    pub fn into_response_as(self, output: Output) -> Response {
        let mut resp = encoded(self.status, &self.body, output.format);
        add_warnings(resp.headers_mut(), &self.warnings);
        resp
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body)).into_response();
        add_warnings(resp.headers_mut(), &self.warnings);
        resp
    }
}

/// `body` serialised as `format`; a body with no protobuf form (never a built-in kind) is a 500.
fn encoded(status: StatusCode, body: &Value, format: Format) -> Response {
    let (bytes, content_type) = match format {
        Format::Json => return (status, axum::Json(body)).into_response(),
        Format::Yaml => match serde_yaml::to_string(body) {
            Ok(text) => (text.into_bytes(), "application/yaml"),
            Err(e) => return error_response(&ApiError::internal(&e.to_string())),
        },
        Format::Protobuf => match wire::encode_object(body) {
            Ok(b) => (b, wire::PROTOBUF),
            Err(e) => return error_response(&ApiError::internal(&e.to_string())),
        },
    };
    let mut resp = (status, bytes).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A metav1.Status error in the negotiated form.
pub fn error_response_as(err: &ApiError, output: Output) -> Response {
    if output.format == Format::Json {
        return error_response(err);
    }
    let code = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut status = err.to_status_json();
    status["apiVersion"] = Value::String("v1".into());
    status["kind"] = Value::String("Status".into());
    encoded(code, &status, output.format)
}

/// Adds `Warning: 299 - "..."` headers, as kube-apiserver sends admission warnings.
pub fn add_warnings(headers: &mut HeaderMap, warnings: &[String]) {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            headers.append(header::WARNING, v);
        }
    }
}

/// A metav1.Status error reply (with Retry-After for 429).
pub fn error_response(err: &ApiError) -> Response {
    let code = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (code, axum::Json(err.to_status_json())).into_response();
    if err.code == 429 {
        let secs = err
            .details
            .as_ref()
            .and_then(|d| d["retryAfterSeconds"].as_u64())
            .unwrap_or(1);
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

/// The verb kube's authorizer would see for this request.
fn verb(method: &Method, t: &Target, watch: bool) -> &'static str {
    match (method.as_str(), t.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

/// Entry point for every non-admin request.
pub async fn handle(State(api): State<Arc<Api>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let query = axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return error_response(&ApiError::bad_request(&format!("reading body: {e}"))),
    };
    // Set by `auth::filter`, which authenticated, impersonated and authorized the request.
    let user = parts
        .extensions
        .get::<crate::auth::RequestUser>()
        .map_or_else(crate::auth::anonymous, |u| u.0.clone());
    let req = Req {
        method: parts.method,
        headers: parts.headers,
        query,
        body,
        user,
    };
    if let Some(resp) = crate::discovery::serve(&api, &path, &req) {
        return resp;
    }
    if let Some(resp) = crate::nodeproxy::serve(&api, &path, &req) {
        return resp;
    }
    let route = {
        let reg = api.registry();
        route::parse(&path, &reg)
    };
    let target = match route {
        Ok(Route::Resource(t)) => *t,
        Ok(Route::Discovery) => return crate::discovery::group_discovery(&api, &path),
        Ok(Route::NotFound) => return not_found_page(),
        Err(e) => return error_response(&e),
    };
    let watch = req.flag("watch");
    let verb = verb(&req.method, &target, watch);
    let latency = api.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(resp) = crate::auth::serve(&api, &target, &req) {
        return resp;
    }
    if let Some(err) = api.faults.roll(verb, &target.resource_path(), target.name_str()) {
        return error_response(&err);
    }
    // Negotiated in the handler, after authentication and authorization (as kube does).
    let accept = req.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let output = match wire::negotiate::output(accept, !target.info.custom, verb == "watch") {
        Ok(o) => o,
        Err(e) => return error_response(&e),
    };
    if let Some(result) = crate::binding::serve(&api, &target, &req) {
        return match result {
            Ok(reply) => reply.into_response_as(output),
            Err(e) => error_response_as(&e, output),
        };
    }
    let result = match verb {
        "get" => crate::ops::get(&api, &target, &req),
        "list" => crate::ops::list(&api, &target, &req),
        "watch" => return crate::watch::serve(api.clone(), target, &req, output.format),
        "create" => crate::ops::create(&api, &target, &req).await,
        "update" => crate::ops::update(&api, &target, &req).await,
        "patch" => crate::ops::patch(&api, &target, &req).await,
        "delete" => crate::ops::delete(&api, &target, &req).await,
        "deletecollection" => crate::ops::delete_collection(&api, &target, &req).await,
        _ => Err(ApiError::method_not_supported(
            &target.info.group_resource(),
            req.method.as_str(),
        )),
    };
    match result {
        Ok(reply) => {
            crate::auth::after_write(&api, &target, verb);
            reply.into_response_as(output)
        }
        Err(e) => error_response_as(&e, output),
    }
}

/// kube-apiserver's plain 404 for unknown paths.
pub fn not_found_page() -> Response {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the server could not find the requested resource", "reason": "NotFound",
        "details": {}, "code": 404
    });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// Body helper for streaming responses.
pub fn stream_response(body: Body, content_type: &'static str) -> Response {
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
