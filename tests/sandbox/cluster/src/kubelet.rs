//! The "kubelets" of the registered nodes: a pod bound to one of them becomes Running (with
//! that node's address as `hostIP`), then Ready after `pod_ready_delay`; deleted pods are
//! removed after their (capped) grace period, finalizers permitting. Pods not bound yet, or
//! bound to a node no kubelet runs, stay Pending as on a real cluster.

use crate::config::ClusterConfig;
use crate::error::{Context, Error, ignore_codes};
use crate::nodes::NodeInfo;
use crate::pause::PauseSwitch;
use crate::runtime::{Change, Informer, Key, Queue, spawn_workers};
use crate::util::now_string;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    ready_delay: Duration,
    grace_cap: Duration,
    /// node name -> InternalIP.
    hosts: HashMap<String, String>,
    /// uid -> when we saw it Running / deleting (in-memory, like the kubelet's own state).
    started: Mutex<HashMap<String, Instant>>,
    deleting: Mutex<HashMap<String, Instant>>,
    rng: Mutex<StdRng>,
}

/// Hooks the kubelet into the pod informer.
pub fn start(
    client: kube::Client,
    config: &ClusterConfig,
    nodes: &[NodeInfo],
    pods: &mut Informer<Pod>,
    pause: PauseSwitch,
    tasks: &mut JoinSet<()>,
) {
    let queue = Queue::default();
    let q = queue.clone();
    pods.on(move |c| {
        if let Change::Applied(p) = c {
            q.add(Key::of(p));
        }
    });
    let ctx = Arc::new(Ctx {
        client,
        pods: pods.store(),
        ready_delay: config.pod_ready_delay,
        grace_cap: config.pod_grace_cap,
        hosts: nodes
            .iter()
            .map(|n| (n.name.clone(), n.internal_ip.clone()))
            .collect(),
        started: Mutex::default(),
        deleting: Mutex::default(),
        rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
    });
    spawn_workers(tasks, "kubelet", queue, 4, pause, move |key| {
        let ctx = ctx.clone();
        async move { reconcile(&ctx, &key).await }
    });
}

fn elapsed_since(map: &Mutex<HashMap<String, Instant>>, uid: &str) -> Duration {
    let mut m = map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    m.entry(uid.to_owned()).or_insert_with(Instant::now).elapsed()
}

fn forget(map: &Mutex<HashMap<String, Instant>>, uid: &str) {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(uid);
}

fn container_statuses(pod: &Pod, ready: bool, started_at: &str) -> Value {
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    Value::Array(
        containers
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "image": c.image.clone().unwrap_or_default(),
                    "imageID": format!("sandbox://{}", c.image.clone().unwrap_or_default()),
                    "containerID": format!("sandbox://{}-{}", pod.uid().unwrap_or_default(), c.name),
                    "ready": ready,
                    "started": true,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": started_at}},
                })
            })
            .collect(),
    )
}

fn conditions(ready: bool, at: &str) -> Value {
    let r = if ready { "True" } else { "False" };
    json!([
        {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": at},
        {"type": "Initialized", "status": "True", "lastTransitionTime": at},
        {"type": "Ready", "status": r, "lastTransitionTime": at},
        {"type": "ContainersReady", "status": r, "lastTransitionTime": at},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": at},
    ])
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, Error> {
    let Some(pod) = ctx.pods.get(&ObjectRef::new(&key.name).within(&key.ns)) else {
        return Ok(None);
    };
    let uid = pod.uid().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.ns);
    if pod.metadata.deletion_timestamp.is_some() {
        return terminate(ctx, &api, &pod, &uid).await;
    }
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    let Some(host_ip) = node.and_then(|n| ctx.hosts.get(n)) else {
        return Ok(None);
    };
    let status = pod.status.clone().unwrap_or_default();
    let at = now_string();
    if status.phase.as_deref() != Some("Running") {
        let ip = {
            let mut rng = ctx.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            format!(
                "10.244.{}.{}",
                rng.random_range(0..=255u8),
                rng.random_range(2..=254u8)
            )
        };
        let patch = json!({"status": {
            "phase": "Running",
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": at,
            "qosClass": "BestEffort",
            "conditions": conditions(false, &at),
            "containerStatuses": container_statuses(&pod, false, &at),
        }});
        patch_status(&api, &pod, patch).await?;
        forget(&ctx.started, &uid);
        elapsed_since(&ctx.started, &uid);
        return Ok(Some(ctx.ready_delay));
    }
    let ready = status
        .conditions
        .as_ref()
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if ready {
        return Ok(None);
    }
    let waited = elapsed_since(&ctx.started, &uid);
    if waited < ctx.ready_delay {
        return Ok(Some(ctx.ready_delay - waited));
    }
    let started_at = status.start_time.map(|t| t.0.to_string()).unwrap_or(at.clone());
    let patch = json!({"status": {
        "conditions": conditions(true, &at),
        "containerStatuses": container_statuses(&pod, true, &started_at),
    }});
    patch_status(&api, &pod, patch).await?;
    Ok(None)
}

async fn terminate(ctx: &Ctx, api: &Api<Pod>, pod: &Pod, uid: &str) -> Result<Option<Duration>, Error> {
    let grace_secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or(pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30)
        .max(0) as u64;
    let grace = Duration::from_secs(grace_secs).min(ctx.grace_cap);
    let waited = elapsed_since(&ctx.deleting, uid);
    if waited < grace {
        return Ok(Some(grace - waited));
    }
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if ready {
        // Containers are stopped: the pod is no longer Ready, whatever finalizers still hold it.
        let at = now_string();
        patch_status(
            api,
            pod,
            json!({"status": {"conditions": conditions(false, &at)}}),
        )
        .await?;
    }
    let name = pod.name_any();
    ignore_codes(
        api.delete(&name, &DeleteParams::default().grace_period(0)).await,
        &[404],
    )
    .ctx(|| format!("removing terminated pod {name}"))?;
    forget(&ctx.deleting, uid);
    forget(&ctx.started, uid);
    Ok(None)
}

async fn patch_status(api: &Api<Pod>, pod: &Pod, patch: Value) -> Result<(), Error> {
    let name = pod.name_any();
    ignore_codes(
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await,
        &[404],
    )
    .ctx(|| format!("updating status of pod {name}"))?;
    Ok(())
}
