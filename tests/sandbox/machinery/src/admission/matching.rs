//! Which webhooks a request goes to: `rules` (with `matchPolicy`), `namespaceSelector` and
//! `objectSelector`, as kube-apiserver's webhook matchers decide.

use serde_json::{Map, Value};

use super::selector::matches;
use super::{AdmissionAttributes, ObjectLookup};
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
    let scope = rule.get("scope").and_then(Value::as_str).unwrap_or("*");
    let scope_ok = match scope {
        "Cluster" => attrs.namespace.is_none(),
        "Namespaced" => attrs.namespace.is_some(),
        _ => true,
    };
    resource_ok && scope_ok
}

fn labels(obj: Option<&Value>) -> Option<&Map<String, Value>> {
    obj?.pointer("/metadata/labels")?.as_object()
}

/// Whether `hook` (one entry of `webhooks`) is called for this request.
pub(crate) fn webhook_matches(
    hook: &Value,
    attrs: &AdmissionAttributes,
    lookup: &dyn ObjectLookup,
) -> Result<bool, ApiError> {
    let equivalent = hook.get("matchPolicy").and_then(Value::as_str) != Some("Exact");
    let rules = hook
        .get("rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !rules.iter().any(|r| rule_matches(r, attrs, equivalent)) {
        return Ok(false);
    }
    let bad = |e: String| ApiError::internal(&e);
    let ns_sel = hook.get("namespaceSelector");
    let ns_ok = if attrs.group.is_empty() && attrs.resource == "namespaces" {
        // A Namespace is matched by its own labels.
        matches(
            ns_sel,
            labels(attrs.object.as_ref().or(attrs.old_object.as_ref())),
        )
        .map_err(bad)?
    } else if let Some(ns) = &attrs.namespace {
        let ns_obj = lookup.get("", "namespaces", None, ns);
        matches(ns_sel, labels(ns_obj.as_ref())).map_err(bad)?
    } else {
        true // cluster-scoped objects are never skipped by a namespaceSelector
    };
    if !ns_ok {
        return Ok(false);
    }
    let obj_sel = hook.get("objectSelector");
    let is_empty = obj_sel.is_none_or(|s| s.as_object().is_none_or(Map::is_empty));
    if is_empty {
        return Ok(true);
    }
    let new_ok = attrs.object.is_some() && matches(obj_sel, labels(attrs.object.as_ref())).map_err(bad)?;
    let old_ok =
        attrs.old_object.is_some() && matches(obj_sel, labels(attrs.old_object.as_ref())).map_err(bad)?;
    Ok(new_ok || old_ok)
}
