//! The "scheduler": binds every pod without `spec.nodeName` to the node running the fewest
//! pods, through the `pods/binding` subresource as kube-scheduler does.

use crate::error::{Context, Error, ignore_codes};
use crate::pause::PauseSwitch;
use crate::runtime::{Change, Informer, Key, Queue, spawn_workers};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    nodes: Vec<String>,
    /// pod uid -> node it was bound to, until the informer shows the binding (the scheduler's
    /// "assumed pods": a burst of pods spreads instead of piling onto one node).
    assumed: Mutex<HashMap<String, String>>,
}

/// Hooks the scheduler into the pod informer.
pub fn start(
    client: kube::Client,
    nodes: Vec<String>,
    pods: &mut Informer<Pod>,
    pause: PauseSwitch,
    tasks: &mut JoinSet<()>,
) {
    let queue = Queue::default();
    let ctx = Arc::new(Ctx {
        client,
        pods: pods.store(),
        nodes,
        assumed: Mutex::default(),
    });
    let q = queue.clone();
    let c = ctx.clone();
    pods.on(move |change| match change {
        Change::Applied(p) if node_of(p).is_none() => q.add(Key::of(p)),
        Change::Applied(_) => {}
        Change::Deleted(p) => {
            c.assumed_mut().remove(&p.uid().unwrap_or_default());
        }
    });
    // One worker: each choice sees the previous one (as kube-scheduler's single loop does).
    spawn_workers(tasks, "scheduler", queue, 1, pause, move |key| {
        let ctx = ctx.clone();
        async move { schedule(&ctx, &key).await }
    });
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

impl Ctx {
    fn assumed_mut(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.assumed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The node with the fewest pods (bound, or assumed while the store does not show the
    /// binding yet); ties go to the first listed.
    fn pick(&self) -> Option<String> {
        let mut load: HashMap<&str, usize> = self.nodes.iter().map(|n| (n.as_str(), 0)).collect();
        let mut assumed = self.assumed_mut();
        let pods = self.pods.state();
        // An assumption ends when the store shows the pod bound (or no longer has it), never
        // before: the informer's callback may run before its store holds the change.
        assumed.retain(|uid, _| {
            pods.iter()
                .any(|p| p.uid().as_deref() == Some(uid.as_str()) && node_of(p).is_none())
        });
        for pod in pods.iter().filter(|p| !finished(p)) {
            let node =
                node_of(pod).or_else(|| pod.uid().and_then(|uid| assumed.get(&uid).map(String::as_str)));
            if let Some(count) = node.and_then(|n| load.get_mut(n)) {
                *count += 1;
            }
        }
        self.nodes
            .iter()
            .min_by_key(|n| load.get(n.as_str()).copied().unwrap_or(0))
            .cloned()
    }
}

/// The `v1 Binding` of `pod` to `node`.
pub fn binding(pod: &str, uid: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": pod, "uid": uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    })
}

async fn schedule(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, Error> {
    let Some(pod) = ctx.pods.get(&ObjectRef::new(&key.name).within(&key.ns)) else {
        return Ok(None);
    };
    if node_of(&pod).is_some() || pod.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let Some(node) = ctx.pick() else {
        return Ok(None);
    };
    let uid = pod.uid().unwrap_or_default();
    let body = binding(&key.name, &uid, &node);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.ns);
    // Assumed before the call: the informer may bring the bound pod back before it returns.
    ctx.assumed_mut().insert(uid.clone(), node.clone());
    // 409: bound meanwhile (or being deleted); 404: gone. Both leave nothing to do.
    let bound = ignore_codes(
        api.create_subresource::<Value, Value>("binding", &key.name, &PostParams::default(), &body)
            .await,
        &[404, 409],
    )
    .ctx(|| format!("binding pod {} to node {node}", key.name));
    if !matches!(bound, Ok(Some(_))) {
        ctx.assumed_mut().remove(&uid);
    }
    bound.map(|_| None)
}
