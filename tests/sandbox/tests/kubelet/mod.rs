//! Helpers shared by the kubelet_* tests (a module of theirs; they also include cluster_common.rs as `cluster`).
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use crate::cluster::{WAIT, wait_for};

pub const GI: u64 = 1 << 30;

/// A Bound claim of `size` in class `class`.
pub async fn claim(
    client: &kube::Client,
    ns: &str,
    name: &str,
    class: &str,
    size: &str,
) -> PersistentVolumeClaim {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": size}}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &pvc).await.unwrap();
    wait_for(&api, name, "pvc Bound", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
    })
    .await
}

/// A Running pod mounting `claim` as volume `data` (plus a configMap-like emptyDir `tmp`).
pub async fn pod_with(client: &kube::Client, ns: &str, name: &str, claim: &str) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "db", "image": "redis:7"}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}},
                             {"name": "tmp", "emptyDir": {}}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
    wait_for(&api, name, "pod Running", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await
}

/// Raises the claim's request and waits until the file system resize is done.
pub async fn grow(client: &kube::Client, ns: &str, name: &str, size: &str) {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let patch = json!({"spec": {"resources": {"requests": {"storage": size}}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    let size = size.to_owned();
    wait_for(&api, name, "file system resized", move |p| {
        p.status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get("storage"))
            .is_some_and(|q| q.0 == size)
    })
    .await;
}

/// GET `path` through the API server with `client`; the body as text.
pub async fn raw_get(client: &kube::Client, path: &str) -> Result<String, kube::Error> {
    let req = http::Request::get(path).body(Vec::new()).unwrap();
    client.request_text(req).await
}

pub fn summary_path(node: &str) -> String {
    format!("/api/v1/nodes/{node}/proxy/stats/summary")
}

/// The node's Summary.
pub async fn summary(client: &kube::Client, node: &str) -> Value {
    let text = raw_get(client, &summary_path(node)).await.unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The volume entry of claim `ns/claim` in a Summary, if a running pod mounts it.
pub fn claim_volume<'a>(summary: &'a Value, ns: &str, claim: &str) -> Option<&'a Value> {
    summary["pods"]
        .as_array()?
        .iter()
        .flat_map(|p| p["volume"].as_array().into_iter().flatten())
        .find(|v| v["pvcRef"]["namespace"] == ns && v["pvcRef"]["name"] == claim)
}

/// Polls the node's Summary until the claim's volume satisfies `done` (the kubelet sees the
/// cluster through its informers, a moment behind the API).
pub async fn wait_volume(
    client: &kube::Client,
    node: &str,
    ns: &str,
    claim: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = summary(client, node).await;
        if let Some(v) = claim_volume(&s, ns, claim)
            && done(v)
        {
            return v.clone();
        }
        assert!(
            Instant::now() < deadline,
            "volume of {ns}/{claim} never matched: {s:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn u(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
}

/// The node a pod runs on.
pub fn node_of(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .expect("pod is scheduled")
}
