//! kube-apiserver's own checks that volops meets when it grows volumes: PVC update
//! validation, the PersistentVolumeClaimResize plugin, ResourceQuota, StatefulSet spec
//! immutability, and webhook configurations on write. Messages are kube-apiserver's.

use serde_json::{Map, Value};

use super::quota::{self, pvc_class};
use super::webhook_config::validate_webhook_configuration;
use super::{AdmissionAttributes, ObjectLookup, Operation};
use crate::error::{ApiError, FieldCause};
use crate::quantity::Quantity;

pub use super::quota::{quota_usage, quota_used};

/// All built-in checks in kube-apiserver's order: object validation (422), then the
/// PersistentVolumeClaimResize plugin (403), then ResourceQuota (403). In kube-apiserver
/// validating webhooks run between the resize plugin and ResourceQuota.
pub fn validate(attrs: &AdmissionAttributes, lookup: &dyn ObjectLookup) -> Result<(), ApiError> {
    validate_object(attrs)?;
    admit_pvc_resize(attrs, lookup)?;
    quota::admit(attrs, lookup)
}

/// Strategy validation (what the registry rejects with 422 Invalid before validating
/// admission runs).
pub fn validate_object(attrs: &AdmissionAttributes) -> Result<(), ApiError> {
    if !attrs.subresource.is_empty() {
        return Ok(());
    }
    if attrs.group == "admissionregistration.k8s.io"
        && let Some(new) = &attrs.object
    {
        let mutating = match attrs.resource.as_str() {
            "mutatingwebhookconfigurations" => true,
            "validatingwebhookconfigurations" => false,
            _ => return Ok(()),
        };
        let causes = validate_webhook_configuration(new, attrs.old_object.as_ref(), mutating);
        if causes.is_empty() {
            return Ok(());
        }
        return Err(ApiError::invalid(&attrs.kind, &attrs.group, &attrs.name, causes));
    }
    if attrs.operation != Operation::Update {
        return Ok(());
    }
    let (Some(new), Some(old)) = (&attrs.object, &attrs.old_object) else {
        return Ok(());
    };
    let causes = match (attrs.group.as_str(), attrs.resource.as_str()) {
        ("", "persistentvolumeclaims") => pvc_update_causes(new, old),
        ("apps", "statefulsets") => statefulset_update_causes(new, old),
        _ => Vec::new(),
    };
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&attrs.kind, &attrs.group, &attrs.name, causes))
    }
}

fn storage(v: &Value, pointer: &str) -> Option<Quantity> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .and_then(|s| Quantity::parse(s).ok())
}

const REQUEST: &str = "/spec/resources/requests/storage";
const STORAGE_FIELD: &str = "spec.resources.requests.storage";

/// The parts of a PVC spec that may not change: everything but the storage request and
/// volumeAttributesClassName; `volumeName` and `storageClassName` may be set once.
fn fixed_pvc_spec(pvc: &Value, old: &Value) -> Map<String, Value> {
    let mut m = pvc
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(requests) = m
        .get_mut("resources")
        .and_then(|r| r.get_mut("requests"))
        .and_then(Value::as_object_mut)
    {
        requests.remove("storage");
    }
    m.remove("volumeAttributesClassName");
    for once in ["volumeName", "storageClassName"] {
        if old
            .pointer(&format!("/spec/{once}"))
            .is_none_or(|v| v.is_null() || v == "")
        {
            m.remove(once);
        }
    }
    m.retain(|_, v| !v.is_null());
    m
}

const PVC_SPEC_IMMUTABLE: &str = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims";

/// ValidatePersistentVolumeClaimUpdate with RecoverVolumeExpansionFailure on (default since
/// 1.32): a bound claim may be lowered, but never to status.capacity or below; an unbound
/// claim's request is immutable; other spec fields are immutable. Fields missing from the
/// new object are not counted as changes (the sandbox does not re-apply kube's defaults).
fn pvc_update_causes(new: &Value, old: &Value) -> Vec<FieldCause> {
    let zero = Quantity::zero();
    let new_size = storage(new, REQUEST).unwrap_or(zero);
    let old_size = storage(old, REQUEST).unwrap_or(zero);
    let bound = old.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
    let (fixed_new, fixed_old) = (fixed_pvc_spec(new, old), fixed_pvc_spec(old, old));
    let spec_changed = fixed_new.iter().any(|(k, v)| match fixed_old.get(k) {
        Some(o) => o != v,
        // kube would have defaulted volumeMode on create.
        None => !(k == "volumeMode" && v == "Filesystem"),
    });
    let mut causes = Vec::new();
    if spec_changed || (!bound && new_size != old_size) {
        causes.push(FieldCause::forbidden("spec", PVC_SPEC_IMMUTABLE));
    }
    let capacity = storage(old, "/status/capacity/storage").unwrap_or(zero);
    if bound && new_size < old_size && new_size <= capacity {
        causes.push(FieldCause::forbidden(
            STORAGE_FIELD,
            "field can not be less than status.capacity",
        ));
    }
    causes
}

const STS_MUTABLE: [&str; 6] = [
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

fn sts_fixed_part(obj: &Value) -> Map<String, Value> {
    obj.get("spec")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, v)| !STS_MUTABLE.contains(&k.as_str()) && !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn statefulset_update_causes(new: &Value, old: &Value) -> Vec<FieldCause> {
    if sts_fixed_part(new) == sts_fixed_part(old) {
        return Vec::new();
    }
    vec![FieldCause::forbidden(
        "spec",
        "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    )]
}

/// The PersistentVolumeClaimResize admission plugin: growing needs a bound claim whose
/// StorageClass (unchanged, existing) has `allowVolumeExpansion: true`.
pub fn admit_pvc_resize(attrs: &AdmissionAttributes, lookup: &dyn ObjectLookup) -> Result<(), ApiError> {
    if attrs.operation != Operation::Update
        || !attrs.group.is_empty()
        || attrs.resource != "persistentvolumeclaims"
        || !attrs.subresource.is_empty()
    {
        return Ok(());
    }
    let (Some(new), Some(old)) = (&attrs.object, &attrs.old_object) else {
        return Ok(());
    };
    let zero = Quantity::zero();
    if storage(new, REQUEST).unwrap_or(zero) <= storage(old, REQUEST).unwrap_or(zero) {
        return Ok(());
    }
    let forbid = |msg: &str| Err(ApiError::forbidden(&attrs.group_resource(), &attrs.name, msg));
    if old.pointer("/status/phase").and_then(Value::as_str) != Some("Bound") {
        return forbid("Only bound persistent volume claims can be expanded");
    }
    let (class, old_class) = (pvc_class(new), pvc_class(old));
    let allowed = !class.is_empty()
        && class == old_class
        && lookup
            .get("storage.k8s.io", "storageclasses", None, &class)
            .and_then(|sc| sc.get("allowVolumeExpansion").and_then(Value::as_bool))
            .unwrap_or(false);
    if allowed {
        Ok(())
    } else {
        forbid(
            "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
        )
    }
}

/// ResourceQuota admission on its own (kube runs it last, after validating webhooks).
pub fn admit_quota(attrs: &AdmissionAttributes, lookup: &dyn ObjectLookup) -> Result<(), ApiError> {
    quota::admit(attrs, lookup)
}
