//! Expand: Online patches every PVC of the saved workloads to the target at once and waits for
//! the capacity; Offline goes pod by pod (controller/DESIGN-NOTES.md) so at most one pod of the
//! database is missing.

use std::{collections::BTreeMap, sync::Arc};

use futures::future::try_join_all;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions},
};
use serde_json::{Value, json};
use tracing::info;
use volops_shared::{
    Quantity,
    api::VolumeExpansionMode,
    conditions::{self as c, condition},
};

use super::{Job, Outcome, SOON, to_json};
use crate::{
    context::Ctx,
    decide::{cleanup_may_wait, time},
    error::{Error, KubeContext, Result},
    manifest::strip_pod,
    metrics::KindLabels,
    ownership::restorable_pod,
    pvc::{PvcProgress, controller_resize_pending, patch_now, progress},
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
        time(jiff::Timestamp::now()),
    )]))
}

fn pvc_api(ctx: &Ctx, job: &Job) -> Api<PersistentVolumeClaim> {
    Api::namespaced(ctx.client.clone(), &job.namespace)
}

/// Every PVC of the database by name: from the cache (a PVC seen behind is looked at again on
/// its next event) or one labelled list, then a get for any they missed.
async fn load_pvcs(
    ctx: &Ctx,
    job: &Job,
    names: &[String],
) -> Result<BTreeMap<String, Arc<PersistentVolumeClaim>>> {
    let api = pvc_api(ctx, job);
    let cached = ctx
        .caches(job.kind)
        .and_then(|c| c.pvcs_of(&job.namespace, &job.database, names));
    let listed = match cached {
        Some(pvcs) => pvcs,
        None => {
            let lp = ListParams::default().labels(&job.kind.selector(&job.database));
            let list = api.list(&lp).await.during(|| "list PVCs".into())?;
            list.items.into_iter().map(Arc::new).collect()
        }
    };
    let mut by_name: BTreeMap<String, Arc<PersistentVolumeClaim>> =
        listed.into_iter().map(|p| (p.name_any(), p)).collect();
    let missing: Vec<&String> = names.iter().filter(|n| !by_name.contains_key(*n)).collect();
    for name in missing {
        let pvc = api.get_opt(name).await.during(|| format!("get PVC {name}"))?;
        let pvc =
            pvc.ok_or_else(|| Error::Invalid(format!("PVC {}/{name} does not exist", job.namespace)))?;
        by_name.insert(name.clone(), Arc::new(pvc));
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

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Offline: the first pod that is not finished gets the next action, then the step waits.
/// Only a pod whose UID the saved state records (controlled by a verified workload when it was
/// saved, or created by this request) is ever taken down.
async fn offline(ctx: &Ctx, job: &mut Job, target: &Quantity) -> Result<Outcome> {
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &job.namespace);
    let order: Vec<(String, String)> = job
        .state()?
        .workloads
        .iter()
        .flat_map(|w| w.pods().map(|pod| (w.claim_of(&pod), pod)))
        .collect();
    for (pvc_name, pod_name) in order {
        let pvc = pvc_api(ctx, job)
            .get_opt(&pvc_name)
            .await
            .during(|| format!("get PVC {pvc_name}"))?
            .ok_or_else(|| Error::Invalid(format!("PVC {}/{pvc_name} does not exist", job.namespace)))?;
        let pvc_progress = progress(&pvc, target);
        if let PvcProgress::Infeasible(message) = pvc_progress {
            return Ok(Outcome::Fail(message));
        }
        let pod = pods_api
            .get_opt(&pod_name)
            .await
            .during(|| format!("get pod {pod_name}"))?;
        let record = job.state()?.pods.get(&pod_name).cloned().unwrap_or_default();
        let reached = pvc_progress == PvcProgress::Reached;
        let Some(saved) = record.manifest.clone() else {
            match pod {
                // Put back by this request: wait until it runs on the grown claim.
                Some(pod) if record.restarted && !(pod_ready(&pod) && reached) => {
                    return Ok(Outcome::wait(
                        format!(
                            "waiting for pod {pod_name} to be Ready and PVC {pvc_name} to reach {target}"
                        ),
                        SOON,
                    ));
                }
                Some(_) | None if reached => continue,
                Some(_) if record.restarted => continue,
                None => return Ok(Outcome::Fail(format!("pod: {pod_name} doesn't exist"))),
                Some(pod) => {
                    if record.uid.is_none() || pod.uid() != record.uid {
                        return Ok(Outcome::Fail(format!(
                            "pod {}/{pod_name} (uid {}) is not a pod the database's workload controlled when it \
                             was saved; refusing to delete it",
                            job.namespace,
                            pod.uid().unwrap_or_default()
                        )));
                    }
                    // Save first: a restarted controller can always put the pod back.
                    let stripped = strip_pod(&to_json("pod", &pod)?);
                    let uid = pod.uid().unwrap_or_default();
                    job.saved_mut(ctx)
                        .await?
                        .pods
                        .entry(pod_name.clone())
                        .or_default()
                        .manifest = Some(stripped);
                    job.save(ctx).await?;
                    delete_pod(&pods_api, &pod_name, &uid).await?;
                    return Ok(Outcome::wait(format!("deleted pod {pod_name}"), SOON));
                }
            }
        };
        match pod {
            Some(pod) if record.uid.is_some() && pod.uid() == record.uid => {
                if pod.metadata.deletion_timestamp.is_none() {
                    delete_pod(&pods_api, &pod_name, &pod.uid().unwrap_or_default()).await?;
                }
                return Ok(Outcome::wait(
                    format!("waiting for pod {pod_name} to be deleted"),
                    SOON,
                ));
            }
            None => match pvc_progress {
                PvcProgress::NeedsPatch => {
                    patch_pvc(ctx, job, &pvc_name, target).await?;
                    return Ok(Outcome::wait(format!("PVC {pvc_name} patched to {target}"), SOON));
                }
                PvcProgress::Resizing => {
                    return Ok(Outcome::wait(
                        format!("waiting for PVC {pvc_name} to resize"),
                        SOON,
                    ));
                }
                _ => {
                    let uid = create_saved_pod(ctx, job, &pod_name, &saved).await?;
                    let entry = job
                        .saved_mut(ctx)
                        .await?
                        .pods
                        .entry(pod_name.clone())
                        .or_default();
                    *entry = SavedPod {
                        uid,
                        manifest: None,
                        restarted: true,
                    };
                    job.save(ctx).await?;
                    return Ok(Outcome::wait(format!("recreated pod {pod_name}"), SOON));
                }
            },
            // Another pod at its name (one this request created before a crash, or anyone's):
            // never deleted; once it runs on the grown claim the pod is done, its UID unknown.
            Some(pod) => {
                if !pod_ready(&pod) || !reached {
                    return Ok(Outcome::wait(
                        format!(
                            "waiting for pod {pod_name} to be Ready and PVC {pvc_name} to reach {target}"
                        ),
                        SOON,
                    ));
                }
                let entry = job
                    .saved_mut(ctx)
                    .await?
                    .pods
                    .entry(pod_name.clone())
                    .or_default();
                *entry = SavedPod {
                    uid: None,
                    manifest: None,
                    restarted: true,
                };
                job.save(ctx).await?;
            }
        }
    }
    Ok(Outcome::Done(Vec::new()))
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

/// Cleanup: whether a claim of a pod this request took down is still in its controller-side
/// resize, so neither the pod nor its workload (whose controller would create the pod) may
/// come back yet. Put back now, an offline-only driver needs yet another restart to grow the
/// file system, and the claim stays half expanded. Bounded by [`crate::decide::RESIZE_GRACE`].
pub async fn claims_resizing(ctx: &Ctx, job: &Job) -> Result<bool> {
    if !cleanup_may_wait(&job.status.conditions, jiff::Timestamp::now()) {
        return Ok(false);
    }
    let Some(state) = job.saved.as_ref().map(|s| &s.state) else {
        return Ok(false);
    };
    for (pod_name, pod) in &state.pods {
        let Some(saved) = &pod.manifest else { continue };
        if claim_resizing(ctx, job, pod_name, saved).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether a claim of the saved pod `pod_name` is in its controller-side resize.
async fn claim_resizing(ctx: &Ctx, job: &Job, pod_name: &str, saved: &Value) -> Result<bool> {
    for claim in saved_claims(saved) {
        let pvc = pvc_api(ctx, job)
            .get_opt(&claim)
            .await
            .during(|| format!("get PVC {claim}"))?;
        if pvc.as_ref().is_some_and(controller_resize_pending) {
            info!(request = %job.describe(), pod = pod_name, pvc = %claim,
                "cleanup keeps the pod away until the controller-side resize is done");
            return Ok(true);
        }
    }
    Ok(false)
}

/// The claims a saved pod mounts.
fn saved_claims(saved: &Value) -> Vec<String> {
    saved
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.pointer("/persistentVolumeClaim/claimName")?.as_str())
        .map(str::to_owned)
        .collect()
}
