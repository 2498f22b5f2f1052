//! Pure rewrites of saved objects: what is kept of a workload or pod before it is deleted, and
//! how a saved workload is turned back into one to create with a new claim size.

use serde_json::{Map, Value, json};

const KEPT_METADATA: [&str; 6] = [
    "name",
    "namespace",
    "labels",
    "annotations",
    "finalizers",
    "ownerReferences",
];

fn trimmed_metadata(obj: &Value) -> Value {
    let mut meta = Map::new();
    if let Some(m) = obj.get("metadata").and_then(Value::as_object) {
        for key in KEPT_METADATA {
            if let Some(v) = m.get(key).filter(|v| !v.is_null()) {
                meta.insert(key.to_owned(), v.clone());
            }
        }
    }
    Value::Object(meta)
}

/// What is kept of an object: apiVersion, kind, trimmed metadata and spec; status and server
/// fields (uid, resourceVersion, managedFields, timestamps) go.
fn strip(obj: &Value) -> Value {
    let mut out = Map::new();
    for key in ["apiVersion", "kind"] {
        if let Some(v) = obj.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    out.insert("metadata".to_owned(), trimmed_metadata(obj));
    if let Some(spec) = obj.get("spec") {
        out.insert("spec".to_owned(), spec.clone());
    }
    Value::Object(out)
}

/// A workload as saved before the orphan delete.
pub fn strip_workload(obj: &Value) -> Value {
    let mut out = strip(obj);
    // Claim templates carry their own status in some API versions; it must not be sent back.
    if let Some(templates) = out
        .pointer_mut("/spec/volumeClaimTemplates")
        .and_then(Value::as_array_mut)
    {
        for t in templates {
            if let Some(t) = t.as_object_mut() {
                t.remove("status");
            }
        }
    }
    out
}

/// A pod as KubeDB saves it before taking it down (controller/DESIGN-NOTES.md).
pub fn strip_pod(obj: &Value) -> Value {
    strip(obj)
}

/// The storage request of a workload's claim template, if set.
pub fn claim_size(manifest: &Value, claim_template: &str) -> Option<String> {
    template(manifest, claim_template)?
        .pointer("/spec/resources/requests/storage")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn template<'a>(manifest: &'a Value, claim_template: &str) -> Option<&'a Value> {
    manifest
        .pointer("/spec/volumeClaimTemplates")?
        .as_array()?
        .iter()
        .find(|t| t.pointer("/metadata/name").and_then(Value::as_str) == Some(claim_template))
}

/// Why a saved manifest cannot be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the saved manifest has no volume claim template named {0:?}")]
pub struct MissingTemplate(pub String);

/// The saved workload with `claim_template`'s storage request set to `size`, ready to create.
pub fn with_claim_size(saved: &Value, claim_template: &str, size: &str) -> Result<Value, MissingTemplate> {
    let mut out = strip_workload(saved);
    let templates = out
        .pointer_mut("/spec/volumeClaimTemplates")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| MissingTemplate(claim_template.to_owned()))?;
    let t = templates
        .iter_mut()
        .find(|t| t.pointer("/metadata/name").and_then(Value::as_str) == Some(claim_template))
        .filter(|t| t.is_object())
        .ok_or_else(|| MissingTemplate(claim_template.to_owned()))?;
    let spec = ensure_object(t, "spec");
    let resources = ensure_object(spec, "resources");
    let requests = ensure_object(resources, "requests");
    if let Some(m) = requests.as_object_mut() {
        m.insert("storage".to_owned(), json!(size));
    }
    Ok(out)
}

fn ensure_object<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    if !v.get(key).is_some_and(Value::is_object)
        && let Some(m) = v.as_object_mut()
    {
        m.insert(key.to_owned(), json!({}));
    }
    // Indexing a JSON object by key yields (and if need be inserts) the entry.
    &mut v[key]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {
                "name": "rd-shard0", "namespace": "demo", "uid": "u1", "resourceVersion": "42",
                "generation": 3, "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [{}],
                "labels": {"app.kubernetes.io/instance": "rd"},
                "ownerReferences": [{"apiVersion": "kubedb.com/v1", "kind": "Redis", "name": "rd", "uid": "x"}]
            },
            "spec": {
                "replicas": 2,
                "volumeClaimTemplates": [
                    {"metadata": {"name": "other"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}},
                    {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}},
                     "status": {"phase": "Pending"}}
                ]
            },
            "status": {"replicas": 2}
        })
    }

    #[test]
    fn strip_workload_drops_server_fields_and_status() {
        let s = strip_workload(&sts());
        let meta = s["metadata"].as_object().unwrap();
        let mut keys: Vec<_> = meta.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["labels", "name", "namespace", "ownerReferences"]);
        assert!(s.get("status").is_none());
        assert!(s.pointer("/spec/volumeClaimTemplates/1/status").is_none());
        assert_eq!(s["spec"]["replicas"], 2);
        assert_eq!(s["kind"], "StatefulSet");
    }

    #[test]
    fn with_claim_size_changes_only_the_named_template() {
        let out = with_claim_size(&sts(), "data", "2Gi").unwrap();
        assert_eq!(claim_size(&out, "data").as_deref(), Some("2Gi"));
        assert_eq!(claim_size(&out, "other").as_deref(), Some("1Gi"));
        assert!(out.pointer("/metadata/uid").is_none());
        assert_eq!(
            with_claim_size(&sts(), "nope", "2Gi"),
            Err(MissingTemplate("nope".into()))
        );
        assert!(with_claim_size(&json!({"spec": {}}), "data", "2Gi").is_err());
    }

    #[test]
    fn with_claim_size_fills_a_template_without_resources() {
        let bare = json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}}]}});
        let out = with_claim_size(&bare, "data", "5Gi").unwrap();
        assert_eq!(claim_size(&out, "data").as_deref(), Some("5Gi"));
    }

    #[test]
    fn strip_pod_keeps_what_kubedb_keeps() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "zk-0", "namespace": "demo", "uid": "u", "resourceVersion": "9",
                "labels": {"a": "b"}, "annotations": {"c": "d"}, "finalizers": ["f"], "deletionTimestamp": null},
            "spec": {"containers": [{"name": "zk", "image": "zk"}]},
            "status": {"phase": "Running"}
        });
        let s = strip_pod(&pod);
        assert_eq!(
            s,
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "zk-0", "namespace": "demo", "labels": {"a": "b"},
                    "annotations": {"c": "d"}, "finalizers": ["f"]},
                "spec": {"containers": [{"name": "zk", "image": "zk"}]}})
        );
    }
}
