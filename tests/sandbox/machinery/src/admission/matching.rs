//! Which webhooks a request goes to, in kube-apiserver's order (`ShouldCallHook`):
//! `namespaceSelector` and `objectSelector`, then `rules` (with `matchPolicy` and `scope`),
//! then the selectors' errors, then `matchConditions`.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::match_conditions;
use super::selector::matches;
use super::{AdmissionAttributes, ObjectLookup};
use crate::authz::Authorizer;
use crate::error::ApiError;

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|x| x == "*" || x == value)
}

fn is_namespace(attrs: &AdmissionAttributes) -> bool {
    attrs.group.is_empty() && attrs.resource == "namespaces"
}

fn rule_matches(rule: &Value, attrs: &AdmissionAttributes, equivalent: bool) -> bool {
    if !has(&strings(rule, "operations"), attrs.operation.as_str())
        || !has(&strings(rule, "apiGroups"), &attrs.group)
    {
        return false;
    }
    // Under Equivalent the request is converted to a version the hook names; the sandbox
    // serves one version per resource, so another version of the same resource matches.
    if !equivalent && !has(&strings(rule, "apiVersions"), &attrs.version) {
        return false;
    }
    let resource_ok = strings(rule, "resources").iter().any(|r| {
        let (res, sub) = r.split_once('/').unwrap_or((r.as_str(), ""));
        (res == "*" || res == attrs.resource) && (sub == "*" || sub == attrs.subresource)
    });
    // A Namespace object is cluster-scoped although its requests carry its name as namespace.
    let scope_ok = match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Cluster" => is_namespace(attrs) || attrs.namespace.is_none(),
        "Namespaced" => !is_namespace(attrs) && attrs.namespace.is_some(),
        "*" => true,
        _ => false,
    };
    resource_ok && scope_ok
}

fn labels(obj: Option<&Value>) -> Option<&Map<String, Value>> {
    obj?.pointer("/metadata/labels")?.as_object()
}

fn is_empty_selector(sel: Option<&Value>) -> bool {
    sel.is_none_or(|s| s.is_null() || s.as_object().is_some_and(Map::is_empty))
}

/// `MatchNamespaceSelector`.
fn namespace_matches(
    hook: &Value,
    attrs: &AdmissionAttributes,
    lookup: &dyn ObjectLookup,
) -> Result<bool, ApiError> {
    let bad = |e: String| ApiError::internal(&e);
    let sel = hook.get("namespaceSelector");
    if !is_namespace(attrs) && attrs.namespace.is_none() {
        return Ok(true); // cluster-scoped objects are never exempted
    }
    if is_empty_selector(sel) {
        return Ok(true);
    }
    if is_namespace(attrs) && attrs.object.is_some() {
        // CREATE/UPDATE of a Namespace: its new labels (the store has the old ones).
        return matches(sel, labels(attrs.object.as_ref())).map_err(bad);
    }
    let name = attrs.namespace.as_deref().unwrap_or(&attrs.name);
    let Some(ns) = lookup.get("", "namespaces", None, name) else {
        return Err(ApiError::not_found("namespaces", name));
    };
    matches(sel, labels(Some(&ns))).map_err(bad)
}

/// `MatchObjectSelector`: the new or the old object.
fn object_matches(hook: &Value, attrs: &AdmissionAttributes) -> Result<bool, ApiError> {
    let sel = hook.get("objectSelector");
    if is_empty_selector(sel) {
        return Ok(true);
    }
    let bad = |e: String| ApiError::internal(&e);
    let one = |o: Option<&Value>| -> Result<bool, ApiError> {
        match o {
            Some(o) => matches(sel, labels(Some(o))).map_err(bad),
            None => Ok(false),
        }
    };
    Ok(one(attrs.object.as_ref())? || one(attrs.old_object.as_ref())?)
}

/// Whether `hook` (one entry of `webhooks`) is called for this request; an error rejects it.
pub(crate) fn should_call(
    hook: &Value,
    attrs: &AdmissionAttributes,
    lookup: &dyn ObjectLookup,
    authorizer: &Arc<dyn Authorizer>,
) -> Result<bool, ApiError> {
    let ns = namespace_matches(hook, attrs, lookup);
    if matches!(ns, Ok(false)) {
        return Ok(false);
    }
    let obj = object_matches(hook, attrs);
    if matches!(obj, Ok(false)) {
        return Ok(false);
    }
    let equivalent = hook.get("matchPolicy").and_then(Value::as_str) != Some("Exact");
    let rules = hook
        .get("rules")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if !rules.iter().any(|r| rule_matches(r, attrs, equivalent)) {
        return Ok(false);
    }
    ns?;
    obj?;
    match_conditions::matches(hook, attrs, authorizer)
}
