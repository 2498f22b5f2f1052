//! The volume resizer controller (external-resizer + kubelet node expansion), see
//! [`super::resize`] for the behaviour.

use super::resize::{self, Claim, Mode, Step};
use super::{allocated, capacity, class_of, request, request_str};
use crate::config::ClusterConfig;
use crate::error::{Context, Error, ignore_codes};
use crate::events::{Involved, emit};
use crate::pause::PauseSwitch;
use crate::runtime::{Change, Informer, Key, Queue, spawn_workers};
use crate::util::now_string;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

const RESIZE_CONDITIONS: [&str; 4] = [
    "Resizing",
    "FileSystemResizePending",
    "ControllerResizeError",
    "NodeResizeError",
];

/// Concurrent resizer reconciles.
const RESIZE_WORKERS: usize = 128;

#[derive(Default)]
struct Progress {
    /// pvc uid -> (allocatedResourceStatus we last saw, since when).
    since: HashMap<String, (Option<String>, Instant)>,
    /// pvc uid -> pods mounting it when the controller resize finished (offline mode).
    mounted_before: HashMap<String, HashSet<String>>,
}

struct Ctx {
    client: kube::Client,
    pvcs: Store<PersistentVolumeClaim>,
    pods: Store<Pod>,
    classes: Store<StorageClass>,
    default_delay: Duration,
    /// Where expansions are reported when no running pod mounts the claim.
    node_name: String,
    progress: Mutex<Progress>,
}

/// Claims a pod mounts.
pub fn claims_of(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Hooks the resizer into the informers.
pub fn start(
    client: kube::Client,
    config: &ClusterConfig,
    pvcs: &mut Informer<PersistentVolumeClaim>,
    pods: &mut Informer<Pod>,
    classes: &Informer<StorageClass>,
    pause: PauseSwitch,
    tasks: &mut JoinSet<()>,
) {
    let queue = Queue::default();
    let q = queue.clone();
    pvcs.on(move |c| {
        if let Change::Applied(p) = c {
            q.add(Key::of(p));
        }
    });
    let q = queue.clone();
    pods.on(move |c| {
        if let Change::Applied(p) = c {
            let ns = p.namespace().unwrap_or_default();
            claims_of(p).iter().for_each(|claim| q.add(Key::new(&ns, claim)));
        }
    });
    let ctx = Arc::new(Ctx {
        client,
        pvcs: pvcs.store(),
        pods: pods.store(),
        classes: classes.store(),
        default_delay: config.resize_delay,
        node_name: config.nodes.first().cloned().unwrap_or_default(),
        progress: Mutex::default(),
    });
    // A worker only holds a claim while it talks to the API (the delays are requeues), so many
    // workers keep the class delay fixed with a thousand resizes at once (volops-bench controller).
    spawn_workers(tasks, "resizer", queue, RESIZE_WORKERS, pause, move |key| {
        let ctx = ctx.clone();
        async move { reconcile(&ctx, &key).await }
    });
}

impl Ctx {
    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Time spent in the current allocatedResourceStatus (as observed by us).
    fn in_state_for(&self, uid: &str, status: Option<&str>) -> Duration {
        let mut p = self.progress();
        let entry = p
            .since
            .entry(uid.to_owned())
            .or_insert_with(|| (status.map(str::to_owned), Instant::now()));
        if entry.0.as_deref() != status {
            *entry = (status.map(str::to_owned), Instant::now());
        }
        entry.1.elapsed()
    }

    /// The node of a running pod mounting the claim (else the first node).
    fn node_mounting(&self, ns: &str, claim: &str) -> String {
        self.pods
            .state()
            .iter()
            .filter(|p| p.namespace().as_deref() == Some(ns))
            .filter(|p| claims_of(p).iter().any(|c| c == claim))
            .find_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
            .unwrap_or_else(|| self.node_name.clone())
    }

    fn running_mounts(&self, ns: &str, claim: &str) -> HashSet<String> {
        self.pods
            .state()
            .iter()
            .filter(|p| p.namespace().as_deref() == Some(ns) && p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter(|p| claims_of(p).iter().any(|c| c == claim))
            .filter_map(|p| p.uid())
            .collect()
    }
}

fn conditions_without_resize(pvc: &PersistentVolumeClaim) -> Vec<Value> {
    pvc.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .filter(|c| !RESIZE_CONDITIONS.contains(&c.type_.as_str()))
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn condition(type_: &str, message: &str) -> Value {
    json!({"type": type_, "status": "True", "lastProbeTime": null, "lastTransitionTime": now_string(), "message": message})
}

/// The merge patch of a resize step: the new status, guarded by the claim's resourceVersion.
fn status_write(pvc: &PersistentVolumeClaim, status: Value) -> Value {
    json!({"metadata": {"resourceVersion": pvc.resource_version()}, "status": status})
}

/// What one step leaves to do.
enum Next {
    /// Look again after this long (None: on the next change).
    Requeue(Option<Duration>),
    /// Go on at once with the claim as the last write returned it.
    Continue(Arc<PersistentVolumeClaim>),
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, Error> {
    let Some(mut pvc) = ctx.pvcs.get(&ObjectRef::new(&key.name).within(&key.ns)) else {
        return Ok(None);
    };
    loop {
        match advance(ctx, key, &pvc).await? {
            Next::Requeue(after) => return Ok(after),
            Next::Continue(next) => pvc = next,
        }
    }
}

/// Takes the next step of one claim. Node expansion runs as kubelet's operation does: it
/// marks the claim `NodeResizeInProgress`, expands, and records the new capacity in one go,
/// without waiting for its own write to come back through the watch.
async fn advance(ctx: &Ctx, key: &Key, pvc: &PersistentVolumeClaim) -> Result<Next, Error> {
    let Some(pv_name) = pvc.spec.as_ref().and_then(|s| s.volume_name.clone()) else {
        return Ok(Next::Requeue(None));
    };
    let (Some(req), Some(cap), Some(uid)) = (request(pvc), capacity(pvc), pvc.uid()) else {
        return Ok(Next::Requeue(None));
    };
    let Some(class) = class_of(pvc, &ctx.classes) else {
        return Ok(Next::Requeue(None));
    };
    let behaviour = resize::behaviour(class.parameters.as_ref(), ctx.default_delay);
    let status = pvc
        .status
        .as_ref()
        .and_then(|s| s.allocated_resource_statuses.as_ref())
        .and_then(|m| m.get("storage").cloned());
    let claim = Claim {
        request: req,
        capacity: cap,
        allocated: allocated(pvc),
        status: status.clone(),
    };
    let new_mount = behaviour.mode == Mode::Offline && {
        let before = ctx
            .progress()
            .mounted_before
            .get(&uid)
            .cloned()
            .unwrap_or_default();
        ctx.running_mounts(&key.ns, &key.name)
            .iter()
            .any(|p| !before.contains(p))
    };
    let (step, delayed) = resize::next(&claim, behaviour.mode, new_mount);
    if step == Step::None {
        return Ok(Next::Requeue(None));
    }
    if delayed {
        let waited = ctx.in_state_for(&uid, status.as_deref());
        if waited < behaviour.delay {
            return Ok(Next::Requeue(Some(behaviour.delay - waited)));
        }
    }
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &key.ns);
    let req_str = request_str(pvc).unwrap_or_default();
    let alloc_str = pvc
        .status
        .as_ref()
        .and_then(|s| s.allocated_resources.as_ref())
        .and_then(|m| m.get("storage"))
        .map(|q| q.0.clone())
        .unwrap_or_else(|| req_str.clone());
    let mut conds = conditions_without_resize(pvc);
    let about = Involved {
        api_version: "v1",
        kind: "PersistentVolumeClaim",
        namespace: &key.ns,
        name: &key.name,
        uid: &uid,
        resource_version: None,
    };
    let resizer = format!("external-resizer {}", resize::RESIZER_NAME);
    let mut mounted = None;
    let (status_patch, event): (Value, Option<(bool, &str, String, String)>) = match step {
        Step::None => return Ok(Next::Requeue(None)),
        Step::StartController => {
            conds.push(condition("Resizing", ""));
            (
                json!({"conditions": conds, "allocatedResources": {"storage": req_str},
                       "allocatedResourceStatuses": {"storage": resize::CONTROLLER_IN_PROGRESS}}),
                Some((
                    false,
                    "Resizing",
                    format!("External resizer is resizing volume {pv_name}"),
                    resizer,
                )),
            )
        }
        Step::FinishController => {
            let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
            pvs.patch(
                &pv_name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"capacity": {"storage": alloc_str}}})),
            )
            .await
            .ctx(|| format!("growing PV {pv_name}"))?;
            // Only the offline mode waits for a new mount: the pods running now are not new.
            if behaviour.mode == Mode::Offline {
                mounted = Some(ctx.running_mounts(&key.ns, &key.name));
            }
            conds.push(condition(
                "FileSystemResizePending",
                "Waiting for user to (re-)start a pod to finish file system resize of volume on node.",
            ));
            (
                json!({"conditions": conds, "allocatedResourceStatuses": {"storage": resize::NODE_PENDING}}),
                Some((
                    false,
                    "FileSystemResizeRequired",
                    "Require file system resize of volume on node".to_owned(),
                    resizer,
                )),
            )
        }
        Step::FailController => {
            let msg = resize::failure_message(&pv_name);
            conds.push(condition("ControllerResizeError", &msg));
            (
                json!({"conditions": conds, "allocatedResourceStatuses": {"storage": resize::CONTROLLER_INFEASIBLE}}),
                Some((true, "VolumeResizeFailed", msg, resizer)),
            )
        }
        Step::StartNode => {
            let mut conds_keep: Vec<Value> = pvc
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .map(|cs| cs.iter().filter_map(|c| serde_json::to_value(c).ok()).collect())
                .unwrap_or_default();
            if conds_keep.is_empty() {
                conds_keep = conds;
            }
            (
                json!({"conditions": conds_keep, "allocatedResourceStatuses": {"storage": resize::NODE_IN_PROGRESS}}),
                None,
            )
        }
        Step::FinishNode => {
            ctx.progress().mounted_before.remove(&uid);
            (
                json!({"conditions": conds, "capacity": {"storage": alloc_str}, "allocatedResourceStatuses": null}),
                Some((
                    false,
                    "FileSystemResizeSuccessful",
                    format!(
                        "MountVolume.NodeExpandVolume succeeded for volume \"{pv_name}\" {}",
                        ctx.node_mounting(&key.ns, &key.name)
                    ),
                    "kubelet".to_owned(),
                )),
            )
        }
        Step::Recover => (
            json!({"conditions": conds, "allocatedResources": {"storage": req_str}, "allocatedResourceStatuses": null}),
            None,
        ),
    };
    // Event first: whoever sees the new status can also find the event.
    if let Some((warning, reason, message, component)) = event {
        emit(&ctx.client, &component, about, warning, reason, &message).await;
    }
    let new_status = status_patch
        .pointer("/allocatedResourceStatuses/storage")
        .and_then(Value::as_str)
        .map(str::to_owned);
    // Guarded by the resourceVersion this step read, as external-resizer's patches are: a step
    // taken on a claim the informer had not caught up with yet fails and is looked at again,
    // instead of taking the claim back to an earlier state.
    let written = ignore_codes(
        api.patch_status(
            &key.name,
            &PatchParams::default(),
            &Patch::Merge(status_write(pvc, status_patch)),
        )
        .await,
        &[404],
    )
    .ctx(|| format!("updating resize status of {}", key.name))?;
    if let Some(mounted) = mounted {
        ctx.progress().mounted_before.insert(uid.clone(), mounted);
    }
    tracing::debug!(pvc = %key.name, ?step, "resize step written");
    // The driver's delay runs from this write, not from when the watch brings it back: the
    // resize latency stays what the class says however busy the cluster is.
    ctx.progress().since.insert(uid, (new_status, Instant::now()));
    match written {
        Some(claim) if step == Step::StartNode => Ok(Next::Continue(Arc::new(claim))),
        _ => Ok(Next::Requeue(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    #[test]
    fn a_resize_step_is_written_only_over_the_claim_it_read() {
        let pvc = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data-0".into()),
                resource_version: Some("41".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let patch = status_write(
            &pvc,
            json!({"allocatedResourceStatuses": {"storage": resize::NODE_PENDING}}),
        );
        assert_eq!(patch["metadata"]["resourceVersion"], "41");
        assert_eq!(
            patch["status"]["allocatedResourceStatuses"]["storage"],
            resize::NODE_PENDING
        );
    }
}
