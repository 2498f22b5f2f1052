//! What the workload caches keep of one StatefulSet or PetSet: the few metadata fields the
//! steps read from a cached workload (whether it exists, its UID, whether it is going, and
//! its owners). A full metadata copy (labels, annotations, managedFields, and the store key's
//! `ApiResource`) cost about 1.5 KB per workload; this is a fifth of that
//! (docs/ARCHITECTURE.md, "What each cache holds").

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::{
    api::{DynamicObject, TypeMeta},
    core::PartialObjectMeta,
};
use volops_shared::{WorkloadKind, index::Named};

/// One cached workload.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadView {
    pub name: String,
    pub uid: Option<String>,
    pub deletion_timestamp: Option<Time>,
    pub owner_references: Option<Box<[OwnerReference]>>,
}

impl Named for WorkloadView {
    fn name(&self) -> &str {
        &self.name
    }
}

impl WorkloadView {
    pub fn from_meta(meta: &PartialObjectMeta<DynamicObject>) -> Self {
        let m = &meta.metadata;
        Self {
            name: m.name.clone().unwrap_or_default(),
            uid: m.uid.clone(),
            deletion_timestamp: m.deletion_timestamp.clone(),
            owner_references: m.owner_references.as_deref().map(Box::from),
        }
    }

    /// The workload as a metadata-only object of `kind` in `namespace` (no spec: the steps
    /// read it from the API server when they need it).
    pub fn to_object(&self, kind: WorkloadKind, namespace: &str) -> DynamicObject {
        let ar = kind.resource();
        DynamicObject {
            types: Some(TypeMeta {
                api_version: ar.api_version,
                kind: ar.kind,
            }),
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(namespace.to_owned()),
                uid: self.uid.clone(),
                deletion_timestamp: self.deletion_timestamp.clone(),
                owner_references: self.owner_references.as_deref().map(<[_]>::to_vec),
                ..ObjectMeta::default()
            },
            data: serde_json::Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_workload_keeps_what_the_steps_read_and_nothing_else() {
        let meta: PartialObjectMeta<DynamicObject> = serde_json::from_value(serde_json::json!({
            "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
            "metadata": {
                "name": "rd-0", "namespace": "db", "uid": "u-1",
                "deletionTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"app.kubernetes.io/instance": "rd"},
                "annotations": {"big": "x"},
                "managedFields": [{"manager": "kubedb", "operation": "Update"}],
                "ownerReferences": [{"apiVersion": "kubedb.com/v1", "kind": "Redis", "name": "rd",
                                     "uid": "db-1", "controller": true}],
            }
        }))
        .unwrap();
        let view = WorkloadView::from_meta(&meta);
        let obj = view.to_object(WorkloadKind::StatefulSet, "db");
        assert_eq!(obj.metadata.name.as_deref(), Some("rd-0"));
        assert_eq!(obj.metadata.namespace.as_deref(), Some("db"));
        assert_eq!(obj.metadata.uid.as_deref(), Some("u-1"));
        assert!(obj.metadata.deletion_timestamp.is_some());
        assert_eq!(obj.metadata.owner_references, meta.metadata.owner_references);
        assert_eq!(obj.types.as_ref().map(|t| t.kind.as_str()), Some("StatefulSet"));
        assert!(obj.metadata.labels.is_none() && obj.metadata.annotations.is_none());
        assert!(obj.metadata.managed_fields.is_none());
        assert!(obj.data.is_null(), "no spec: the steps read it when they save it");
    }
}
