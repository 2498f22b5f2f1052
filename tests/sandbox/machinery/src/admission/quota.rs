//! ResourceQuota for PersistentVolumeClaims, as kube's quota admission plugin and PVC
//! evaluator compute it (storage usage = max(spec request, status.allocatedResources), the
//! RecoverVolumeExpansionFailure rule).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{AdmissionAttributes, ObjectLookup, Operation};
use crate::error::ApiError;
use crate::quantity::Quantity;

/// Resource name -> quantity.
pub type ResourceList = BTreeMap<String, Quantity>;

const CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// The StorageClass name of a PVC (spec, else the beta annotation).
pub(crate) fn pvc_class(pvc: &Value) -> String {
    pvc.pointer("/spec/storageClassName")
        .and_then(Value::as_str)
        .or_else(|| {
            pvc.pointer("/metadata/annotations")
                .and_then(|a| a.get(CLASS_ANNOTATION))
                .and_then(Value::as_str)
        })
        .unwrap_or("")
        .to_string()
}

fn quantity_at(v: &Value, pointer: &str) -> Option<Quantity> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .and_then(|s| Quantity::parse(s).ok())
}

/// The storage a PVC is charged for.
pub(crate) fn pvc_storage(pvc: &Value) -> Quantity {
    let spec = quantity_at(pvc, "/spec/resources/requests/storage").unwrap_or_else(Quantity::zero);
    match quantity_at(pvc, "/status/allocatedResources/storage") {
        Some(a) if a > spec => a,
        _ => spec,
    }
}

fn pvc_usage(pvc: &Value) -> ResourceList {
    let storage = pvc_storage(pvc);
    let one = Quantity::from_units(1);
    let mut u = ResourceList::new();
    u.insert("persistentvolumeclaims".into(), one);
    u.insert("count/persistentvolumeclaims".into(), one);
    u.insert("requests.storage".into(), storage);
    let class = pvc_class(pvc);
    if !class.is_empty() {
        let prefix = format!("{class}.storageclass.storage.k8s.io/");
        u.insert(format!("{prefix}requests.storage"), storage);
        u.insert(format!("{prefix}persistentvolumeclaims"), one);
    }
    u
}

/// Current PVC usage of a namespace: every resource name the PVC evaluator knows.
pub fn quota_usage(namespace: &str, lookup: &dyn ObjectLookup) -> ResourceList {
    let mut total = ResourceList::new();
    for pvc in lookup.list("", "persistentvolumeclaims", Some(namespace)) {
        for (k, v) in pvc_usage(&pvc) {
            let sum = total.get(&k).map_or(v, |t| t.add(&v));
            total.insert(k, sum);
        }
    }
    total
}

/// `status.used` for a ResourceQuota object: its `spec.hard` names with PVC-derived usage
/// (names the PVC evaluator does not track are left out).
pub fn quota_used(quota: &Value, lookup: &dyn ObjectLookup) -> Value {
    let ns = quota
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let usage = quota_usage(ns, lookup);
    let mut out = Map::new();
    for k in hard(quota).keys() {
        if tracked(k) {
            let v = usage.get(k).copied().unwrap_or_else(Quantity::zero);
            out.insert(k.clone(), Value::String(v.canonical()));
        }
    }
    Value::Object(out)
}

fn tracked(name: &str) -> bool {
    matches!(
        name,
        "persistentvolumeclaims" | "count/persistentvolumeclaims" | "requests.storage"
    ) || name.ends_with(".storageclass.storage.k8s.io/requests.storage")
        || name.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims")
}

fn hard(quota: &Value) -> ResourceList {
    quota
        .pointer("/spec/hard")
        .or_else(|| quota.pointer("/status/hard"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), Quantity::parse(v.as_str()?).ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn pretty(list: &ResourceList, names: &[String]) -> String {
    names
        .iter()
        .filter_map(|n| list.get(n).map(|q| format!("{n}={q}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// kube's ResourceQuota admission for PVC create and update: 403 `exceeded quota: ...`.
pub(crate) fn admit(attrs: &AdmissionAttributes, lookup: &dyn ObjectLookup) -> Result<(), ApiError> {
    if !attrs.group.is_empty() || attrs.resource != "persistentvolumeclaims" || !attrs.subresource.is_empty()
    {
        return Ok(());
    }
    let (Some(obj), Some(ns)) = (&attrs.object, &attrs.namespace) else {
        return Ok(());
    };
    let mut delta = pvc_usage(obj);
    match (attrs.operation, &attrs.old_object) {
        (Operation::Create, _) => {}
        (Operation::Update, Some(old)) => {
            let prev = pvc_usage(old);
            for (k, v) in delta.iter_mut() {
                let p = prev.get(k).copied().unwrap_or_else(Quantity::zero);
                *v = if *v > p { v.sub(&p) } else { Quantity::zero() };
            }
        }
        _ => return Ok(()),
    }
    delta.retain(|_, v| !v.is_zero());
    if delta.is_empty() {
        return Ok(());
    }
    let mut quotas = lookup.list("", "resourcequotas", Some(ns));
    quotas.sort_by_key(|q| {
        q.pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    // Like kube's quota admission, only quotas that limit a resource of this change count; with
    // none, the namespace's usage is never summed (that sum is O(PVCs) per PVC write).
    if !quotas
        .iter()
        .any(|q| hard(q).keys().any(|k| delta.contains_key(k)))
    {
        return Ok(());
    }
    let used = quota_usage(ns, lookup);
    for q in &quotas {
        let hard = hard(q);
        let mut exceeded: Vec<String> = Vec::new();
        for (k, d) in &delta {
            let Some(h) = hard.get(k) else { continue };
            let u = used.get(k).copied().unwrap_or_else(Quantity::zero);
            if u.add(d) > *h {
                exceeded.push(k.clone());
            }
        }
        if exceeded.is_empty() {
            continue;
        }
        let name = q.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        let mut used_masked = ResourceList::new();
        for k in &exceeded {
            used_masked.insert(k.clone(), used.get(k).copied().unwrap_or_else(Quantity::zero));
        }
        let msg = format!(
            "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
            pretty(&delta, &exceeded),
            pretty(&used_masked, &exceeded),
            pretty(&hard, &exceeded)
        );
        return Err(ApiError::forbidden(&attrs.group_resource(), &attrs.name, &msg));
    }
    Ok(())
}
