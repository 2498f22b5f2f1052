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
    let mut o = obj.clone();
    set_type(info, &mut o);
    o
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

/// The object without metadata and status: what a spec change means for `generation`.
pub fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    o
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
        "services" => {
            if obj["spec"]["type"].is_null() && obj["spec"].is_object() {
                obj["spec"]["type"] = json!("ClusterIP");
            }
            obj["status"] = json!({"loadBalancer": {}});
        }
        _ => {}
    }
}
