//! PV provisioning, the resizer per StorageClass mode, quota status and garbage collection,
//! through kube::Client.
// Helpers outside #[test] fns panic on purpose too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "cluster_common.rs"]
mod common;

use common::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, PersistentVolume, PersistentVolumeClaim, Pod, ResourceQuota};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::time::Duration;

async fn claim(
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
    .expect("pvc");
    api.create(&PostParams::default(), &pvc)
        .await
        .expect("pvc created");
    wait_for(&api, name, "pvc Bound", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
    })
    .await
}

async fn pod_with(client: &kube::Client, ns: &str, name: &str, claim: &str) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}
    }))
    .expect("pod");
    api.create(&PostParams::default(), &pod)
        .await
        .expect("pod created");
    wait_for(&api, name, "pod Running", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await
}

/// (allocatedResourceStatuses.storage, condition types, capacity) as seen by a watch.
type Seen = (Option<String>, Vec<String>, String);

fn seen(p: &PersistentVolumeClaim) -> Seen {
    let st = p.status.clone().unwrap_or_default();
    (
        st.allocated_resource_statuses
            .and_then(|m| m.get("storage").cloned()),
        st.conditions
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.type_)
            .collect(),
        st.capacity
            .and_then(|c| c.get("storage").map(|q| q.0.clone()))
            .unwrap_or_default(),
    )
}

/// Starts recording the claim's resize states (deduplicated) until `done` holds; returns once
/// the watch has delivered the current state, so nothing after this call is missed.
async fn record(
    api: Api<PersistentVolumeClaim>,
    name: &str,
    done: impl Fn(&Seen) -> bool + Send + Sync + 'static,
) -> tokio::task::JoinHandle<Vec<Seen>> {
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher(api, cfg).applied_objects().boxed();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let name = name.to_owned();
    let handle = tokio::spawn(async move {
        let mut out: Vec<Seen> = Vec::new();
        let mut tx = Some(tx);
        let fut = async {
            while let Some(Ok(p)) = stream.next().await {
                let s = seen(&p);
                if out.last() != Some(&s) {
                    out.push(s.clone());
                }
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
                if done(&s) {
                    return;
                }
            }
        };
        tokio::time::timeout(WAIT, fut)
            .await
            .unwrap_or_else(|_| panic!("resize of {name} stuck: {out:?}"));
        out
    });
    rx.await.expect("watch delivered the current state");
    handle
}

async fn grow(client: &kube::Client, ns: &str, name: &str, size: &str) {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": size}}}})),
    )
    .await
    .expect("pvc patched");
}

async fn event_reasons(client: &kube::Client, ns: &str, name: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

fn statuses(seq: &[Seen]) -> Vec<Option<&str>> {
    let mut v: Vec<Option<&str>> = seq.iter().map(|s| s.0.as_deref()).collect();
    v.dedup();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_resize_completes_with_the_pod_running() {
    let (sb, client) = sandbox().await;
    namespace(&client, "s").await;
    storage_class(&client, "online", "online").await;
    let pvc = claim(&client, "s", "data-0", "online", "1Gi").await;
    let pv_name = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .expect("bound to a PV");
    assert_eq!(pv_name, format!("pvc-{}", pvc.uid().expect("uid")));
    let pod = pod_with(&client, "s", "app-0", "data-0").await;
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "s");
    let rec = record(api.clone(), "data-0", |s| s.2 == "2Gi").await;
    grow(&client, "s", "data-0", "2Gi").await;
    let seq = rec.await.expect("recorder");
    assert_eq!(
        statuses(&seq),
        [
            None,
            Some("ControllerResizeInProgress"),
            Some("NodeResizePending"),
            Some("NodeResizeInProgress"),
            None
        ],
        "{seq:?}"
    );
    assert!(seq.iter().any(|s| s.1.contains(&"Resizing".to_owned())));
    assert!(
        seq.iter()
            .any(|s| s.1.contains(&"FileSystemResizePending".to_owned()))
    );
    let last = seq.last().expect("final state");
    assert!(last.1.is_empty(), "conditions cleared: {last:?}");
    let done = api.get("data-0").await.expect("pvc");
    let st = done.status.expect("status");
    assert_eq!(st.allocated_resources.expect("allocated")["storage"].0, "2Gi");
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = pvs.get(&pv_name).await.expect("pv");
    assert_eq!(pv.spec.expect("spec").capacity.expect("cap")["storage"].0, "2Gi");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "s");
    assert_eq!(
        pods.get("app-0").await.expect("pod").uid(),
        pod.uid(),
        "online resize keeps the pod"
    );
    let reasons = event_reasons(&client, "s", "data-0").await;
    for r in [
        "Resizing",
        "FileSystemResizeRequired",
        "FileSystemResizeSuccessful",
    ] {
        assert!(reasons.iter().any(|x| x == r), "missing event {r}: {reasons:?}");
    }
    sb.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_resize_waits_for_a_new_pod() {
    let (sb, client) = sandbox().await;
    namespace(&client, "s").await;
    storage_class(&client, "offline", "offline").await;
    claim(&client, "s", "data-0", "offline", "1Gi").await;
    pod_with(&client, "s", "app-0", "data-0").await;
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "s");
    let rec = record(api.clone(), "data-0", |s| {
        s.0.as_deref() == Some("NodeResizePending")
    })
    .await;
    grow(&client, "s", "data-0", "2Gi").await;
    let seq = rec.await.expect("recorder");
    assert_eq!(
        statuses(&seq),
        [
            None,
            Some("ControllerResizeInProgress"),
            Some("NodeResizePending")
        ]
    );
    // The running pod does not finish it: still pending well after several resize delays.
    let still = tokio::time::timeout(
        Duration::from_millis(300),
        wait_for(&api, "data-0", "capacity while the old pod runs", |p| {
            seen(p).2 == "2Gi"
        }),
    )
    .await;
    assert!(still.is_err(), "offline resize finished without a pod restart");
    let now = seen(&api.get("data-0").await.expect("pvc"));
    assert_eq!(now.1, ["FileSystemResizePending"]);
    assert_eq!(now.2, "1Gi");
    // Delete and recreate the pod: the new mount completes the node resize.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "s");
    pods.delete("app-0", &DeleteParams::default())
        .await
        .expect("pod deleted");
    wait_gone(&pods, "app-0", "old pod").await;
    let rec = record(api.clone(), "data-0", |s| s.2 == "2Gi").await;
    pod_with(&client, "s", "app-0", "data-0").await;
    let seq = rec.await.expect("recorder");
    assert_eq!(
        statuses(&seq),
        [Some("NodeResizePending"), Some("NodeResizeInProgress"), None]
    );
    assert!(seq.last().expect("final").1.is_empty());
    sb.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_resize_ends_infeasible_and_recovers_when_lowered() {
    let (sb, client) = sandbox().await;
    namespace(&client, "s").await;
    storage_class(&client, "broken", "fail").await;
    claim(&client, "s", "data-0", "broken", "1Gi").await;
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "s");
    let rec = record(api.clone(), "data-0", |s| {
        s.0.as_deref() == Some("ControllerResizeInfeasible")
    })
    .await;
    grow(&client, "s", "data-0", "2Gi").await;
    let seq = rec.await.expect("recorder");
    assert_eq!(
        statuses(&seq),
        [
            None,
            Some("ControllerResizeInProgress"),
            Some("ControllerResizeInfeasible")
        ]
    );
    let pvc = api.get("data-0").await.expect("pvc");
    let st = pvc.status.expect("status");
    assert_eq!(st.capacity.expect("cap")["storage"].0, "1Gi");
    let cond = st.conditions.expect("conditions");
    assert_eq!(cond.len(), 1);
    assert_eq!(cond[0].type_, "ControllerResizeError");
    assert!(
        cond[0].message.as_deref().unwrap_or("").contains("OutOfRange"),
        "{cond:?}"
    );
    assert!(
        event_reasons(&client, "s", "data-0")
            .await
            .iter()
            .any(|r| r == "VolumeResizeFailed")
    );
    // RecoverVolumeExpansionFailure: a lower request (still above capacity) is a new attempt;
    // this class always fails, so it ends infeasible again, now allocated at the lower size.
    grow(&client, "s", "data-0", "1536Mi").await;
    let pvc = wait_for(&api, "data-0", "retry at the lower size", |p| {
        seen(p).0.as_deref() == Some("ControllerResizeInfeasible")
            && p.status
                .as_ref()
                .and_then(|s| s.allocated_resources.as_ref())
                .map(|a| a["storage"].0.as_str())
                == Some("1536Mi")
    })
    .await;
    assert_eq!(seen(&pvc).2, "1Gi");
    sb.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_used_tracks_claims_and_allocated_size() {
    let (sb, client) = sandbox().await;
    namespace(&client, "q").await;
    storage_class(&client, "standard", "fail").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "q");
    let rq: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "storage", "namespace": "q"},
        "spec": {"hard": {"requests.storage": "20Gi", "persistentvolumeclaims": "5",
                          "standard.storageclass.storage.k8s.io/requests.storage": "15Gi"}}
    }))
    .expect("rq");
    quotas
        .create(&PostParams::default(), &rq)
        .await
        .expect("quota created");
    claim(&client, "q", "a", "standard", "1Gi").await;
    claim(&client, "q", "b", "standard", "2Gi").await;
    let used = |rq: &ResourceQuota, k: &str| {
        rq.status
            .as_ref()
            .and_then(|s| s.used.as_ref())
            .and_then(|u| u.get(k))
            .map(|q| q.0.clone())
    };
    let rq = wait_for(&quotas, "storage", "quota counts two claims", |rq| {
        used(rq, "persistentvolumeclaims").as_deref() == Some("2")
    })
    .await;
    assert_eq!(used(&rq, "requests.storage").as_deref(), Some("3Gi"));
    assert_eq!(
        used(&rq, "standard.storageclass.storage.k8s.io/requests.storage").as_deref(),
        Some("3Gi")
    );
    // A failed expansion keeps allocatedResources at the asked size: quota charges max(spec, allocated).
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "q");
    grow(&client, "q", "a", "5Gi").await;
    wait_for(&pvcs, "a", "resize failed", |p| {
        seen(p).0.as_deref() == Some("ControllerResizeInfeasible")
    })
    .await;
    let rq = wait_for(&quotas, "storage", "quota charges allocated", |rq| {
        used(rq, "requests.storage").as_deref() == Some("7Gi")
    })
    .await;
    assert_eq!(used(&rq, "persistentvolumeclaims").as_deref(), Some("2"));
    grow(&client, "q", "a", "1536Mi").await;
    wait_for(&quotas, "storage", "quota after lowering", |rq| {
        used(rq, "requests.storage").as_deref() == Some("3584Mi")
    })
    .await;
    pvcs.delete("b", &DeleteParams::default()).await.expect("deleted");
    let rq = wait_for(&quotas, "storage", "quota after delete", |rq| {
        used(rq, "persistentvolumeclaims").as_deref() == Some("1")
    })
    .await;
    assert_eq!(used(&rq, "requests.storage").as_deref(), Some("1536Mi"));
    sb.shutdown().await.expect("shutdown");
}

fn sts(name: &str, replicas: i64) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "g"},
        "spec": {"replicas": replicas, "serviceName": name,
                 "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .expect("sts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_background_foreground_and_orphan() {
    let (sb, client) = sandbox().await;
    namespace(&client, "g").await;
    let sets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "g",
        &volops_sandbox_cluster::util::statefulset_ar(),
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "g");
    let ready =
        |o: &DynamicObject| o.data.pointer("/status/readyReplicas").and_then(Value::as_i64) == Some(2);
    for name in ["bg", "fg", "or"] {
        sets.create(&PostParams::default(), &sts(name, 2))
            .await
            .expect("sts created");
    }
    for name in ["bg", "fg", "or"] {
        wait_for(&sets, name, "sts ready", ready).await;
    }
    sets.delete("bg", &DeleteParams::background())
        .await
        .expect("background delete");
    wait_gone(&pods, "bg-0", "bg-0").await;
    wait_gone(&pods, "bg-1", "bg-1").await;

    sets.delete("fg", &DeleteParams::foreground())
        .await
        .expect("foreground delete");
    wait_gone(&sets, "fg", "foreground owner").await;
    for p in ["fg-0", "fg-1"] {
        assert!(
            pods.get_opt(p).await.expect("get").is_none(),
            "{p} must be gone before its owner"
        );
    }

    let uid = pods.get("or-0").await.expect("pod").uid();
    sets.delete("or", &DeleteParams::orphan())
        .await
        .expect("orphan delete");
    wait_gone(&sets, "or", "orphaned owner").await;
    // Give the collector a chance to (wrongly) act, then check the pods survived unowned.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pod = pods.get("or-0").await.expect("orphan pod kept");
    assert_eq!(pod.uid(), uid);
    assert!(pod.owner_references().is_empty());
    // Scale: a recreated set with fewer replicas adopts and scales down.
    sets.create(&PostParams::default(), &sts("or", 1))
        .await
        .expect("recreated");
    wait_gone(&pods, "or-1", "scaled-down pod").await;
    let pod = wait_for(&pods, "or-0", "adopted", |p| !p.owner_references().is_empty()).await;
    assert_eq!(pod.uid(), uid);
    sb.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_all_stops_every_controller_until_resumed() {
    let (sb, client) = sandbox().await;
    namespace(&client, "p").await;
    storage_class(&client, "standard", "online").await;
    let cluster = sb.cluster().expect("cluster running");
    cluster.pause_all(true);
    assert!(cluster.is_paused());
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "p");
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "c", "namespace": "p"},
        "spec": {"storageClassName": "standard", "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .expect("pvc");
    api.create(&PostParams::default(), &pvc).await.expect("created");
    let bound =
        |p: &PersistentVolumeClaim| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let early = tokio::time::timeout(
        Duration::from_millis(300),
        wait_for(&api, "c", "bound while paused", bound),
    )
    .await;
    assert!(early.is_err(), "a paused provisioner bound the claim");
    cluster.pause_all(false);
    wait_for(&api, "c", "bound after resume", bound).await;
    sb.shutdown().await.expect("shutdown");
}
