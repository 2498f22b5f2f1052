//! The mutating defaults (README.md, "The API"), as an RFC 6902 patch over the request's JSON.

use json_patch::{AddOperation, Patch, PatchOperation, jsonptr::PointerBuf};
use serde_json::{Value, json};

use crate::descriptor::DatabaseKind;

/// Per-step timeout given to requests that set none.
pub const DEFAULT_TIMEOUT: &str = "10m";
/// Label naming the database kind an ops request targets.
pub const LABEL_KIND: &str = "ops.kubedb.com/kind";
/// Label naming the database an ops request targets.
pub const LABEL_NAME: &str = "ops.kubedb.com/name";

fn add(path: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(path.iter().copied()),
        value,
    })
}

/// The patch that fills in what a CREATE left out: `spec.apply: IfReady`, `spec.timeout`,
/// `spec.maxRetries: 1`, `spec.volumeExpansion.mode: Online`, and the labels
/// `ops.kubedb.com/kind` / `ops.kubedb.com/name`. Existing values are never overwritten.
pub fn defaults_patch(kind: DatabaseKind, obj: &Value) -> Patch {
    let mut ops = Vec::new();
    let spec = obj.get("spec").filter(|s| s.is_object());
    let missing = |v: Option<&Value>, key: &str| v.and_then(|v| v.get(key)).is_none_or(Value::is_null);
    if let Some(spec) = spec {
        if missing(Some(spec), "apply") {
            ops.push(add(&["spec", "apply"], json!("IfReady")));
        }
        if missing(Some(spec), "timeout") {
            ops.push(add(&["spec", "timeout"], json!(DEFAULT_TIMEOUT)));
        }
        if missing(Some(spec), "maxRetries") {
            ops.push(add(&["spec", "maxRetries"], json!(1)));
        }
        let expansion = spec.get("volumeExpansion").filter(|v| v.is_object());
        if expansion.is_some() && missing(expansion, "mode") {
            ops.push(add(&["spec", "volumeExpansion", "mode"], json!("Online")));
        }
    }
    let labels = obj.pointer("/metadata/labels").filter(|l| l.is_object());
    let mut wanted = vec![(LABEL_KIND, Value::String(kind.kind().to_owned()))];
    if let Some(db) = obj.pointer("/spec/databaseRef/name").and_then(Value::as_str) {
        wanted.push((LABEL_NAME, Value::String(db.to_owned())));
    }
    let wanted: Vec<_> = wanted.into_iter().filter(|(k, _)| missing(labels, k)).collect();
    if labels.is_none() && !wanted.is_empty() {
        ops.push(add(
            &["metadata", "labels"],
            Value::Object(wanted.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
        ));
    } else {
        ops.extend(
            wanted
                .into_iter()
                .map(|(k, v)| add(&["metadata", "labels", k], v)),
        );
    }
    Patch(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patched(kind: DatabaseKind, mut obj: Value) -> (Value, Value) {
        let patch = defaults_patch(kind, &obj);
        let as_json = serde_json::to_value(&patch).unwrap();
        json_patch::patch(&mut obj, &patch).unwrap();
        (obj, as_json)
    }

    #[test]
    fn fills_every_default_on_a_bare_request() {
        let (obj, patch) = patched(
            DatabaseKind::Redis,
            json!({"metadata": {"name": "x", "namespace": "demo"},
                   "spec": {"type": "VolumeExpansion", "databaseRef": {"name": "rd"}, "volumeExpansion": {"redis": "2Gi"}}}),
        );
        assert_eq!(obj["spec"]["apply"], "IfReady");
        assert_eq!(obj["spec"]["timeout"], "10m");
        assert_eq!(obj["spec"]["maxRetries"], 1);
        assert_eq!(obj["spec"]["volumeExpansion"]["mode"], "Online");
        assert_eq!(
            obj["metadata"]["labels"],
            json!({"ops.kubedb.com/kind": "Redis", "ops.kubedb.com/name": "rd"})
        );
        assert_eq!(
            patch,
            json!([
                {"op": "add", "path": "/spec/apply", "value": "IfReady"},
                {"op": "add", "path": "/spec/timeout", "value": "10m"},
                {"op": "add", "path": "/spec/maxRetries", "value": 1},
                {"op": "add", "path": "/spec/volumeExpansion/mode", "value": "Online"},
                {"op": "add", "path": "/metadata/labels", "value": {"ops.kubedb.com/kind": "Redis", "ops.kubedb.com/name": "rd"}}
            ])
        );
    }

    #[test]
    fn never_overwrites_and_escapes_label_keys() {
        let (obj, patch) = patched(
            DatabaseKind::ZooKeeper,
            json!({"metadata": {"name": "x", "labels": {"team": "a", "ops.kubedb.com/kind": "Custom"}},
                   "spec": {"type": "VolumeExpansion", "databaseRef": {"name": "zk"}, "apply": "Always", "timeout": "1m",
                            "maxRetries": 3, "volumeExpansion": {"mode": "Offline", "node": "2Gi"}}}),
        );
        assert_eq!(
            patch,
            json!([{"op": "add", "path": "/metadata/labels/ops.kubedb.com~1name", "value": "zk"}])
        );
        assert_eq!(obj["spec"]["apply"], "Always");
        assert_eq!(obj["metadata"]["labels"]["ops.kubedb.com/kind"], "Custom");
        assert_eq!(obj["metadata"]["labels"]["team"], "a");
    }

    #[test]
    fn leaves_a_missing_volume_expansion_for_validation_to_deny() {
        let (obj, _) = patched(
            DatabaseKind::Redis,
            json!({"metadata": {}, "spec": {"type": "VolumeExpansion"}}),
        );
        assert!(obj["spec"].get("volumeExpansion").is_none());
        assert_eq!(obj["metadata"]["labels"], json!({"ops.kubedb.com/kind": "Redis"}));
    }
}
