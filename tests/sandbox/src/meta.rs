//! Object metadata helpers shared by the verbs.

use rand::Rng;
use serde_json::{Map, Value, json};

use crate::registry::ResourceInfo;

/// Now as kube writes timestamps (RFC 3339, seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A name from `generateName` the way kube-apiserver makes one (5 random safe characters).
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// The object as served at the requested version (stored objects have one apiVersion; CRD
/// versions are served with conversion strategy None, i.e. only apiVersion changes).
pub fn for_output(info: &ResourceInfo, obj: &Value) -> Value {
    let mut o = crate::events::to_served(info, obj).unwrap_or_else(|| obj.clone());
    set_type(info, &mut o);
    o
}

/// [`for_output`] without a copy when the stored object already carries the served type.
pub fn output_ref<'a>(info: &ResourceInfo, obj: &'a Value) -> std::borrow::Cow<'a, Value> {
    let typed = obj["apiVersion"].as_str() == Some(info.api_version().as_str())
        && obj["kind"].as_str() == Some(info.kind.as_str());
    if typed {
        std::borrow::Cow::Borrowed(obj)
    } else {
        std::borrow::Cow::Owned(for_output(info, obj))
    }
}

pub fn set_type(info: &ResourceInfo, obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(info.api_version()));
        m.insert("kind".into(), Value::String(info.kind.clone()));
    }
}

/// `metadata` as a mutable map (created if missing).
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    // Just ensured it is an object.
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just set to an object"),
    }
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or_default()
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// Whether two objects agree on everything but metadata and status: a spec change is what
/// bumps `generation`.
pub fn same_spec(a: &Value, b: &Value) -> bool {
    same_except(a, b, &["metadata", "status", "apiVersion", "kind"], &[])
}

/// Whether `a` and `b` are equal apart from the top-level keys `skip` and the metadata keys
/// `skip_meta` (compared in place: objects here are large and written often).
pub fn same_except(a: &Value, b: &Value, skip: &[&str], skip_meta: &[&str]) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let split_meta = !skip_meta.is_empty() && !skip.contains(&"metadata");
    if !maps_equal(a, b, |k| skip.contains(&k) || (split_meta && k == "metadata")) {
        return false;
    }
    if !split_meta {
        return true;
    }
    match (a.get("metadata"), b.get("metadata")) {
        (Some(Value::Object(ma)), Some(Value::Object(mb))) => maps_equal(ma, mb, |k| skip_meta.contains(&k)),
        (ma, mb) => ma == mb,
    }
}

fn maps_equal(
    a: &serde_json::Map<String, Value>,
    b: &serde_json::Map<String, Value>,
    skip: impl Fn(&str) -> bool,
) -> bool {
    let kept = |m: &serde_json::Map<String, Value>| m.keys().filter(|k| !skip(k)).count();
    kept(a) == kept(b)
        && a.iter()
            .filter(|(k, _)| !skip(k))
            .all(|(k, v)| b.get(k) == Some(v))
}

/// A Secret's write-only `stringData` merged into `data` (base64), as kube's conversion of a
/// v1 Secret does on every write; `stringData` itself is never stored.
pub fn fold_string_data(info: &ResourceInfo, obj: &mut Value) {
    use base64::Engine;
    if info.custom || !info.group.is_empty() || info.plural != "secrets" {
        return;
    }
    let Some(Value::Object(strings)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) else {
        return;
    };
    if !obj["data"].is_object() {
        obj["data"] = json!({});
    }
    for (k, v) in strings {
        let text = v.as_str().unwrap_or_default();
        obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

/// Defaults kube sets on create for the built-ins volops looks at.
pub fn builtin_create_defaults(info: &ResourceInfo, obj: &mut Value) {
    if info.custom || !info.group.is_empty() {
        return;
    }
    match info.plural.as_str() {
        "pods" => {
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        "persistentvolumeclaims" => {
            obj["status"] = json!({"phase": "Pending"});
            if obj["spec"]["volumeMode"].is_null() && obj["spec"].is_object() {
                obj["spec"]["volumeMode"] = json!("Filesystem");
            }
        }
        "persistentvolumes" => {
            obj["status"] = json!({"phase": "Pending"});
        }
        "namespaces" => {
            obj["status"] = json!({"phase": "Active"});
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            let name = meta_str(obj, "name").to_string();
            let labels = meta_mut(obj).entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), Value::String(name));
            }
        }
        "secrets" if obj["type"].as_str().is_none_or(str::is_empty) => {
            obj["type"] = json!("Opaque");
        }
        "services" => {
            if obj["spec"]["type"].is_null() && obj["spec"].is_object() {
                obj["spec"]["type"] = json!("ClusterIP");
            }
            obj["status"] = json!({"loadBalancer": {}});
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn same_except_skips_only_what_it_is_told() {
        use super::{same_except, same_spec};
        use serde_json::json;
        let a = json!({"metadata": {"name": "x", "resourceVersion": "1", "labels": {"a": "1"}},
                       "spec": {"n": 1}, "status": {"s": 1}});
        let mut b = a.clone();
        b["metadata"]["resourceVersion"] = json!("2");
        b["status"]["s"] = json!(2);
        assert!(same_spec(&a, &b));
        assert!(same_except(&a, &b, &["status"], &["resourceVersion"]));
        assert!(!same_except(&a, &b, &["status"], &[]), "resourceVersion differs");
        assert!(!same_except(&a, &b, &[], &["resourceVersion"]), "status differs");
        b["metadata"]["labels"]["a"] = json!("2");
        assert!(
            !same_except(&a, &b, &["status"], &["resourceVersion"]),
            "a label differs"
        );
        assert!(same_spec(&a, &b));
        b["spec"]["extra"] = json!(true);
        assert!(!same_spec(&a, &b), "a key only one side has");
        let mut c = a.clone();
        c.as_object_mut().map(|m| m.remove("status"));
        assert!(!same_except(&a, &c, &[], &["resourceVersion"]));
        assert!(same_except(&a, &c, &["status"], &[]));
    }
}
