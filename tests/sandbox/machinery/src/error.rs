//! `metav1.Status` errors built exactly like k8s.io/apimachinery/pkg/api/errors does.

use serde_json::{Map, Value, json};

/// An API error that the server returns as a `metav1.Status` body with `code` as HTTP status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<Value>,
}

/// One `metav1.StatusCause` of an `Invalid` error (a `field.Error` of kube).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldCause {
    /// `FieldValueRequired`, `FieldValueNotSupported`, `FieldValueInvalid`, ...
    pub reason: String,
    /// The error body, e.g. `Required value` or `Unsupported value: "x": supported values: "a"`.
    pub message: String,
    /// The field path, e.g. `spec.mode`.
    pub field: String,
}

impl FieldCause {
    fn new(reason: &str, field: &str, message: String) -> Self {
        Self {
            reason: reason.to_string(),
            message,
            field: field.to_string(),
        }
    }

    /// `field.Required`.
    pub fn required(field: &str, detail: &str) -> Self {
        Self::new("FieldValueRequired", field, with_detail("Required value", detail))
    }

    /// `field.Forbidden`.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self::new("FieldValueForbidden", field, with_detail("Forbidden", detail))
    }

    /// `field.Invalid`: `Invalid value: <go value>: detail`.
    pub fn invalid(field: &str, value: &Value, detail: &str) -> Self {
        let body = format!("Invalid value: {}", go_value(value));
        Self::new("FieldValueInvalid", field, with_detail(&body, detail))
    }

    /// `field.TooLong` (kube 1.32 wording).
    pub fn too_long(field: &str, max_bytes: usize) -> Self {
        Self::new(
            "FieldValueTooLong",
            field,
            format!("Too long: must have at most {max_bytes} bytes"),
        )
    }

    /// `field.TypeInvalid` (same text as Invalid, other cause type).
    pub fn type_invalid(field: &str, value: &Value, detail: &str) -> Self {
        let body = format!("Invalid value: {}", go_value(value));
        Self::new("FieldValueTypeInvalid", field, with_detail(&body, detail))
    }

    /// `field.NotSupported`: `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(field: &str, value: &Value, supported: &[String]) -> Self {
        let mut body = format!("Unsupported value: {}", go_value(value));
        if !supported.is_empty() {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            body.push_str(&format!(": supported values: {}", quoted.join(", ")));
        }
        Self::new("FieldValueNotSupported", field, body)
    }

    /// `field.Error.Error()`: `field: body`.
    pub fn error_string(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

fn with_detail(body: &str, detail: &str) -> String {
    if detail.is_empty() {
        body.to_string()
    } else {
        format!("{body}: {detail}")
    }
}

/// Go's `%q` for a string (JSON quoting is the same for the characters we meet).
pub(crate) fn go_quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// How `field.Error` prints a bad value: strings quoted, numbers/bools plain, null as "null".
pub(crate) fn go_value(v: &Value) -> String {
    match v {
        Value::Null => go_quote("null"),
        Value::String(s) => go_quote(s),
        Value::Number(_) | Value::Bool(_) => v.to_string(),
        other => other.to_string(),
    }
}

/// Splits `resource.group` (e.g. `statefulsets.apps`) into (group, resource).
fn split_group_resource(gr: &str) -> (&str, &str) {
    match gr.split_once('.') {
        Some((resource, group)) => (group, resource),
        None => ("", gr),
    }
}

fn details(group: &str, kind: &str, name: &str) -> Value {
    let mut m = Map::new();
    if !name.is_empty() {
        m.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        m.insert("group".into(), json!(group));
    }
    if !kind.is_empty() {
        m.insert("kind".into(), json!(kind));
    }
    Value::Object(m)
}

impl ApiError {
    /// Any status; `reason` is a `metav1.StatusReason`.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The `metav1.Status` JSON body.
    pub fn to_status_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), json!("Status"));
        m.insert("apiVersion".into(), json!("v1"));
        m.insert("metadata".into(), json!({}));
        m.insert("status".into(), json!("Failure"));
        // metav1.Status omits empty message and reason (a webhook denial may carry no reason).
        if !self.message.is_empty() {
            m.insert("message".into(), json!(self.message));
        }
        if !self.reason.is_empty() {
            m.insert("reason".into(), json!(self.reason));
        }
        if let Some(d) = &self.details {
            m.insert("details".into(), d.clone());
        }
        m.insert("code".into(), json!(self.code));
        Value::Object(m)
    }

    /// 404 `widgets.example.com "x" not found`.
    pub fn not_found(group_resource: &str, name: &str) -> Self {
        let (group, resource) = split_group_resource(group_resource);
        Self::new(
            404,
            "NotFound",
            format!("{group_resource} {} not found", go_quote(name)),
        )
        .with_details(details(group, resource, name))
    }

    /// 409 AlreadyExists.
    pub fn already_exists(group_resource: &str, name: &str) -> Self {
        let (group, resource) = split_group_resource(group_resource);
        Self::new(
            409,
            "AlreadyExists",
            format!("{group_resource} {} already exists", go_quote(name)),
        )
        .with_details(details(group, resource, name))
    }

    /// 409 Conflict: `Operation cannot be fulfilled on statefulsets.apps "x": msg`.
    pub fn conflict(group_resource: &str, name: &str, msg: &str) -> Self {
        let (group, resource) = split_group_resource(group_resource);
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {group_resource} {}: {msg}",
                go_quote(name)
            ),
        )
        .with_details(details(group, resource, name))
    }

    /// The usual optimistic-concurrency message for [`ApiError::conflict`].
    pub const MODIFIED: &'static str =
        "the object has been modified; please apply your changes to the latest version and try again";

    /// 422 Invalid, message and causes exactly like `errors.NewInvalid`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<FieldCause>) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        // utilerrors.Aggregate drops duplicate messages and brackets more than one.
        let mut msgs: Vec<String> = Vec::new();
        for c in &causes {
            let s = c.error_string();
            if !msgs.contains(&s) {
                msgs.push(s);
            }
        }
        let message = match msgs.len() {
            0 => format!("{qualified} {} is invalid", go_quote(name)),
            1 => format!("{qualified} {} is invalid: {}", go_quote(name), msgs[0]),
            _ => format!("{qualified} {} is invalid: [{}]", go_quote(name), msgs.join(", ")),
        };
        let mut d = details(group, kind, name);
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        if let Value::Object(m) = &mut d {
            m.insert("causes".into(), Value::Array(causes));
        }
        Self::new(422, "Invalid", message).with_details(d)
    }

    /// 403 `persistentvolumeclaims "x" is forbidden: msg`.
    pub fn forbidden(group_resource: &str, name: &str, msg: &str) -> Self {
        let (group, resource) = split_group_resource(group_resource);
        let message = if group_resource.is_empty() {
            format!("forbidden: {msg}")
        } else if name.is_empty() {
            format!("{group_resource} is forbidden: {msg}")
        } else {
            format!("{group_resource} {} is forbidden: {msg}", go_quote(name))
        };
        Self::new(403, "Forbidden", message).with_details(details(group, resource, name))
    }

    /// 400 BadRequest.
    pub fn bad_request(msg: &str) -> Self {
        Self::new(400, "BadRequest", msg)
    }

    /// 410 Expired (a watch or continue token older than the kept history).
    pub fn gone(msg: &str) -> Self {
        Self::new(410, "Expired", msg)
    }

    /// 500 `Internal error occurred: msg`.
    pub fn internal(msg: &str) -> Self {
        Self::new(500, "InternalError", format!("Internal error occurred: {msg}"))
            .with_details(json!({"causes": [{"message": msg}]}))
    }

    /// 429 TooManyRequests with `details.retryAfterSeconds`.
    pub fn too_many_requests(msg: &str, retry_after_secs: u32) -> Self {
        Self::new(429, "TooManyRequests", msg).with_details(json!({"retryAfterSeconds": retry_after_secs}))
    }

    /// 405 `action is not supported on resources of kind "pods"`.
    pub fn method_not_supported(group_resource: &str, action: &str) -> Self {
        let (group, resource) = split_group_resource(group_resource);
        Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "{action} is not supported on resources of kind {}",
                go_quote(group_resource)
            ),
        )
        .with_details(details(group, resource, ""))
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(msg: &str) -> Self {
        Self::new(415, "UnsupportedMediaType", msg)
    }

    /// 422 Invalid without causes (e.g. a JSON patch that cannot be applied).
    pub fn unprocessable(msg: &str) -> Self {
        Self::new(422, "Invalid", msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_has_kube_text_and_details() {
        let e = ApiError::not_found("widgets.example.com", "x");
        assert_eq!(e.message, r#"widgets.example.com "x" not found"#);
        let s = e.to_status_json();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["kind"], "Status");
        assert_eq!(
            s["details"],
            json!({"name":"x","group":"example.com","kind":"widgets"})
        );
        let core = ApiError::not_found("pods", "p");
        assert_eq!(core.details, Some(json!({"name":"p","kind":"pods"})));
    }

    #[test]
    fn conflict_and_forbidden_text() {
        let e = ApiError::conflict("statefulsets.apps", "x", ApiError::MODIFIED);
        assert_eq!(
            e.message,
            "Operation cannot be fulfilled on statefulsets.apps \"x\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
        let f = ApiError::forbidden("persistentvolumeclaims", "x", "no");
        assert_eq!(f.message, "persistentvolumeclaims \"x\" is forbidden: no");
        assert_eq!(f.code, 403);
    }

    #[test]
    fn invalid_single_and_many_causes() {
        let one = ApiError::invalid(
            "Widget",
            "example.com",
            "w",
            vec![FieldCause::required("spec.size", "")],
        );
        assert_eq!(
            one.message,
            r#"Widget.example.com "w" is invalid: spec.size: Required value"#
        );
        let many = ApiError::invalid(
            "PersistentVolumeClaim",
            "",
            "p",
            vec![
                FieldCause::required("spec.a", ""),
                FieldCause::not_supported("spec.mode", &json!("x"), &["a".to_string(), "b".to_string()]),
                FieldCause::required("spec.a", ""),
            ],
        );
        assert_eq!(
            many.message,
            r#"PersistentVolumeClaim "p" is invalid: [spec.a: Required value, spec.mode: Unsupported value: "x": supported values: "a", "b"]"#
        );
        let d = many.details.unwrap_or_default();
        assert_eq!(d["causes"].as_array().map(Vec::len), Some(3));
        assert_eq!(d["causes"][1]["reason"], "FieldValueNotSupported");
        assert_eq!(d["kind"], "PersistentVolumeClaim");
        assert!(d.get("group").is_none());
    }

    #[test]
    fn invalid_value_formats_like_go() {
        let c = FieldCause::invalid("spec.n", &json!(0), "must be positive");
        assert_eq!(c.error_string(), "spec.n: Invalid value: 0: must be positive");
        let c = FieldCause::invalid("spec.s", &json!("a\"b"), "");
        assert_eq!(c.error_string(), r#"spec.s: Invalid value: "a\"b""#);
    }

    #[test]
    fn other_constructors() {
        assert_eq!(ApiError::gone("too old").code, 410);
        assert_eq!(ApiError::gone("too old").reason, "Expired");
        let i = ApiError::internal("boom");
        assert_eq!(i.message, "Internal error occurred: boom");
        let t = ApiError::too_many_requests("slow down", 3);
        assert_eq!(t.to_status_json()["details"]["retryAfterSeconds"], 3);
        let m = ApiError::method_not_supported("pods", "watch");
        assert_eq!(m.message, r#"watch is not supported on resources of kind "pods""#);
        assert_eq!(ApiError::already_exists("pods", "a").reason, "AlreadyExists");
        assert_eq!(ApiError::bad_request("x").code, 400);
    }
}
