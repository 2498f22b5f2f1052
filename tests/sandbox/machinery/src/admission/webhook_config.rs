//! Mutating/ValidatingWebhookConfiguration on write, as kube-apiserver's registry does it:
//! the v1 defaults (`SetDefaults_*Webhook`), then validation
//! (pkg/apis/admissionregistration/validation) with kube's field paths and messages, and the
//! relaxations an update gets for what the stored object already had.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::error::{FieldCause, go_quote};
use crate::objectmeta::{label_value_errors, qualified_name_errors, subdomain_errors};

const ACCEPTED_REVIEW_VERSIONS: [&str; 2] = ["v1", "v1beta1"];
const NO_SIDE_EFFECTS: [&str; 2] = ["None", "NoneOnDryRun"];
const ALL_SIDE_EFFECTS: [&str; 4] = ["None", "NoneOnDryRun", "Some", "Unknown"];
const MAX_MATCH_CONDITIONS: usize = 64;

/// Applies admissionregistration/v1 defaults to a configuration's webhooks.
pub fn default_webhook_configuration(obj: &mut Value, mutating: bool) {
    let Some(hooks) = obj.get_mut("webhooks").and_then(Value::as_array_mut) else {
        return;
    };
    for hook in hooks.iter_mut().filter_map(Value::as_object_mut) {
        let mut defaults = vec![
            ("failurePolicy", json!("Fail")),
            ("matchPolicy", json!("Equivalent")),
            ("namespaceSelector", json!({})),
            ("objectSelector", json!({})),
            ("timeoutSeconds", json!(10)),
        ];
        if mutating {
            defaults.push(("reinvocationPolicy", json!("Never")));
        }
        for (k, v) in defaults {
            if hook.get(k).is_none_or(Value::is_null) {
                hook.insert(k.into(), v);
            }
        }
        for rule in hook
            .get_mut("rules")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            if rule.get("scope").is_none_or(Value::is_null) {
                rule.insert("scope".into(), json!("*"));
            }
        }
        if let Some(svc) = hook
            .get_mut("clientConfig")
            .and_then(|c| c.get_mut("service"))
            .and_then(Value::as_object_mut)
            && svc.get("port").is_none_or(Value::is_null)
        {
            svc.insert("port".into(), json!(443));
        }
    }
}

/// What an update may keep from the stored object although a create would refuse it.
struct Options {
    check_match_conditions: bool,
    require_no_side_effects: bool,
    require_recognized_review_version: bool,
    require_unique_names: bool,
    allow_invalid_label_values: bool,
}

fn hooks(obj: &Value) -> &[Value] {
    obj.get("webhooks")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn options(old: Option<&Value>) -> Options {
    let Some(old) = old else {
        return Options {
            check_match_conditions: true,
            require_no_side_effects: true,
            require_recognized_review_version: true,
            require_unique_names: true,
            allow_invalid_label_values: false,
        };
    };
    let old_hooks = hooks(old);
    let mut names = HashSet::new();
    Options {
        // Set per update by `validate_webhook_configuration` (it needs the new object).
        check_match_conditions: true,
        require_no_side_effects: old_hooks
            .iter()
            .all(|h| s(h, "sideEffects").is_some_and(|e| NO_SIDE_EFFECTS.contains(&e))),
        require_recognized_review_version: old_hooks.iter().all(|h| {
            let v = strings(h, "admissionReviewVersions");
            v.is_empty() || v.iter().any(|x| ACCEPTED_REVIEW_VERSIONS.contains(&x.as_str()))
        }),
        require_unique_names: old_hooks
            .iter()
            .all(|h| names.insert(s(h, "name").unwrap_or_default())),
        allow_invalid_label_values: old_hooks.iter().any(|h| {
            ["namespaceSelector", "objectSelector"].iter().any(|k| {
                h.get(*k)
                    .is_some_and(|sel| !selector_errors(sel, "", false).is_empty())
            })
        }),
    }
}

/// The causes kube-apiserver reports for a webhook configuration (none: valid). `old` is the
/// stored object on update.
pub fn validate_webhook_configuration(new: &Value, old: Option<&Value>, mutating: bool) -> Vec<FieldCause> {
    let mut opts = options(old);
    if let Some(old) = old {
        let (n, o) = (hooks(new), hooks(old));
        opts.check_match_conditions = n.len() != o.len()
            || n.iter()
                .zip(o)
                .any(|(a, b)| a.get("matchConditions") != b.get("matchConditions"));
    }
    let mut errs = Vec::new();
    let name = new
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    for msg in subdomain_errors(name) {
        errs.push(FieldCause::invalid("metadata.name", &json!(name), &msg));
    }
    let mut seen = HashSet::new();
    for (i, hook) in hooks(new).iter().enumerate() {
        let path = format!("webhooks[{i}]");
        errs.extend(webhook_errors(hook, &path, mutating, &opts));
        errs.extend(review_version_errors(hook, &path, &opts));
        let hook_name = s(hook, "name").unwrap_or_default();
        if opts.require_unique_names && !hook_name.is_empty() && !seen.insert(hook_name) {
            errs.push(duplicate(&format!("{path}.name"), hook_name));
        }
    }
    errs
}

fn duplicate(field: &str, value: &str) -> FieldCause {
    FieldCause {
        reason: "FieldValueDuplicate".into(),
        message: format!("Duplicate value: {}", go_quote(value)),
        field: field.into(),
    }
}

/// `field.Invalid` whose bad value Go prints with `%#v` (slices).
fn invalid_slice(field: &str, go_type: &str, items: &[String], detail: &str) -> FieldCause {
    let quoted: Vec<String> = items.iter().map(|x| go_quote(x)).collect();
    FieldCause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: []{go_type}{{{}}}: {detail}", quoted.join(", ")),
        field: field.into(),
    }
}

fn not_supported(field: &str, value: &Value, supported: &[&str]) -> FieldCause {
    let supported: Vec<String> = supported.iter().map(|x| x.to_string()).collect();
    FieldCause::not_supported(field, value, &supported)
}

fn enum_field(hook: &Value, key: &str, path: &str, supported: &[&str]) -> Option<FieldCause> {
    let v = hook.get(key).filter(|v| !v.is_null())?;
    let ok = v.as_str().is_some_and(|x| supported.contains(&x));
    (!ok).then(|| not_supported(&format!("{path}.{key}"), v, supported))
}

fn webhook_errors(hook: &Value, path: &str, mutating: bool, opts: &Options) -> Vec<FieldCause> {
    let mut errs = Vec::new();
    errs.extend(fully_qualified_name(
        &format!("{path}.name"),
        s(hook, "name").unwrap_or_default(),
    ));
    for (i, rule) in hook
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        errs.extend(rule_errors(rule, &format!("{path}.rules[{i}]")));
    }
    errs.extend(enum_field(hook, "failurePolicy", path, &["Fail", "Ignore"]));
    errs.extend(enum_field(hook, "matchPolicy", path, &["Equivalent", "Exact"]));
    let allowed: &[&str] = if opts.require_no_side_effects {
        &NO_SIDE_EFFECTS
    } else {
        &ALL_SIDE_EFFECTS
    };
    match hook.get("sideEffects").filter(|v| !v.is_null()) {
        None => errs.push(FieldCause::required(
            &format!("{path}.sideEffects"),
            &format!("must specify one of {}", allowed.join(", ")),
        )),
        Some(_) => errs.extend(enum_field(hook, "sideEffects", path, allowed)),
    }
    if let Some(t) = hook.get("timeoutSeconds").and_then(Value::as_i64)
        && !(1..=30).contains(&t)
    {
        errs.push(FieldCause::invalid(
            &format!("{path}.timeoutSeconds"),
            &json!(t),
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    for key in ["namespaceSelector", "objectSelector"] {
        if let Some(sel) = hook.get(key).filter(|v| !v.is_null()) {
            errs.extend(selector_errors(
                sel,
                &format!("{path}.{key}"),
                opts.allow_invalid_label_values,
            ));
        }
    }
    if mutating {
        errs.extend(enum_field(
            hook,
            "reinvocationPolicy",
            path,
            &["IfNeeded", "Never"],
        ));
    }
    errs.extend(client_config_errors(
        hook.get("clientConfig"),
        &format!("{path}.clientConfig"),
    ));
    if opts.check_match_conditions {
        errs.extend(match_condition_errors(
            hook.get("matchConditions"),
            &format!("{path}.matchConditions"),
        ));
    }
    errs
}

/// `IsFullyQualifiedName`.
fn fully_qualified_name(field: &str, name: &str) -> Vec<FieldCause> {
    if name.is_empty() {
        return vec![FieldCause::required(field, "")];
    }
    let errs = subdomain_errors(name);
    if !errs.is_empty() {
        return vec![FieldCause::invalid(field, &json!(name), &errs.join(","))];
    }
    if name.split('.').count() < 3 {
        return vec![FieldCause::invalid(
            field,
            &json!(name),
            "should be a domain with at least three segments separated by dots",
        )];
    }
    Vec::new()
}

fn rule_errors(rule: &Value, path: &str) -> Vec<FieldCause> {
    let mut errs = Vec::new();
    let ops = strings(rule, "operations");
    let ops_path = format!("{path}.operations");
    if ops.is_empty() {
        errs.push(FieldCause::required(&ops_path, ""));
    }
    if ops.len() > 1 && ops.iter().any(|o| o == "*") {
        errs.push(invalid_slice(
            &ops_path,
            "admissionregistration.OperationType",
            &ops,
            "if '*' is present, must not specify other operations",
        ));
    }
    let supported = ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
    for (i, op) in ops.iter().enumerate() {
        if !supported.contains(&op.as_str()) {
            errs.push(not_supported(&format!("{ops_path}[{i}]"), &json!(op), &supported));
        }
    }
    for (key, what) in [("apiGroups", "API groups"), ("apiVersions", "API versions")] {
        let list = strings(rule, key);
        let field = format!("{path}.{key}");
        if list.is_empty() {
            errs.push(FieldCause::required(&field, ""));
        }
        if list.len() > 1 && list.iter().any(|x| x == "*") {
            errs.push(invalid_slice(
                &field,
                "string",
                &list,
                &format!("if '*' is present, must not specify other {what}"),
            ));
        }
        if key == "apiVersions" {
            for (i, v) in list.iter().enumerate() {
                if v.is_empty() {
                    errs.push(FieldCause::required(&format!("{field}[{i}]"), ""));
                }
            }
        }
    }
    errs.extend(resource_errors(
        &strings(rule, "resources"),
        &format!("{path}.resources"),
    ));
    if let Some(scope) = rule.get("scope").filter(|v| !v.is_null())
        && !scope
            .as_str()
            .is_some_and(|x| ["*", "Cluster", "Namespaced"].contains(&x))
    {
        errs.push(not_supported(
            &format!("{path}.scope"),
            scope,
            &["*", "Cluster", "Namespaced"],
        ));
    }
    errs
}

/// `validateResources` (subresources allowed).
fn resource_errors(resources: &[String], field: &str) -> Vec<FieldCause> {
    let mut errs = Vec::new();
    if resources.is_empty() {
        errs.push(FieldCause::required(field, ""));
    }
    let mut wildcard_sub: HashSet<&str> = HashSet::new();
    let mut wildcard_res: HashSet<&str> = HashSet::new();
    let (mut double, mut single, mut plain) = (false, false, false);
    for (i, rs) in resources.iter().enumerate() {
        let item = format!("{field}[{i}]");
        if rs.is_empty() {
            errs.push(FieldCause::required(&item, ""));
            continue;
        }
        double |= rs == "*/*";
        single |= rs == "*";
        let Some((res, sub)) = rs.split_once('/') else {
            plain = rs != "*";
            continue;
        };
        if wildcard_sub.contains(res) {
            errs.push(FieldCause::invalid(
                &item,
                &json!(rs),
                &format!("if '{res}/*' is present, must not specify {rs}"),
            ));
        }
        if wildcard_res.contains(sub) {
            errs.push(FieldCause::invalid(
                &item,
                &json!(rs),
                &format!("if '*/{sub}' is present, must not specify {rs}"),
            ));
        }
        if sub == "*" {
            wildcard_sub.insert(res);
        }
        if res == "*" {
            wildcard_res.insert(sub);
        }
    }
    if resources.len() > 1 && double {
        errs.push(invalid_slice(
            field,
            "string",
            resources,
            "if '*/*' is present, must not specify other resources",
        ));
    }
    if single && plain {
        errs.push(invalid_slice(
            field,
            "string",
            resources,
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
    errs
}

/// `metav1validation.ValidateLabelSelector`.
fn selector_errors(sel: &Value, path: &str, allow_invalid_values: bool) -> Vec<FieldCause> {
    let mut errs = Vec::new();
    let labels_path = format!("{path}.matchLabels");
    for (k, v) in sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .unwrap_or(&Map::new())
    {
        for msg in qualified_name_errors(k) {
            errs.push(FieldCause::invalid(&labels_path, &json!(k), &msg));
        }
        let v = v.as_str().unwrap_or_default();
        for msg in label_value_errors(v) {
            errs.push(FieldCause::invalid(&labels_path, &json!(v), &msg));
        }
    }
    for (i, req) in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let p = format!("{path}.matchExpressions[{i}]");
        let values = strings(req, "values");
        match s(req, "operator").unwrap_or_default() {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldCause::required(
                &format!("{p}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldCause::forbidden(
                &format!("{p}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.push(FieldCause::invalid(
                &format!("{p}.operator"),
                &json!(other),
                "not a valid selector operator",
            )),
        }
        let key = s(req, "key").unwrap_or_default();
        for msg in qualified_name_errors(key) {
            errs.push(FieldCause::invalid(&format!("{p}.key"), &json!(key), &msg));
        }
        if !allow_invalid_values {
            for (j, v) in values.iter().enumerate() {
                for msg in label_value_errors(v) {
                    errs.push(FieldCause::invalid(&format!("{p}.values[{j}]"), &json!(v), &msg));
                }
            }
        }
    }
    errs
}

fn client_config_errors(cc: Option<&Value>, path: &str) -> Vec<FieldCause> {
    let empty = json!({});
    let cc = cc.unwrap_or(&empty);
    let url = cc.get("url").and_then(Value::as_str);
    let service = cc.get("service").filter(|v| !v.is_null());
    match (url, service) {
        (Some(u), None) => url_errors(u, &format!("{path}.url")),
        (None, Some(svc)) => service_errors(svc, &format!("{path}.service")),
        _ => vec![FieldCause::required(
            path,
            "exactly one of url or service is required",
        )],
    }
}

/// `ValidateWebhookURL` with https forced.
fn url_errors(url: &str, field: &str) -> Vec<FieldCause> {
    const FORM: &str = "; desired format: https://host[/path]";
    let mut errs = Vec::new();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    if scheme != "https" {
        errs.push(FieldCause::invalid(
            field,
            &json!(scheme),
            &format!("'https' is the only allowed URL scheme{FORM}"),
        ));
    }
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = if url.contains("://") {
        rest.split('/').next().unwrap_or_default()
    } else {
        ""
    };
    let (user, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if host.is_empty() {
        errs.push(FieldCause::invalid(
            field,
            &json!(host),
            &format!("host must be provided{FORM}"),
        ));
    }
    if let Some(u) = user {
        errs.push(FieldCause::invalid(
            field,
            &json!(u),
            "user information is not permitted in the URL",
        ));
    }
    if !fragment.is_empty() {
        errs.push(FieldCause::invalid(
            field,
            &json!(fragment),
            "fragments are not permitted in the URL",
        ));
    }
    if !query.is_empty() {
        errs.push(FieldCause::invalid(
            field,
            &json!(query),
            "query parameters are not permitted in the URL",
        ));
    }
    errs
}

/// `ValidateWebhookService`.
fn service_errors(svc: &Value, path: &str) -> Vec<FieldCause> {
    let mut errs = Vec::new();
    if s(svc, "name").unwrap_or_default().is_empty() {
        errs.push(FieldCause::required(
            &format!("{path}.name"),
            "service name is required",
        ));
    }
    if s(svc, "namespace").unwrap_or_default().is_empty() {
        errs.push(FieldCause::required(
            &format!("{path}.namespace"),
            "service namespace is required",
        ));
    }
    let port = svc.get("port").and_then(Value::as_i64).unwrap_or(443);
    if !(1..=65535).contains(&port) {
        errs.push(FieldCause::invalid(
            &format!("{path}.port"),
            &json!(port),
            "port is not valid: must be between 1 and 65535, inclusive",
        ));
    }
    let field = format!("{path}.path");
    let Some(p) = s(svc, "path") else {
        return errs;
    };
    if p.is_empty() || p == "/" {
        return errs;
    }
    if p == "//" {
        errs.push(FieldCause::invalid(
            &field,
            &json!(p),
            "segment[0] may not be empty",
        ));
        return errs;
    }
    if !p.starts_with('/') {
        errs.push(FieldCause::invalid(&field, &json!(p), "must start with a '/'"));
    }
    let check = p.get(1..).unwrap_or_default();
    let check = check.strip_suffix('/').unwrap_or(check);
    for (i, step) in check.split('/').enumerate() {
        if step.is_empty() {
            errs.push(FieldCause::invalid(
                &field,
                &json!(p),
                &format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        for failure in subdomain_errors(step) {
            errs.push(FieldCause::invalid(
                &field,
                &json!(p),
                &format!("segment[{i}]: {failure}"),
            ));
        }
    }
    errs
}

/// `validateMatchConditions`: at most 64, names qualified and unique, expressions that compile.
fn match_condition_errors(conditions: Option<&Value>, path: &str) -> Vec<FieldCause> {
    let list = conditions
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let mut errs = Vec::new();
    if list.len() > MAX_MATCH_CONDITIONS {
        errs.push(FieldCause {
            reason: "FieldValueTooMany".into(),
            message: format!(
                "Too many: {}: must have at most {MAX_MATCH_CONDITIONS} items",
                list.len()
            ),
            field: path.into(),
        });
    }
    let mut names = HashSet::new();
    for (i, mc) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let expr = s(mc, "expression").unwrap_or_default().trim();
        if expr.is_empty() {
            errs.push(FieldCause::required(&format!("{p}.expression"), ""));
        } else if let Err(detail) = crate::cel::compile_match_condition(expr) {
            errs.push(FieldCause::invalid(
                &format!("{p}.expression"),
                &json!(expr),
                &detail,
            ));
        }
        let name = s(mc, "name").unwrap_or_default();
        if name.is_empty() {
            errs.push(FieldCause::required(&format!("{p}.name"), ""));
        } else {
            for msg in qualified_name_errors(name) {
                errs.push(FieldCause::invalid(&format!("{p}.name"), &json!(name), &msg));
            }
            if !names.insert(name) {
                errs.push(duplicate(&format!("{p}.name"), name));
            }
        }
    }
    errs
}

/// `validateAdmissionReviewVersions`.
fn review_version_errors(hook: &Value, path: &str, opts: &Options) -> Vec<FieldCause> {
    let field = format!("{path}.admissionReviewVersions");
    let versions = strings(hook, "admissionReviewVersions");
    if versions.is_empty() {
        return vec![FieldCause::required(
            &field,
            &format!("must specify one of {}", ACCEPTED_REVIEW_VERSIONS.join(", ")),
        )];
    }
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for (i, v) in versions.iter().enumerate() {
        let item = format!("{field}[{i}]");
        if !seen.insert(v.as_str()) {
            errs.push(FieldCause::invalid(&item, &json!(v), "duplicate version"));
            continue;
        }
        for msg in dns1035_label_errors(v) {
            errs.push(FieldCause::invalid(&item, &json!(v), &msg));
        }
    }
    let accepted = versions
        .iter()
        .any(|v| ACCEPTED_REVIEW_VERSIONS.contains(&v.as_str()));
    if opts.require_recognized_review_version && !accepted {
        errs.push(invalid_slice(
            &field,
            "string",
            &versions,
            &format!(
                "must include at least one of {}",
                ACCEPTED_REVIEW_VERSIONS.join(", ")
            ),
        ));
    }
    errs
}

/// `IsDNS1035Label`.
fn dns1035_label_errors(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push("must be no more than 63 characters".into());
    }
    let b = v.as_bytes();
    let ok = b.first().is_some_and(u8::is_ascii_lowercase)
        && b.last()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if !ok {
        errs.push("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".into());
    }
    errs
}

#[cfg(test)]
#[path = "webhook_config_tests.rs"]
mod tests;
