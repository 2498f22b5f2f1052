//! Identity before every destructive act (controller/DESIGN-NOTES.md, "Ownership"): names and
//! labels are anyone's to write, so a workload is the database's only if its controller
//! ownerReference carries the database's UID (as KubeDB sets it), a pod only if its verified
//! workload controls it, and whatever is recreated gets back exactly the identity saved. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::DynamicObject;
use serde_json::{Value, json};
use volops_shared::{DatabaseKind, WorkloadKind, descriptor::MAX_PODS};

use crate::{
    manifest::{strip_pod, strip_workload, with_claim_size},
    saved::{SavedState, SavedWorkload},
};

/// Why the controller refuses to act on an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The database a request acts on, as admitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseId {
    pub kind: DatabaseKind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl DatabaseId {
    fn describe(&self) -> String {
        format!(
            "{} {}/{} (uid {})",
            self.kind.kind(),
            self.namespace,
            self.name,
            self.uid
        )
    }
}

/// The controller ownerReference among `refs`, if any.
pub fn controller_of(refs: Option<&[OwnerReference]>) -> Option<&OwnerReference> {
    refs?.iter().find(|r| r.controller == Some(true))
}

/// Whether the controller ownerReference names an object of `kind` with this UID.
pub fn controlled_by(refs: Option<&[OwnerReference]>, kind: &str, uid: &str) -> bool {
    !uid.is_empty() && controller_of(refs).is_some_and(|r| r.kind == kind && r.uid == uid)
}

/// A live workload checked to be the database's, as it is saved before its orphan delete.
pub fn verify_workload(
    kind: WorkloadKind,
    obj: &DynamicObject,
    claim_template: &str,
    db: &DatabaseId,
) -> Result<SavedWorkload, Refused> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let what = format!("{} {}/{name}", kind.kind(), db.namespace);
    if !controlled_by(obj.metadata.owner_references.as_deref(), db.kind.kind(), &db.uid) {
        return Err(Refused(format!(
            "{what} is not controlled by {}; refusing to touch it",
            db.describe()
        )));
    }
    let uid = obj
        .metadata
        .uid
        .clone()
        .ok_or_else(|| Refused(format!("{what} has no uid")))?;
    let full = serde_json::to_value(obj).map_err(|e| Refused(format!("{what}: {e}")))?;
    let manifest = strip_workload(&full);
    let has_template = manifest
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .is_some_and(|ts| {
            ts.iter()
                .any(|t| t.pointer("/metadata/name").and_then(Value::as_str) == Some(claim_template))
        });
    if !has_template {
        return Err(Refused(format!(
            "{what} has no volume claim template {claim_template:?}"
        )));
    }
    let replicas = manifest
        .pointer("/spec/replicas")
        .map_or(Some(1), Value::as_i64)
        .unwrap_or(-1);
    if !(0..=MAX_PODS).contains(&replicas) {
        return Err(Refused(format!(
            "{what} has spec.replicas {replicas}; volops handles 0 to {MAX_PODS}"
        )));
    }
    Ok(SavedWorkload {
        name,
        kind,
        uid,
        claim_template: claim_template.to_owned(),
        // Within 0..=MAX_PODS, so it fits.
        replicas: i32::try_from(replicas).unwrap_or(0),
        manifest,
    })
}

/// A saved workload ready to create again with `size` in its claim template, in the request's
/// namespace, under its own name, controlled by the database it was saved from.
pub fn restorable_workload(w: &SavedWorkload, size: &str, db: &DatabaseId) -> Result<Value, Refused> {
    let what = format!("{} {}/{}", w.kind.kind(), db.namespace, w.name);
    let mut out =
        with_claim_size(&w.manifest, &w.claim_template, size).map_err(|e| Refused(format!("{what}: {e}")))?;
    let same = |pointer: &str, want: &str| out.pointer(pointer).and_then(Value::as_str) == Some(want);
    if !same("/metadata/name", &w.name)
        || !same("/kind", w.kind.kind())
        || !same("/apiVersion", w.kind.api_version())
    {
        return Err(Refused(format!(
            "{what}: the saved manifest names another object"
        )));
    }
    let refs: Option<Vec<OwnerReference>> = out
        .pointer("/metadata/ownerReferences")
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let ours = controller_of(refs.as_deref())
        .is_some_and(|r| r.kind == db.kind.kind() && r.name == db.name && r.uid == db.uid);
    if !ours {
        return Err(Refused(format!(
            "{what}: the saved manifest is not controlled by {}",
            db.describe()
        )));
    }
    out["metadata"]["namespace"] = json!(db.namespace.as_str());
    Ok(out)
}

/// A saved pod ready to create again: a pod of a saved workload, in the request's namespace,
/// under its own name, without ownerReferences (its workload adopts it when it is back).
pub fn restorable_pod(
    state: &SavedState,
    name: &str,
    saved: &Value,
    namespace: &str,
) -> Result<Value, Refused> {
    let what = format!("Pod {namespace}/{name}");
    if !state.is_pod_of_saved_workload(name) {
        return Err(Refused(format!("{what} is not a pod of a saved workload")));
    }
    let mut out = strip_pod(saved);
    let same = |pointer: &str, want: &str| out.pointer(pointer).and_then(Value::as_str) == Some(want);
    if !same("/metadata/name", name) || !same("/kind", "Pod") || !same("/apiVersion", "v1") {
        return Err(Refused(format!(
            "{what}: the saved manifest names another object"
        )));
    }
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("ownerReferences");
        meta.insert("namespace".to_owned(), json!(namespace));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saved::{RequestIdentity, SavedPod};

    fn db() -> DatabaseId {
        DatabaseId {
            kind: DatabaseKind::Redis,
            namespace: "team".into(),
            name: "rd".into(),
            uid: "db-uid".into(),
        }
    }

    fn owner(kind: &str, name: &str, uid: &str, controller: bool) -> Value {
        json!({"apiVersion": "kubedb.com/v1", "kind": kind, "name": name, "uid": uid,
               "controller": controller, "blockOwnerDeletion": true})
    }

    fn sts(owners: Vec<Value>) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "rd", "namespace": "team", "uid": "sts-uid", "ownerReferences": owners},
            "spec": {"replicas": 3, "volumeClaimTemplates": [
                {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_workload_is_the_database_s_only_by_its_controller_reference() {
        let saved = verify_workload(
            WorkloadKind::StatefulSet,
            &sts(vec![owner("Redis", "rd", "db-uid", true)]),
            "data",
            &db(),
        )
        .unwrap();
        assert_eq!((saved.uid.as_str(), saved.replicas), ("sts-uid", 3));
        assert_eq!(saved.claim_template, "data");
        let refused = [
            vec![],
            vec![owner("Redis", "rd", "db-uid", false)],
            vec![owner("Redis", "rd", "another-uid", true)],
            vec![owner("ZooKeeper", "rd", "db-uid", true)],
            vec![
                owner("Redis", "rd", "db-uid", false),
                owner("Deployment", "x", "y", true),
            ],
        ];
        for owners in refused {
            let e =
                verify_workload(WorkloadKind::StatefulSet, &sts(owners.clone()), "data", &db()).unwrap_err();
            assert!(
                e.0.starts_with("StatefulSet team/rd is not controlled by Redis team/rd (uid db-uid)"),
                "{owners:?}: {e}"
            );
        }
        let ok = sts(vec![owner("Redis", "rd", "db-uid", true)]);
        let e = verify_workload(WorkloadKind::StatefulSet, &ok, "rd-data", &db()).unwrap_err();
        assert!(e.0.contains("no volume claim template \"rd-data\""), "{e}");
        let mut huge = ok.clone();
        huge.data["spec"]["replicas"] = json!(50_000_000);
        let e = verify_workload(WorkloadKind::StatefulSet, &huge, "data", &db()).unwrap_err();
        assert!(e.0.contains("spec.replicas 50000000"), "{e}");
        assert!(!controlled_by(None, "Redis", ""), "an empty uid is nobody's");
    }

    fn saved_workload() -> SavedWorkload {
        verify_workload(
            WorkloadKind::StatefulSet,
            &sts(vec![owner("Redis", "rd", "db-uid", true)]),
            "data",
            &db(),
        )
        .unwrap()
    }

    #[test]
    fn a_restored_workload_keeps_the_identity_it_was_saved_with() {
        let w = saved_workload();
        let out = restorable_workload(&w, "2Gi", &db()).unwrap();
        assert_eq!(out["metadata"]["namespace"], "team");
        assert_eq!(
            out.pointer("/spec/volumeClaimTemplates/0/spec/resources/requests/storage"),
            Some(&json!("2Gi"))
        );
        let mut other_ns = w.clone();
        other_ns.manifest["metadata"]["namespace"] = json!("kube-system");
        assert_eq!(
            restorable_workload(&other_ns, "2Gi", &db()).unwrap()["metadata"]["namespace"],
            "team",
            "the namespace is the request's, whatever the manifest says"
        );
        let mut renamed = w.clone();
        renamed.manifest["metadata"]["name"] = json!("evil");
        assert!(restorable_workload(&renamed, "2Gi", &db()).is_err());
        let mut kind = w.clone();
        kind.manifest["kind"] = json!("DaemonSet");
        assert!(restorable_workload(&kind, "2Gi", &db()).is_err());
        let mut orphan = w.clone();
        orphan.manifest["metadata"]["ownerReferences"] = json!([]);
        assert!(restorable_workload(&orphan, "2Gi", &db()).is_err());
        let other_db = DatabaseId {
            uid: "new-uid".into(),
            ..db()
        };
        assert!(
            restorable_workload(&w, "2Gi", &other_db).is_err(),
            "a database created again under the same name is another one"
        );
    }

    #[test]
    fn a_restored_pod_is_one_of_a_saved_workload_s_pods_in_the_request_s_namespace() {
        let mut state = SavedState::new(RequestIdentity::default());
        state.workloads.push(saved_workload());
        state.pods.insert("rd-0".into(), SavedPod::default());
        let pod = |name: &str| {
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "namespace": "elsewhere", "uid": "u",
                                "ownerReferences": [owner("StatefulSet", "rd", "sts-uid", true)]},
                   "spec": {"containers": [{"name": "redis", "image": "redis"}]}})
        };
        let out = restorable_pod(&state, "rd-2", &pod("rd-2"), "team").unwrap();
        assert_eq!(out["metadata"]["namespace"], "team");
        assert!(out["metadata"].get("ownerReferences").is_none());
        assert!(out["metadata"].get("uid").is_none());
        assert!(
            restorable_pod(&state, "rd-3", &pod("rd-3"), "team").is_err(),
            "past the replicas"
        );
        assert!(restorable_pod(&state, "evil-0", &pod("evil-0"), "team").is_err());
        assert!(
            restorable_pod(&state, "rd-1", &pod("evil-0"), "team").is_err(),
            "the manifest names another pod"
        );
    }
}
