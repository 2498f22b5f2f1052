//! Storage: PV provisioning/binding, the volume resizer, PVC helpers.

pub mod provisioner;
pub mod resize;
pub mod resizer;

use crate::quantity;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::reflector::{ObjectRef, Store};

/// The PVC's storage request as written.
pub fn request_str(pvc: &PersistentVolumeClaim) -> Option<String> {
    pvc.spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .map(|q| q.0.clone())
}

/// The PVC's storage request in bytes.
pub fn request(pvc: &PersistentVolumeClaim) -> Option<i128> {
    quantity::parse(&request_str(pvc)?)
}

/// status.capacity.storage in bytes.
pub fn capacity(pvc: &PersistentVolumeClaim) -> Option<i128> {
    quantity::parse(&pvc.status.as_ref()?.capacity.as_ref()?.get("storage")?.0)
}

/// status.allocatedResources.storage in bytes.
pub fn allocated(pvc: &PersistentVolumeClaim) -> Option<i128> {
    quantity::parse(
        &pvc.status
            .as_ref()?
            .allocated_resources
            .as_ref()?
            .get("storage")?
            .0,
    )
}

/// The class of a PVC: spec.storageClassName, else the default class (as the
/// DefaultStorageClass admission plugin would have set).
pub fn class_of(
    pvc: &PersistentVolumeClaim,
    classes: &Store<StorageClass>,
) -> Option<std::sync::Arc<StorageClass>> {
    match pvc.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()) {
        Some("") => None,
        Some(name) => classes.get(&ObjectRef::new(name)),
        None => classes.find(|sc| {
            sc.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("storageclass.kubernetes.io/is-default-class"))
                .is_some_and(|v| v == "true")
        }),
    }
}
