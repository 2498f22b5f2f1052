//! The defaults of an ops request (README.md, "The API"), written once, on the typed spec
//! (`shared/src/api/ops.rs`): whenever a request is read as its typed API object, serde fills
//! what it left out: `spec.apply: IfReady` ([`crate::api::ApplyPolicy`]'s default),
//! `spec.maxRetries: 1` ([`max_retries`]), `spec.timeout: 10m` ([`timeout`]) and
//! `spec.volumeExpansion.mode: Online` ([`crate::api::VolumeExpansionMode`]'s default). So the
//! controller, which reads requests typed, runs every request with these defaults, also one the
//! webhook never saw. [`defaulted`] adds the labels `ops.kubedb.com/kind` / `ops.kubedb.com/name`,
//! and the webhook's mutating patch is [`defaults_patch`]: the difference between a request and
//! its defaulted form.

use json_patch::{AddOperation, Patch, PatchOperation, jsonptr::PointerBuf};
use kube::Resource;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    api::{RedisOpsRequest, ZooKeeperOpsRequest},
    descriptor::DatabaseKind,
};

/// Per-step timeout given to requests that set none.
pub const DEFAULT_TIMEOUT: &str = "10m";
/// Label naming the database kind an ops request targets.
pub const LABEL_KIND: &str = "ops.kubedb.com/kind";
/// Label naming the database an ops request targets.
pub const LABEL_NAME: &str = "ops.kubedb.com/name";

/// `spec.timeout` of a request that sets none.
pub fn timeout() -> Option<String> {
    Some(DEFAULT_TIMEOUT.to_owned())
}

/// `spec.maxRetries` of a request that sets none.
pub fn max_retries() -> i32 {
    1
}

/// A request the typed API cannot read has no defaulted form; the validating webhook denies it
/// with the rule it breaks.
#[derive(Debug, thiserror::Error)]
#[error("{kind} cannot be read as its typed API object: {source}")]
pub struct DefaultsError {
    pub kind: &'static str,
    #[source]
    pub source: serde_json::Error,
}

/// The request `obj` of `kind` with every default filled in, as JSON. Nulls read as absent (the
/// API server prunes them too). Fields the typed API does not model are not in the result.
pub fn defaulted(kind: DatabaseKind, obj: &Value) -> Result<Value, DefaultsError> {
    let mut obj = obj.clone();
    drop_nulls(&mut obj);
    let typed = match kind {
        DatabaseKind::Redis => labelled::<RedisOpsRequest>(kind, obj, |r| &r.spec.database_ref.name),
        DatabaseKind::ZooKeeper => labelled::<ZooKeeperOpsRequest>(kind, obj, |r| &r.spec.database_ref.name),
    };
    typed.map_err(|source| DefaultsError {
        kind: kind.ops_kind(),
        source,
    })
}

/// Reads `obj` typed (serde fills the spec's defaults) and adds the labels that are missing.
fn labelled<R: Resource + Serialize + DeserializeOwned>(
    kind: DatabaseKind,
    obj: Value,
    database: fn(&R) -> &String,
) -> Result<Value, serde_json::Error> {
    let mut request: R = serde_json::from_value(obj)?;
    let db = database(&request).clone();
    let labels = request.meta_mut().labels.get_or_insert_default();
    labels
        .entry(LABEL_KIND.to_owned())
        .or_insert_with(|| kind.kind().to_owned());
    labels.entry(LABEL_NAME.to_owned()).or_insert(db);
    serde_json::to_value(&request)
}

fn drop_nulls(v: &mut Value) {
    if let Value::Object(map) = v {
        map.retain(|_, v| !v.is_null());
        map.values_mut().for_each(drop_nulls);
    }
}

/// The patch that fills in what a CREATE left out: the difference between `obj` and
/// [`defaulted`]`(obj)`, as additions only: a value that is there (or a field the typed API
/// does not model) is never overwritten or removed.
pub fn defaults_patch(kind: DatabaseKind, obj: &Value) -> Result<Patch, DefaultsError> {
    let full = defaulted(kind, obj)?;
    let mut ops = Vec::new();
    additions(obj, &full, &mut Vec::new(), &mut ops);
    Ok(Patch(ops))
}

/// Adds to `ops` every member of `full` that `obj` lacks (or has as null), below `path`.
fn additions(obj: &Value, full: &Value, path: &mut Vec<String>, ops: &mut Vec<PatchOperation>) {
    let Value::Object(full) = full else { return };
    for (key, value) in full {
        path.push(key.clone());
        match obj.get(key) {
            None | Some(Value::Null) => ops.push(PatchOperation::Add(AddOperation {
                path: PointerBuf::from_tokens(path.iter()),
                value: value.clone(),
            })),
            Some(there) => additions(there, value, path, ops),
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patched(kind: DatabaseKind, mut obj: Value) -> (Value, Value) {
        let patch = defaults_patch(kind, &obj).unwrap();
        let as_json = serde_json::to_value(&patch).unwrap();
        json_patch::patch(&mut obj, &patch).unwrap();
        (obj, as_json)
    }

    #[test]
    fn fills_every_default_on_a_bare_request() {
        let (obj, patch) = patched(
            DatabaseKind::Redis,
            json!({"apiVersion": "ops.kubedb.com/v1alpha1", "kind": "RedisOpsRequest",
                   "metadata": {"name": "x", "namespace": "demo"},
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
                {"op": "add", "path": "/metadata/labels", "value": {"ops.kubedb.com/kind": "Redis", "ops.kubedb.com/name": "rd"}},
                {"op": "add", "path": "/spec/apply", "value": "IfReady"},
                {"op": "add", "path": "/spec/maxRetries", "value": 1},
                {"op": "add", "path": "/spec/timeout", "value": "10m"},
                {"op": "add", "path": "/spec/volumeExpansion/mode", "value": "Online"}
            ])
        );
    }

    #[test]
    fn never_overwrites_nor_drops_and_escapes_label_keys() {
        let (obj, patch) = patched(
            DatabaseKind::ZooKeeper,
            json!({"apiVersion": "ops.kubedb.com/v1alpha1", "kind": "ZooKeeperOpsRequest",
                   "metadata": {"name": "x", "labels": {"team": "a", "ops.kubedb.com/kind": "Custom"}},
                   "spec": {"type": "VolumeExpansion", "databaseRef": {"name": "zk"}, "apply": "Always", "timeout": "1m",
                            "maxRetries": 3, "volumeExpansion": {"mode": "Offline", "node": 2}, "unmodelled": {"a": 1}}}),
        );
        assert_eq!(
            patch,
            json!([{"op": "add", "path": "/metadata/labels/ops.kubedb.com~1name", "value": "zk"}])
        );
        assert_eq!(obj["spec"]["apply"], "Always");
        assert_eq!(obj["spec"]["volumeExpansion"]["node"], 2);
        assert_eq!(obj["spec"]["unmodelled"], json!({"a": 1}));
        assert_eq!(obj["metadata"]["labels"]["ops.kubedb.com/kind"], "Custom");
        assert_eq!(obj["metadata"]["labels"]["team"], "a");
    }

    #[test]
    fn a_null_reads_as_absent() {
        let (obj, _) = patched(
            DatabaseKind::Redis,
            json!({"apiVersion": "ops.kubedb.com/v1alpha1", "kind": "RedisOpsRequest", "metadata": {"name": "x"},
                   "spec": {"type": "Restart", "databaseRef": {"name": "rd"}, "timeout": null, "apply": null}}),
        );
        assert_eq!(
            (&obj["spec"]["timeout"], &obj["spec"]["apply"]),
            (&json!("10m"), &json!("IfReady"))
        );
        // No volumeExpansion: none is added (another type, or validation denies the missing field).
        assert!(obj["spec"].get("volumeExpansion").is_none());
    }

    #[test]
    fn a_request_the_typed_api_cannot_read_has_no_defaulted_form() {
        for spec in [
            json!({"type": "VolumeExpansion"}),
            json!({"type": "VolumeExpansion", "databaseRef": {"name": "rd"}, "volumeExpansion": {"mode": "Sideways"}}),
        ] {
            let obj = json!({"apiVersion": "ops.kubedb.com/v1alpha1", "kind": "RedisOpsRequest",
                             "metadata": {"name": "x"}, "spec": spec});
            let e = defaults_patch(DatabaseKind::Redis, &obj).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("RedisOpsRequest cannot be read as its typed API object: "),
                "{e}"
            );
        }
    }
}
