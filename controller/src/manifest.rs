//! Pure rewrites of saved objects: what is kept of a workload or pod before it is deleted, and
//! how a saved workload is turned back into one to create with a new claim size.

use serde_json::{Map, Value, json};
use volops_shared::WorkloadKind;

/// Kubernetes allows at most 63 characters in the name part of an annotation key.
const KEY_NAME_MAX: usize = 63;

/// `volops.dev/<head><name>`. Where that name part would pass 63 characters (long database
/// names), the object's name is cut and a hash of the whole name keeps the key unique.
fn bounded_key(head: &str, name: &str) -> String {
    if head.len() + name.len() <= KEY_NAME_MAX {
        return format!("volops.dev/{head}{name}");
    }
    let hash = format!("{:016x}", fnv1a(name));
    let keep = KEY_NAME_MAX.saturating_sub(head.len() + 1 + hash.len());
    let cut: String = name.chars().take(keep).collect();
    format!("volops.dev/{head}{cut}-{hash}")
}

/// FNV-1a, 64 bits: stable across Rust versions and processes (a key written by one
/// controller is looked up by the next).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Annotation on the ops request that holds a workload's manifest while it is orphan-deleted
/// (the manifest carries the workload's name; the key may hold only part of it).
pub fn workload_key(kind: WorkloadKind, name: &str) -> String {
    bounded_key(&format!("workload.{}.", kind.kind().to_ascii_lowercase()), name)
}

/// Annotation on the ops request that holds the UID of a pod Offline mode is about to delete,
/// so a restarted controller can tell the old pod (delete it) from the recreated one (keep it).
pub fn pod_uid_key(pod: &str) -> String {
    bounded_key("pod-uid.", pod)
}

/// The kind of workload a saved-manifest annotation key holds, if it is one.
pub fn saved_workload_kind(key: &str) -> Option<WorkloadKind> {
    let rest = key.strip_prefix("volops.dev/workload.")?;
    let (kind, _) = rest.split_once('.')?;
    [WorkloadKind::StatefulSet, WorkloadKind::PetSet]
        .into_iter()
        .find(|k| k.kind().eq_ignore_ascii_case(kind))
}

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

/// A pod as KubeDB saves it in `volumeexpansion.ops.kubedb.com/<pod>` (KUBEDB.md §3.3 5.1).
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

    #[test]
    fn workload_keys_round_trip() {
        let k = workload_key(WorkloadKind::PetSet, "zk");
        assert_eq!(k, "volops.dev/workload.petset.zk");
        assert_eq!(saved_workload_kind(&k), Some(WorkloadKind::PetSet));
        let k = workload_key(WorkloadKind::StatefulSet, "rd-shard1");
        assert_eq!(k, "volops.dev/workload.statefulset.rd-shard1");
        assert_eq!(saved_workload_kind(&k), Some(WorkloadKind::StatefulSet));
        assert_eq!(saved_workload_kind("volops.dev/pod-uid.zk-0"), None);
        assert_eq!(pod_uid_key("zk-0"), "volops.dev/pod-uid.zk-0");
    }

    #[test]
    fn keys_of_long_names_stay_within_63_characters_and_apart() {
        let long = "a-database-name-that-is-long-enough-to-matter-shard1";
        let other = "a-database-name-that-is-long-enough-to-matter-shard2";
        for kind in [WorkloadKind::StatefulSet, WorkloadKind::PetSet] {
            let (k, k2) = (workload_key(kind, long), workload_key(kind, other));
            let name_part = k.strip_prefix("volops.dev/").unwrap_or_default();
            assert!(name_part.len() <= 63, "{k}");
            assert_ne!(k, k2);
            assert_eq!(workload_key(kind, long), k, "the same name gives the same key");
            assert_eq!(saved_workload_kind(&k), Some(kind));
        }
        let pod = format!("{long}-0");
        let k = pod_uid_key(&pod);
        assert!(k.len() - "volops.dev/".len() <= 63, "{k}");
        assert!(k.starts_with("volops.dev/pod-uid.a-database-name"), "{k}");
        // Exactly 63 still fits unchanged.
        let fits = "p".repeat(63 - "pod-uid.".len());
        assert_eq!(pod_uid_key(&fits), format!("volops.dev/pod-uid.{fits}"));
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
