//! Small helpers shared by the controllers.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::controller::Action;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// apps/v1 StatefulSet.
pub fn statefulset_ar() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps", "v1", "StatefulSet"),
        "statefulsets",
    )
}

/// KubeDB's PetSet (a StatefulSet-shaped CRD).
pub fn petset_ar() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps.k8s.appscode.com", "v1", "PetSet"),
        "petsets",
    )
}

/// kubedb.com/v1 Redis.
pub fn redis_ar() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("kubedb.com", "v1", "Redis"), "redises")
}

/// kubedb.com/v1alpha2 ZooKeeper.
pub fn zookeeper_ar() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubedb.com", "v1alpha2", "ZooKeeper"),
        "zookeepers",
    )
}

/// Now as a metav1.Time.
pub fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// Now as the RFC 3339 string the API uses.
pub fn now_string() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A controller ownerReference pointing at `owner`.
pub fn controller_ref(ar: &ApiResource, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The controller ownerReference of an object, if any.
pub fn controller_of(refs: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    refs?.iter().find(|r| r.controller == Some(true))
}

/// `matchLabels` all present in `labels` (matchExpressions are not used by the simulated workloads).
pub fn selector_matches(
    match_labels: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    if match_labels.is_empty() {
        return false;
    }
    let Some(labels) = labels else { return false };
    match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A JSON object as string map (labels, matchLabels).
pub fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Field of a dynamic object's data by JSON pointer.
pub fn field<'a>(obj: &'a DynamicObject, pointer: &str) -> Option<&'a Value> {
    obj.data.pointer(pointer)
}

/// Requeue soon after an error (the API or a fault injector said no).
pub fn retry_action() -> Action {
    Action::requeue(Duration::from_millis(250))
}

/// Label/field safe `ns/name` key.
pub fn key(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_needs_every_label() {
        let sel: BTreeMap<String, String> = [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        let full: BTreeMap<String, String> = [
            ("a".into(), "1".into()),
            ("b".into(), "2".into()),
            ("c".into(), "3".into()),
        ]
        .into();
        let partial: BTreeMap<String, String> = [("a".into(), "1".into())].into();
        assert!(selector_matches(&sel, Some(&full)));
        assert!(!selector_matches(&sel, Some(&partial)));
        assert!(!selector_matches(&sel, None));
        assert!(
            !selector_matches(&BTreeMap::new(), Some(&full)),
            "empty selector selects nothing"
        );
    }
}
