//! StatefulSet (apps/v1) and PetSet (apps.k8s.appscode.com/v1) controller: one code path for
//! both, chosen by the `ApiResource`.

pub mod plan;

use crate::error::{Context, Error, ignore_codes};
use crate::pause::PauseSwitch;
use crate::runtime::{Change, Informer, Key, Queue, spawn_workers};
use crate::util::{controller_of, controller_ref, selector_matches};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use plan::{Member, SetView, Step, next_step};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

struct Ctx {
    client: kube::Client,
    ar: ApiResource,
    sets: Store<DynamicObject>,
    pods: Store<Pod>,
}

/// Hooks the controller for `ar` into the set and pod informers and starts its workers.
pub fn start(
    client: kube::Client,
    ar: ApiResource,
    sets: &mut Informer<DynamicObject>,
    pods: &mut Informer<Pod>,
    pause: PauseSwitch,
    tasks: &mut JoinSet<()>,
) {
    let queue = Queue::default();
    let q = queue.clone();
    sets.on(move |c| {
        if let Change::Applied(s) = c {
            q.add(Key::of(s));
        }
    });
    let q = queue.clone();
    let kind = ar.kind.clone();
    let api_version = ar.api_version.clone();
    pods.on(move |c| {
        let pod = match c {
            Change::Applied(p) | Change::Deleted(p) => p,
        };
        let ns = pod.namespace().unwrap_or_default();
        match controller_of(pod.metadata.owner_references.as_ref()) {
            Some(r) if r.kind == kind && r.api_version == api_version => q.add(Key::new(&ns, &r.name)),
            Some(_) => {}
            // An orphan may be adopted by the set its name points at.
            None => {
                let name = pod.name_any();
                if let Some((set, ord)) = name.rsplit_once('-')
                    && !ord.is_empty()
                    && ord.bytes().all(|b| b.is_ascii_digit())
                {
                    q.add(Key::new(&ns, set));
                }
            }
        }
    });
    let ctx = Arc::new(Ctx {
        client,
        ar,
        sets: sets.store(),
        pods: pods.store(),
    });
    spawn_workers(tasks, "workload", queue, 4, pause, move |key| {
        let ctx = ctx.clone();
        async move { reconcile(&ctx, &key).await }
    });
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, Error> {
    let Some(set) = ctx.sets.get(&key.obj_ref(ctx.ar.clone())) else {
        return Ok(None);
    };
    if set.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let Some(view) = SetView::parse(&set) else {
        return Ok(None);
    };
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &view.namespace);
    let mut members = Vec::new();
    for pod in ctx.pods.state() {
        if pod.namespace().as_deref() != Some(view.namespace.as_str()) {
            continue;
        }
        let Some(ordinal) = view.ordinal_of(&pod.name_any()) else {
            continue;
        };
        match controller_of(pod.metadata.owner_references.as_ref()) {
            Some(r) if r.uid == view.uid => {}
            Some(_) => continue,
            None => {
                if !selector_matches(&view.match_labels, pod.metadata.labels.as_ref()) {
                    continue;
                }
                adopt(ctx, &pods_api, &pod, &view).await?;
            }
        }
        members.push(Member {
            ordinal,
            ready: is_ready(&pod),
            terminating: pod.metadata.deletion_timestamp.is_some(),
        });
    }
    let mut requeue = None;
    match next_step(view.replicas, &members) {
        Step::Create(i) => {
            create_claims(ctx, &view, i).await?;
            let pod: Pod = serde_json::from_value(view.pod(&ctx.ar, i)).map_err(|e| Error::Malformed {
                what: format!("pod template of {}", view.name),
                reason: e.to_string(),
            })?;
            let created = ignore_codes(pods_api.create(&PostParams::default(), &pod).await, &[409])
                .ctx(|| format!("creating pod {}", view.pod_name(i)))?;
            if created.is_none() {
                // The store lags behind the API; look again shortly.
                requeue = Some(Duration::from_millis(100));
            }
        }
        Step::Delete(i) => {
            ignore_codes(
                pods_api.delete(&view.pod_name(i), &DeleteParams::default()).await,
                &[404],
            )
            .ctx(|| format!("deleting pod {}", view.pod_name(i)))?;
        }
        Step::Wait | Step::Idle => {}
    }
    update_status(ctx, &set, &view, &members).await?;
    Ok(requeue)
}

/// Adopting = patching our controller ownerReference onto the existing pod (never recreating).
/// Like Kubernetes' ControllerRefManager, first re-read the set live: a set that is being
/// deleted (or was replaced) must not adopt, or it would hand the pod to a dead owner.
async fn adopt(ctx: &Ctx, api: &Api<Pod>, pod: &Pod, view: &SetView) -> Result<(), Error> {
    let sets: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &view.namespace, &ctx.ar);
    let live = sets
        .get_opt(&view.name)
        .await
        .ctx(|| format!("rechecking {}", view.name))?;
    let can_adopt = live.is_some_and(|s| {
        s.metadata.uid.as_deref() == Some(view.uid.as_str()) && s.metadata.deletion_timestamp.is_none()
    });
    if !can_adopt {
        return Err(Error::Malformed {
            what: format!("{} {}", ctx.ar.kind, view.name),
            reason: "changed or is being deleted; not adopting".into(),
        });
    }
    let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
    refs.push(controller_ref(&ctx.ar, &view.name, &view.uid));
    let patch = json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": pod.resource_version()},
        {"op": "add", "path": "/metadata/ownerReferences", "value": refs},
    ]);
    let patch: json_patch::Patch = serde_json::from_value(patch).map_err(|e| Error::Malformed {
        what: "adoption patch".into(),
        reason: e.to_string(),
    })?;
    api.patch(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Json::<()>(patch),
    )
    .await
    .ctx(|| format!("adopting pod {}", pod.name_any()))?;
    Ok(())
}

async fn create_claims(ctx: &Ctx, view: &SetView, i: i64) -> Result<(), Error> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &view.namespace);
    for tmpl in &view.claim_templates {
        let Some(claim) = view.claim(tmpl, i) else {
            continue;
        };
        let claim: PersistentVolumeClaim = serde_json::from_value(claim).map_err(|e| Error::Malformed {
            what: format!("claim template of {}", view.name),
            reason: e.to_string(),
        })?;
        // Existing claims are reused by name, never resized here.
        ignore_codes(api.create(&PostParams::default(), &claim).await, &[409])
            .ctx(|| format!("creating claim {}", claim.name_any()))?;
    }
    Ok(())
}

async fn update_status(
    ctx: &Ctx,
    set: &DynamicObject,
    view: &SetView,
    members: &[Member],
) -> Result<(), Error> {
    let count = members.len() as i64;
    let ready = members.iter().filter(|m| m.ready && !m.terminating).count() as i64;
    let want = json!({
        "replicas": count,
        "readyReplicas": ready,
        "currentReplicas": count,
        "updatedReplicas": count,
        "availableReplicas": ready,
        "observedGeneration": view.generation,
    });
    let have = set.data.get("status").cloned().unwrap_or(Value::Null);
    let same = want
        .as_object()
        .is_some_and(|w| w.iter().all(|(k, v)| have.get(k).unwrap_or(&json!(0)) == v));
    if same {
        return Ok(());
    }
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &view.namespace, &ctx.ar);
    ignore_codes(
        api.patch_status(
            &view.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": want})),
        )
        .await,
        &[404],
    )
    .ctx(|| format!("updating status of {}", view.name))?;
    Ok(())
}
