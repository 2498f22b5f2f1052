//! Expand: Online patches every PVC of the saved workloads to the target at once and waits for
//! the capacity; Offline goes pod by pod (controller/DESIGN-NOTES.md) so at most one pod of the
//! database is missing.

use std::collections::BTreeMap;

use futures::future::try_join_all;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions},
};
use serde_json::{Value, json};
use volops_shared::{
    Quantity,
    api::VolumeExpansionMode,
    conditions::{self as c, condition},
    facts::PvcView,
};

use super::{Job, Outcome, SOON, to_json};
use crate::{
    context::Ctx,
    error::{Error, KubeContext, Result},
    manifest::strip_pod,
    metrics::KindLabels,
    offline::{PodAction, PodSeen, PodStep, next_action},
    ownership::restorable_pod,
    pvc::{PvcProgress, patch_now, progress},
    saved::SavedPod,
};

pub async fn run(ctx: &Ctx, job: &mut Job) -> Result<Outcome> {
    let target = job.target()?;
    let mode = job.admitted()?.mode;
    let outcome = match mode {
        VolumeExpansionMode::Online => online(ctx, job, &target).await?,
        VolumeExpansionMode::Offline => offline(ctx, job, &target).await?,
    };
    if !matches!(outcome, Outcome::Done(_)) {
        return Ok(outcome);
    }
    // KubeDB's summary condition and message (docs/KUBEDB.md, "Status and events").
    let (type_, message) = job.kind.pvc_condition();
    Ok(Outcome::Done(vec![condition(
        type_,
        c::TRUE,
        type_,
        message,
        job.generation,
        c::now(),
    )]))
}

fn pvc_api(ctx: &Ctx, job: &Job) -> Api<PersistentVolumeClaim> {
    Api::namespaced(ctx.client.clone(), &job.namespace)
}

/// Every PVC of the database by name: from the cache (a PVC seen behind is looked at again on
/// its next event) or one labelled list, then a get for any they missed.
async fn load_pvcs(ctx: &Ctx, job: &Job, names: &[String]) -> Result<BTreeMap<String, PvcView>> {
    let api = pvc_api(ctx, job);
    let cached = ctx
        .caches(job.kind)
        .and_then(|c| c.pvcs_of(&job.namespace, &job.database, names));
    let listed = match cached {
        Some(pvcs) => pvcs,
        None => {
            let lp = ListParams::default().labels(&job.kind.selector(&job.database));
            let list = api.list(&lp).await.during(|| "list PVCs".into())?;
            list.items.iter().map(PvcView::from_pvc).collect()
        }
    };
    let mut by_name: BTreeMap<String, PvcView> = listed.into_iter().map(|p| (p.name.clone(), p)).collect();
    let missing: Vec<&String> = names.iter().filter(|n| !by_name.contains_key(*n)).collect();
    for name in missing {
        let pvc = api.get_opt(name).await.during(|| format!("get PVC {name}"))?;
        let pvc =
            pvc.ok_or_else(|| Error::Invalid(format!("PVC {}/{name} does not exist", job.namespace)))?;
        by_name.insert(name.clone(), PvcView::from_pvc(&pvc));
    }
    Ok(by_name)
}

async fn patch_pvc(ctx: &Ctx, job: &Job, name: &str, target: &Quantity) -> Result<()> {
    let patch = json!({"spec": {"resources": {"requests": {"storage": target.as_str()}}}});
    pvc_api(ctx, job)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .during(|| format!("patch PVC {}/{name} to {target}", job.namespace))?;
    ctx.metrics
        .pvc_expansions
        .get_or_create(&KindLabels {
            kind: job.kind.ops_kind().into(),
        })
        .inc();
    Ok(())
}

/// The claims of the saved (verified) workloads, in order: the only ones a request patches.
fn claims(job: &Job) -> Result<Vec<String>> {
    Ok(job
        .state()?
        .workloads
        .iter()
        .flat_map(|w| w.pods().map(|pod| w.claim_of(&pod)))
        .collect())
}

async fn online(ctx: &Ctx, job: &Job, target: &Quantity) -> Result<Outcome> {
    let names = claims(job)?;
    let pvcs = load_pvcs(ctx, job, &names).await?;
    let mut known = Vec::new();
    let mut states = Vec::new();
    for name in &names {
        let Some(pvc) = pvcs.get(name) else { continue };
        match progress(pvc, target) {
            PvcProgress::Infeasible(message) => return Ok(Outcome::Fail(message)),
            // A PVC whose patch the cache does not show yet is patched again to the same size:
            // harmless, and rare enough not to track (docs/PERFORMANCE.md).
            p => {
                known.push(name.as_str());
                states.push(p);
            }
        }
    }
    // Requests only ever go up to the target, never past it; the parallelism caps how many
    // are resizing at once (the PVC watch wakes this request when one finishes).
    let to_patch: Vec<&str> = patch_now(&states, ctx.config.pvc_parallelism)
        .into_iter()
        .filter_map(|i| known.get(i).copied())
        .collect();
    try_join_all(to_patch.iter().map(|n| patch_pvc(ctx, job, n, target))).await?;
    let unfinished = states.iter().filter(|p| **p != PvcProgress::Reached).count();
    if unfinished == 0 {
        return Ok(Outcome::Done(Vec::new()));
    }
    Ok(Outcome::wait(
        format!("{unfinished} of {} PVCs still growing to {target}", names.len()),
        SOON,
    ))
}

fn seen(pod: &Pod) -> PodSeen {
    PodSeen {
        uid: pod.uid(),
        ready: pod_ready(pod),
        deleting: pod.metadata.deletion_timestamp.is_some(),
    }
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Offline: the first pod whose [`next_action`] is not `Next` acts, then the step waits.
async fn offline(ctx: &Ctx, job: &mut Job, target: &Quantity) -> Result<Outcome> {
    let order: Vec<(String, String)> = job
        .state()?
        .workloads
        .iter()
        .flat_map(|w| w.pods().map(|pod| (w.claim_of(&pod), pod)))
        .collect();
    for (claim, pod_name) in order {
        let pvc = pvc_api(ctx, job)
            .get_opt(&claim)
            .await
            .during(|| format!("get PVC {claim}"))?
            .ok_or_else(|| Error::Invalid(format!("PVC {}/{claim} does not exist", job.namespace)))?;
        let pod = pods_api(ctx, job)
            .get_opt(&pod_name)
            .await
            .during(|| format!("get pod {pod_name}"))?;
        let saved = job.state()?.pods.get(&pod_name).cloned().unwrap_or_default();
        let seen = pod.as_ref().map(seen);
        let action = next_action(&PodStep {
            namespace: &job.namespace,
            pod: &pod_name,
            claim: &claim,
            target: target.as_str(),
            saved: &saved,
            seen: seen.as_ref(),
            claim_progress: &progress(&PvcView::from_pvc(&pvc), target),
        });
        let done = match action {
            PodAction::Next => continue,
            PodAction::RecordRestarted => {
                record_pod(ctx, job, &pod_name, None).await?;
                continue;
            }
            PodAction::Wait(why) => why,
            PodAction::Fail(why) => return Ok(Outcome::Fail(why)),
            PodAction::SaveAndDelete => {
                let pod = pod.ok_or_else(|| Error::Invalid(format!("pod {pod_name} is gone")))?;
                take_down(ctx, job, &pod_name, &pod).await?;
                format!("deleted pod {pod_name}")
            }
            PodAction::AwaitDeletion { delete } => {
                if delete {
                    let uid = saved.uid.unwrap_or_default();
                    delete_pod(&pods_api(ctx, job), &pod_name, &uid).await?;
                }
                format!("waiting for pod {pod_name} to be deleted")
            }
            PodAction::PatchClaim => {
                patch_pvc(ctx, job, &claim, target).await?;
                format!("PVC {claim} patched to {target}")
            }
            PodAction::Recreate => {
                let manifest = saved.manifest.unwrap_or_default();
                let uid = create_saved_pod(ctx, job, &pod_name, &manifest).await?;
                record_pod(ctx, job, &pod_name, uid).await?;
                format!("recreated pod {pod_name}")
            }
        };
        return Ok(Outcome::wait(done, SOON));
    }
    Ok(Outcome::Done(Vec::new()))
}

/// Saves the pod first (a restarted controller can always put it back), then deletes it.
async fn take_down(ctx: &Ctx, job: &mut Job, pod_name: &str, pod: &Pod) -> Result<()> {
    let stripped = strip_pod(&to_json("pod", pod)?);
    let entry = job.saved_mut(ctx).await?.pods.entry(pod_name.to_owned());
    entry.or_default().manifest = Some(stripped);
    job.save(ctx).await?;
    delete_pod(&pods_api(ctx, job), pod_name, &pod.uid().unwrap_or_default()).await
}

fn pods_api(ctx: &Ctx, job: &Job) -> Api<Pod> {
    Api::namespaced(ctx.client.clone(), &job.namespace)
}

/// Saves that `pod_name` is back (`uid`: the pod this request created, None for one it did not).
async fn record_pod(ctx: &Ctx, job: &mut Job, pod_name: &str, uid: Option<String>) -> Result<()> {
    let entry = job
        .saved_mut(ctx)
        .await?
        .pods
        .entry(pod_name.to_owned())
        .or_default();
    *entry = SavedPod {
        uid,
        manifest: None,
        restarted: true,
    };
    job.save(ctx).await
}

async fn delete_pod(api: &Api<Pod>, name: &str, uid: &str) -> Result<()> {
    // The UID precondition makes a second delete of a recreated pod impossible.
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(crate::error::code_of(&e), Some(404 | 409)) => Ok(()),
        Err(e) => Err(e).during(|| format!("delete pod {name}")),
    }
}

/// Creates a saved pod again with the identity it was saved with; the UID of the pod created
/// (None when one of that name exists already).
pub async fn create_saved_pod(ctx: &Ctx, job: &Job, pod_name: &str, saved: &Value) -> Result<Option<String>> {
    let manifest =
        restorable_pod(job.state()?, pod_name, saved, &job.namespace).map_err(|e| Error::Invalid(e.0))?;
    let pod: Pod = serde_json::from_value(manifest).map_err(|source| Error::Json {
        what: format!("saved pod {pod_name}"),
        source,
    })?;
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &job.namespace);
    match api.create(&PostParams::default(), &pod).await {
        Ok(created) => Ok(created.uid()),
        Err(e) if matches!(crate::error::code_of(&e), Some(409)) => Ok(None),
        Err(e) => Err(e).during(|| format!("create pod {}/{pod_name}", job.namespace)),
    }
}
