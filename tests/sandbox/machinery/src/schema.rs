//! CRD structural schema handling in kube-apiserver's order: prune unknown fields, apply
//! `default`s, then validate. Error texts follow apiextensions-apiserver's conversion of
//! kube-openapi validation errors.

use serde_json::{Map, Value};

use crate::error::FieldCause;

/// Prunes, defaults and validates `obj` (a whole custom resource) against `schema` (the
/// `openAPIV3Schema` of its version). `apiVersion`, `kind` and `metadata` are never pruned.
pub fn apply_structural_schema(schema: &Value, obj: &mut Value) -> Result<(), Vec<FieldCause>> {
    prune(schema, obj, true);
    default(schema, obj, true);
    let mut causes = Vec::new();
    validate(schema, obj, "", true, &mut causes);
    if causes.is_empty() { Ok(()) } else { Err(causes) }
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn properties(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

/// The schema of map values when `additionalProperties` is a schema (not a bool).
fn additional(schema: &Value) -> Option<&Value> {
    schema.get("additionalProperties").filter(|v| v.is_object())
}

fn is_embedded(schema: &Value, root: bool) -> bool {
    root || flag(schema, "x-kubernetes-embedded-resource")
}

const OBJECT_META_KEYS: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn prune(schema: &Value, value: &mut Value, root: bool) {
    match value {
        Value::Object(map) => {
            let props = properties(schema);
            let extra = additional(schema);
            let keep_unknown = flag(schema, "x-kubernetes-preserve-unknown-fields")
                || schema.get("additionalProperties") == Some(&Value::Bool(true));
            let embedded = is_embedded(schema, root);
            map.retain(|k, v| {
                if embedded && OBJECT_META_KEYS.contains(&k.as_str()) {
                    return true;
                }
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    prune(s, v, false);
                    return true;
                }
                if let Some(s) = extra {
                    prune(s, v, false);
                    return true;
                }
                keep_unknown
            });
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for item in items {
                    prune(s, item, false);
                }
            }
        }
        _ => {}
    }
}

fn default(schema: &Value, value: &mut Value, root: bool) {
    match value {
        Value::Object(map) => {
            if let Some(props) = properties(schema) {
                for (k, prop) in props {
                    if root && OBJECT_META_KEYS.contains(&k.as_str()) {
                        continue;
                    }
                    let present_null = map.get(k).is_some_and(Value::is_null);
                    let missing = !map.contains_key(k);
                    let nullable = flag(prop, "nullable");
                    match prop.get("default") {
                        Some(d) if missing || (present_null && !nullable) => {
                            map.insert(k.clone(), d.clone());
                        }
                        // Non-nullable nulls without a default are pruned before defaulting.
                        None if present_null && !nullable => {
                            map.remove(k);
                        }
                        _ => {}
                    }
                }
            }
            let props = properties(schema);
            let extra = additional(schema);
            for (k, v) in map.iter_mut() {
                if root && k == "metadata" {
                    continue;
                }
                if let Some(s) = props.and_then(|p| p.get(k)).or(extra) {
                    default(s, v, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for item in items {
                    default(s, item, false);
                }
            }
        }
        _ => {}
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// kube-openapi's name for a JSON value's type.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, v: &Value) -> bool {
    let actual = type_name(v);
    actual == expected || (expected == "number" && actual == "integer")
}

/// Go `%v` of a float64 bound.
fn go_number(n: &Value) -> String {
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => format!("{f}"),
        None => n.to_string(),
    }
}

fn validate(schema: &Value, value: &Value, path: &str, root: bool, out: &mut Vec<FieldCause>) {
    let name = if path.is_empty() { "." } else { path };
    if value.is_null() {
        if flag(schema, "nullable") {
            return;
        }
        if let Some(t) = schema.get("type").and_then(Value::as_str) {
            let detail = format!("{name} in body must be of type {t}: \"null\"");
            out.push(FieldCause::type_invalid(path, &Value::from("null"), &detail));
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(type_name(value) == "integer" || value.is_string()) {
            let actual = type_name(value);
            let detail = format!("{name} in body must be of type integer,string: \"{actual}\"");
            out.push(FieldCause::type_invalid(path, &Value::from(actual), &detail));
            return;
        }
    } else if let Some(t) = schema.get("type").and_then(Value::as_str)
        && !type_matches(t, value)
    {
        let actual = type_name(value);
        let detail = format!("{name} in body must be of type {t}: \"{actual}\"");
        out.push(FieldCause::type_invalid(path, &Value::from(actual), &detail));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let supported: Vec<String> = allowed
            .iter()
            .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
            .collect();
        out.push(FieldCause::not_supported(path, value, &supported));
    }
    match value {
        Value::String(s) => validate_string(schema, s, value, path, name, out),
        Value::Number(_) => validate_number(schema, value, path, name, out),
        Value::Array(items) => {
            let len = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && len < min
            {
                let detail = format!("{name} in body should have at least {min} items");
                out.push(FieldCause::invalid(path, value, &detail));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && len > max
            {
                out.push(FieldCause {
                    reason: "FieldValueTooMany".into(),
                    message: format!("Too many: {len}: must have at most {max} items"),
                    field: path.to_string(),
                });
            }
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate(s, item, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        Value::Object(map) => {
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        out.push(FieldCause::required(&child(path, r), ""));
                    }
                }
            }
            let props = properties(schema);
            let extra = additional(schema);
            for (k, v) in map {
                if root && OBJECT_META_KEYS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(s) = props.and_then(|p| p.get(k)).or(extra) {
                    validate(s, v, &child(path, k), false, out);
                }
            }
        }
        _ => {}
    }
}

fn validate_string(
    schema: &Value,
    s: &str,
    value: &Value,
    path: &str,
    name: &str,
    out: &mut Vec<FieldCause>,
) {
    let chars = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && chars < min
    {
        let detail = format!("{name} in body should be at least {min} chars long");
        out.push(FieldCause::invalid(path, value, &detail));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && chars > max
    {
        out.push(FieldCause {
            reason: "FieldValueTooLong".into(),
            message: format!("Too long: may not be more than {max} bytes"),
            field: path.to_string(),
        });
    }
    if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
        // An uncompilable pattern is rejected when the CRD is created; treat it as no match.
        let ok = regex::Regex::new(p).is_ok_and(|re| re.is_match(s));
        if !ok {
            let detail = format!("{name} in body should match '{p}'");
            out.push(FieldCause::invalid(path, value, &detail));
        }
    }
}

fn validate_number(schema: &Value, value: &Value, path: &str, name: &str, out: &mut Vec<FieldCause>) {
    let Some(x) = value.as_f64() else { return };
    if let Some(min) = schema.get("minimum")
        && let Some(m) = min.as_f64()
    {
        let excl = flag(schema, "exclusiveMinimum");
        if (excl && x <= m) || (!excl && x < m) {
            let op = if excl {
                "greater than"
            } else {
                "greater than or equal to"
            };
            let detail = format!("{name} in body should be {op} {}", go_number(min));
            out.push(FieldCause::invalid(path, value, &detail));
        }
    }
    if let Some(max) = schema.get("maximum")
        && let Some(m) = max.as_f64()
    {
        let excl = flag(schema, "exclusiveMaximum");
        if (excl && x >= m) || (!excl && x > m) {
            let op = if excl {
                "less than"
            } else {
                "less than or equal to"
            };
            let detail = format!("{name} in body should be {op} {}", go_number(max));
            out.push(FieldCause::invalid(path, value, &detail));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": {"type": "string", "pattern": "^[0-9]+Gi$"},
                        "mode": {"type": "string", "enum": ["Auto", "Manual"], "default": "Auto"},
                        "replicas": {"type": "integer", "minimum": 1, "maximum": 5},
                        "port": {"x-kubernetes-int-or-string": true},
                        "policy": {
                            "type": "object",
                            "default": {},
                            "properties": {
                                "step": {"type": "integer", "default": 10},
                                "inner": {"type": "object", "default": {"x": "y"},
                                          "properties": {"x": {"type": "string"}, "z": {"type": "string", "default": "zz"}}}
                            }
                        },
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "items": {"type": "array", "items": {"type": "object",
                                   "properties": {"n": {"type": "string", "minLength": 2}}}},
                        "note": {"type": "string", "nullable": true}
                    }
                },
                "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
            }
        })
    }

    fn run(mut obj: Value) -> (Value, Result<(), Vec<FieldCause>>) {
        let r = apply_structural_schema(&schema(), &mut obj);
        (obj, r)
    }

    fn messages(r: Result<(), Vec<FieldCause>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .iter()
            .map(FieldCause::error_string)
            .collect()
    }

    #[test]
    fn defaults_are_applied_recursively_inside_new_defaults() {
        let (obj, r) = run(
            json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w"},
            "spec": {"size": "1Gi"}}),
        );
        assert_eq!(r, Ok(()));
        assert_eq!(obj["spec"]["mode"], "Auto");
        assert_eq!(obj["spec"]["policy"]["step"], 10);
        assert_eq!(obj["spec"]["policy"]["inner"], json!({"x": "y", "z": "zz"}));
        assert_eq!(obj["metadata"], json!({"name": "w"}));
    }

    #[test]
    fn prunes_unknown_but_keeps_preserved_and_meta() {
        let (obj, r) = run(json!({"apiVersion": "x/v1", "kind": "W",
            "metadata": {"name": "w", "labels": {"a": "b"}}, "junk": 1,
            "spec": {"size": "1Gi", "extra": true, "free": {"any": {"thing": 1}},
                     "labels": {"k": "v"}, "items": [{"n": "ab", "drop": 1}]}}));
        assert_eq!(r, Ok(()));
        assert!(obj.get("junk").is_none());
        assert!(obj["spec"].get("extra").is_none());
        assert_eq!(obj["spec"]["free"], json!({"any": {"thing": 1}}));
        assert_eq!(obj["spec"]["labels"], json!({"k": "v"}));
        assert_eq!(obj["spec"]["items"], json!([{"n": "ab"}]));
        assert_eq!(obj["metadata"]["labels"], json!({"a": "b"}));
    }

    #[test]
    fn required_and_enum_messages() {
        let (_, r) = run(json!({"spec": {"mode": "Fast"}}));
        assert_eq!(
            messages(r),
            vec![
                "spec.size: Required value".to_string(),
                r#"spec.mode: Unsupported value: "Fast": supported values: "Auto", "Manual""#.to_string()
            ]
        );
    }

    #[test]
    fn type_pattern_and_bounds_messages() {
        let (_, r) = run(json!({"spec": {"size": "1G", "replicas": "two"}}));
        assert_eq!(
            messages(r),
            vec![
                r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#.to_string(),
                r#"spec.size: Invalid value: "1G": spec.size in body should match '^[0-9]+Gi$'"#.to_string(),
            ]
        );
        let (_, r) = run(json!({"spec": {"size": "1Gi", "replicas": 0}}));
        assert_eq!(
            messages(r),
            vec![
                "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
            ]
        );
        let (_, r) = run(json!({"spec": {"size": "1Gi", "replicas": 9, "items": [{"n": "a"}]}}));
        assert_eq!(
            messages(r),
            vec![
                r#"spec.items[0].n: Invalid value: "a": spec.items[0].n in body should be at least 2 chars long"#.to_string(),
                "spec.replicas: Invalid value: 9: spec.replicas in body should be less than or equal to 5".to_string(),
            ]
        );
    }

    #[test]
    fn int_or_string_and_nullable() {
        let (_, r) = run(json!({"spec": {"size": "1Gi", "port": 80, "note": null}}));
        assert_eq!(r, Ok(()));
        let (_, r) = run(json!({"spec": {"size": "1Gi", "port": "http"}}));
        assert_eq!(r, Ok(()));
        let (_, r) = run(json!({"spec": {"size": "1Gi", "port": true}}));
        assert_eq!(messages(r).len(), 1);
        // A null in a non-nullable field with a default gets the default; without one it is pruned.
        let (obj, r) = run(json!({"spec": {"size": "1Gi", "mode": null, "replicas": null}}));
        assert_eq!(r, Ok(()));
        assert_eq!(obj["spec"]["mode"], "Auto");
        assert!(obj["spec"].get("replicas").is_none());
        let (_, r) = run(json!({"spec": {"size": "1Gi", "labels": {"k": 1}}}));
        assert_eq!(
            messages(r),
            vec![
                r#"spec.labels.k: Invalid value: "integer": spec.labels.k in body must be of type string: "integer""#
            ]
        );
    }
}
