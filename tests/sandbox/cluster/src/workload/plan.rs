//! Pure StatefulSet/PetSet logic: names, pod and claim objects, the next step.

use crate::util::{controller_ref, string_map};
use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The parts of a set's spec the controller uses.
#[derive(Debug, Clone)]
pub struct SetView {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub generation: i64,
    pub replicas: i64,
    pub match_labels: BTreeMap<String, String>,
    pub template: Value,
    pub claim_templates: Vec<Value>,
    pub service_name: Option<String>,
}

impl SetView {
    /// Reads a set; `None` if it has no uid yet (never the case for stored objects).
    pub fn parse(obj: &DynamicObject) -> Option<Self> {
        let spec = obj.data.get("spec").cloned().unwrap_or(Value::Null);
        Some(Self {
            name: obj.name_any(),
            namespace: obj.namespace().unwrap_or_default(),
            uid: obj.uid()?,
            generation: obj.metadata.generation.unwrap_or(0),
            replicas: spec.get("replicas").and_then(Value::as_i64).unwrap_or(1),
            match_labels: string_map(spec.pointer("/selector/matchLabels")),
            template: spec.get("template").cloned().unwrap_or(Value::Null),
            claim_templates: spec
                .get("volumeClaimTemplates")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            service_name: spec.get("serviceName").and_then(Value::as_str).map(str::to_owned),
        })
    }

    /// `<set>-<i>`.
    pub fn pod_name(&self, i: i64) -> String {
        format!("{}-{i}", self.name)
    }

    /// The ordinal of a pod of this set, from its name.
    pub fn ordinal_of(&self, pod_name: &str) -> Option<i64> {
        let rest = pod_name.strip_prefix(&self.name)?.strip_prefix('-')?;
        if rest.is_empty()
            || !rest.bytes().all(|b| b.is_ascii_digit())
            || (rest.len() > 1 && rest.starts_with('0'))
        {
            return None;
        }
        rest.parse().ok()
    }

    /// `<template>-<set>-<i>` for every claim template.
    pub fn claim_names(&self, i: i64) -> Vec<(String, String)> {
        self.claim_templates
            .iter()
            .filter_map(|t| t.pointer("/metadata/name").and_then(Value::as_str))
            .map(|t| (t.to_owned(), format!("{t}-{}-{i}", self.name)))
            .collect()
    }

    /// The PVC for claim template `tmpl` and ordinal `i`: template labels plus the selector's
    /// matchLabels; no ownerReference (retention policy Retain).
    pub fn claim(&self, tmpl: &Value, i: i64) -> Option<Value> {
        let tname = tmpl.pointer("/metadata/name")?.as_str()?;
        let mut labels = string_map(tmpl.pointer("/metadata/labels"));
        labels.extend(self.match_labels.clone());
        let mut meta = json!({
            "name": format!("{tname}-{}-{i}", self.name),
            "namespace": self.namespace,
            "labels": labels,
        });
        if let Some(a) = tmpl.pointer("/metadata/annotations") {
            meta["annotations"] = a.clone();
        }
        Some(json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": meta,
            "spec": tmpl.get("spec").cloned().unwrap_or_else(|| json!({})),
        }))
    }

    /// The pod for ordinal `i`, owned by the set.
    pub fn pod(&self, ar: &ApiResource, i: i64) -> Value {
        let name = self.pod_name(i);
        let mut labels = string_map(self.template.pointer("/metadata/labels"));
        labels.insert("statefulset.kubernetes.io/pod-name".into(), name.clone());
        labels.insert("apps.kubernetes.io/pod-index".into(), i.to_string());
        labels.insert(
            "controller-revision-hash".into(),
            format!("{}-{}", self.name, self.generation),
        );
        let mut spec = self.template.get("spec").cloned().unwrap_or_else(|| json!({}));
        if !spec.get("containers").is_some_and(Value::is_array) {
            spec["containers"] = json!([{"name": "main", "image": "sandbox/pause"}]);
        }
        spec["hostname"] = json!(name);
        if let Some(svc) = &self.service_name {
            spec["subdomain"] = json!(svc);
        }
        let mut volumes: Vec<Value> = spec
            .get("volumes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (tname, claim) in self.claim_names(i) {
            volumes.retain(|v| v.get("name").and_then(Value::as_str) != Some(&tname));
            volumes.push(json!({"name": tname, "persistentVolumeClaim": {"claimName": claim}}));
        }
        spec["volumes"] = json!(volumes);
        let mut meta = json!({
            "name": name,
            "namespace": self.namespace,
            "labels": labels,
            "ownerReferences": [controller_ref(ar, &self.name, &self.uid)],
        });
        if let Some(a) = self.template.pointer("/metadata/annotations") {
            meta["annotations"] = a.clone();
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
    }
}

/// What the controller knows about one member pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub ordinal: i64,
    pub ready: bool,
    pub terminating: bool,
}

/// The one thing to do next (OrderedReady: one pod at a time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create the PVCs (if missing) and pod for this ordinal.
    Create(i64),
    /// Delete the pod with this ordinal (scale down, highest first).
    Delete(i64),
    /// Wait for a pod to become Ready or finish terminating.
    Wait,
    /// Converged.
    Idle,
}

/// The next step for `replicas` given the owned members.
pub fn next_step(replicas: i64, members: &[Member]) -> Step {
    let find = |i: i64| members.iter().find(|m| m.ordinal == i);
    for i in 0..replicas.max(0) {
        match find(i) {
            None => return Step::Create(i),
            Some(m) if m.terminating || !m.ready => return Step::Wait,
            Some(_) => {}
        }
    }
    let mut extra: Vec<&Member> = members.iter().filter(|m| m.ordinal >= replicas).collect();
    if extra.iter().any(|m| m.terminating) {
        return Step::Wait;
    }
    extra.sort_by_key(|m| m.ordinal);
    match extra.last() {
        Some(m) => Step::Delete(m.ordinal),
        None => Step::Idle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::statefulset_ar;

    fn member(ordinal: i64, ready: bool) -> Member {
        Member {
            ordinal,
            ready,
            terminating: false,
        }
    }

    fn view() -> SetView {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db-shard0", "namespace": "ns", "uid": "u1", "generation": 3},
            "spec": {
                "replicas": 2, "serviceName": "db-pods",
                "selector": {"matchLabels": {"app": "db", "shard": "0"}},
                "template": {"metadata": {"labels": {"app": "db", "shard": "0", "extra": "x"}},
                             "spec": {"containers": [{"name": "redis", "image": "redis"}],
                                      "volumes": [{"name": "data", "emptyDir": {}}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": {"t": "1"}},
                                          "spec": {"resources": {"requests": {"storage": "1Gi"}}}}]
            }
        }))
        .expect("valid set");
        SetView::parse(&obj).expect("has uid")
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time() {
        assert_eq!(next_step(3, &[]), Step::Create(0));
        assert_eq!(next_step(3, &[member(0, false)]), Step::Wait);
        assert_eq!(next_step(3, &[member(0, true)]), Step::Create(1));
        assert_eq!(next_step(3, &[member(0, true), member(2, true)]), Step::Create(1));
        assert_eq!(next_step(2, &[member(0, true), member(1, true)]), Step::Idle);
    }

    #[test]
    fn scale_down_deletes_highest_first_and_waits_for_termination() {
        let ms = [member(0, true), member(1, true), member(2, true), member(3, true)];
        assert_eq!(next_step(2, &ms), Step::Delete(3));
        let mut term = ms.to_vec();
        term[3].terminating = true;
        assert_eq!(next_step(2, &term), Step::Wait);
        assert_eq!(next_step(0, &[member(0, false)]), Step::Delete(0));
    }

    #[test]
    fn names_follow_statefulset_conventions() {
        let v = view();
        assert_eq!(v.pod_name(1), "db-shard0-1");
        assert_eq!(v.ordinal_of("db-shard0-12"), Some(12));
        assert_eq!(v.ordinal_of("db-shard0-"), None);
        assert_eq!(v.ordinal_of("db-shard0-01"), None);
        assert_eq!(v.ordinal_of("db-shard01-1"), None);
        assert_eq!(
            v.claim_names(1),
            vec![("data".to_owned(), "data-db-shard0-1".to_owned())]
        );
    }

    #[test]
    fn pod_mounts_claims_and_is_owned() {
        let v = view();
        let pod = v.pod(&statefulset_ar(), 1);
        assert_eq!(pod["metadata"]["name"], "db-shard0-1");
        assert_eq!(pod["metadata"]["labels"]["extra"], "x");
        assert_eq!(
            pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
            "db-shard0-1"
        );
        assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
        let vols = pod["spec"]["volumes"].as_array().expect("volumes");
        assert_eq!(vols.len(), 1, "claim replaces the same-named template volume");
        assert_eq!(vols[0]["persistentVolumeClaim"]["claimName"], "data-db-shard0-1");
        assert_eq!(pod["spec"]["subdomain"], "db-pods");
    }

    #[test]
    fn claim_carries_selector_and_template_labels() {
        let v = view();
        let pvc = v.claim(&v.claim_templates[0], 0).expect("claim");
        assert_eq!(pvc["metadata"]["name"], "data-db-shard0-0");
        assert_eq!(pvc["metadata"]["labels"]["t"], "1");
        assert_eq!(pvc["metadata"]["labels"]["shard"], "0");
        assert!(pvc["metadata"].get("ownerReferences").is_none());
        assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "1Gi");
    }
}
