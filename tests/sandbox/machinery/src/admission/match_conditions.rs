//! A webhook's `matchConditions`, as kube-apiserver's matcher evaluates them after rules and
//! selectors: all true calls the hook, any false skips it, and evaluation errors (with none
//! false) follow `failurePolicy` - Fail rejects the request with a Forbidden, Ignore skips.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::AdmissionAttributes;
use crate::authz::Authorizer;
use crate::cel::{self, Activation, RequestResource};
use crate::error::ApiError;

/// The AdmissionRequest as CEL's `request` sees it (kube's `CreateAdmissionRequest`, converted
/// to unstructured: no uid, object or oldObject; empty optional fields left out).
pub(crate) fn cel_request(attrs: &AdmissionAttributes) -> Value {
    let kind = json!({"group": attrs.group, "version": attrs.version, "kind": attrs.kind});
    let resource = json!({"group": attrs.group, "version": attrs.version, "resource": attrs.resource});
    let mut r = Map::new();
    r.insert("kind".into(), kind.clone());
    r.insert("resource".into(), resource.clone());
    r.insert("requestKind".into(), kind);
    r.insert("requestResource".into(), resource);
    let optional = [
        ("subResource", attrs.subresource.as_str()),
        ("requestSubResource", attrs.subresource.as_str()),
        ("name", attrs.name.as_str()),
        ("namespace", attrs.namespace.as_deref().unwrap_or("")),
    ];
    for (k, v) in optional {
        if !v.is_empty() {
            r.insert(k.into(), json!(v));
        }
    }
    r.insert("operation".into(), json!(attrs.operation.as_str()));
    let u = &attrs.user;
    let mut user = Map::new();
    if !u.username.is_empty() {
        user.insert("username".into(), json!(u.username));
    }
    if !u.uid.is_empty() {
        user.insert("uid".into(), json!(u.uid));
    }
    if !u.groups.is_empty() {
        user.insert("groups".into(), json!(u.groups));
    }
    if let Some(extra) = u
        .extra
        .as_ref()
        .filter(|e| e.as_object().is_some_and(|m| !m.is_empty()))
    {
        user.insert("extra".into(), extra.clone());
    }
    r.insert("userInfo".into(), Value::Object(user));
    r.insert("dryRun".into(), json!(attrs.dry_run));
    if let Some(o) = &attrs.options {
        r.insert("options".into(), o.clone());
    }
    Value::Object(r)
}

/// `matcher.Match`, then `ShouldCallHook`'s handling of its error.
pub(crate) fn matches(
    hook: &Value,
    attrs: &AdmissionAttributes,
    authorizer: &Arc<dyn Authorizer>,
) -> Result<bool, ApiError> {
    let conditions = hook
        .get("matchConditions")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if conditions.is_empty() {
        return Ok(true);
    }
    let rr = RequestResource {
        group: &attrs.group,
        resource: &attrs.resource,
        subresource: &attrs.subresource,
        namespace: attrs.namespace.as_deref().unwrap_or(""),
        name: &attrs.name,
    };
    let act = Activation::new(
        attrs.object.as_ref(),
        attrs.old_object.as_ref(),
        &cel_request(attrs),
    )
    .with_authorizer(authorizer.clone(), &attrs.user, &rr);
    let mut errors = Vec::new();
    for condition in conditions {
        let expr = condition
            .get("expression")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let result = cel::compile_match_condition(expr)
            .map_err(|e| format!("compilation error: {e}"))
            .and_then(|p| p.evaluate(&act));
        match result {
            // Any false skips the hook, whatever errors other conditions had.
            Ok(false) => return Ok(false),
            Ok(true) => {}
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        return Ok(true);
    }
    let name = hook.get("name").and_then(Value::as_str).unwrap_or_default();
    if hook.get("failurePolicy").and_then(Value::as_str) == Some("Ignore") {
        tracing::warn!(
            webhook = name,
            "match conditions failed to evaluate; ignored: {errors:?}"
        );
        return Ok(false);
    }
    // utilerrors.NewAggregate: one error as is, more in brackets.
    let message = match errors.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    Err(ApiError::forbidden(
        &attrs.group_resource(),
        &attrs.name,
        &message,
    ))
}
