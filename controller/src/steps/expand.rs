//! Expand: Online patches every PVC to the target at once and waits for the capacity; Offline
//! goes pod by pod (KUBEDB.md §3.3 step 5) so at most one pod of the database is missing.

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
    Quantity, Workload,
    api::VolumeExpansionMode,
    conditions::{self as c, condition, pod_annotation},
};

use super::{Job, Outcome, SOON, database_workloads, to_json};
use crate::{
    context::Ctx,
    decide::{cleanup_may_wait, time},
    error::{Error, KubeContext, Result},
    manifest::{pod_uid_key, strip_pod},
    metrics::KindLabels,
    pvc::{PvcProgress, controller_resize_pending, patch_now, progress},
};

pub async fn run(ctx: &Ctx, job: &mut Job) -> Result<Outcome> {
    let target = job.target()?.clone();
    let workloads = database_workloads(ctx, job).await?;
    let outcome = match job.mode {
        VolumeExpansionMode::Online => online(ctx, job, &workloads, &target).await?,
        VolumeExpansionMode::Offline => offline(ctx, job, &workloads, &target).await?,
    };
    if !matches!(outcome, Outcome::Done(_)) {
        return Ok(outcome);
    }
    Ok(Outcome::Done(vec![condition(
        c::VOLUME_EXPANSION_SUCCEEDED,
        c::TRUE,
        c::VOLUME_EXPANSION_SUCCEEDED,
        &format!(
            "successfully updated PVC sizes to {target} ({})",
            job.mode.as_str()
        ),
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
            kind: job.kind.kind().into(),
        })
        .inc();
    Ok(())
}

async fn online(ctx: &Ctx, job: &Job, workloads: &[Workload], target: &Quantity) -> Result<Outcome> {
    let names: Vec<String> = workloads.iter().flat_map(Workload::pvcs).collect();
    let pvcs = load_pvcs(ctx, job, &names).await?;
    let mut known = Vec::new();
    let mut states = Vec::new();
    let in_flight = &ctx.in_flight;
    const PVCS: &str = "persistentvolumeclaims";
    for name in &names {
        let Some(pvc) = pvcs.get(name) else { continue };
        match progress(pvc, target) {
            PvcProgress::Infeasible(message) => return Ok(Outcome::Fail(message)),
            PvcProgress::NeedsPatch
                if in_flight.pending(
                    (PVCS, &job.namespace, name),
                    target.as_str(),
                    pvc.resource_version().as_deref(),
                ) =>
            {
                known.push(name.as_str());
                states.push(PvcProgress::Resizing);
            }
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
    for name in &to_patch {
        let rv = pvcs.get(*name).and_then(|p| p.resource_version());
        in_flight.sent((PVCS, &job.namespace, name), target.as_str(), rv);
    }
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
async fn offline(ctx: &Ctx, job: &mut Job, workloads: &[Workload], target: &Quantity) -> Result<Outcome> {
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &job.namespace);
    for w in workloads {
        for pod_name in w.pods() {
            let pvc_name = w.pvc_of(&pod_name);
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
            let saved_key = pod_annotation(&pod_name);
            let uid_key = pod_uid_key(&pod_name);
            let saved_uid = job.annotations.get(&uid_key).cloned();
            if !job.annotations.contains_key(&saved_key) {
                match pod {
                    Some(_) if pvc_progress == PvcProgress::Reached => continue,
                    None if pvc_progress == PvcProgress::Reached => continue,
                    None => return Ok(Outcome::Fail(format!("pod: {pod_name} doesn't exist"))),
                    Some(pod) => {
                        // Save first: a restarted controller can always put the pod back.
                        let stripped = strip_pod(&to_json("pod", &pod)?);
                        let text = crate::saved::encode(&stripped, crate::saved::POD_PLAIN_MAX).map_err(
                            |source| Error::Saved {
                                key: saved_key.clone(),
                                source,
                            },
                        )?;
                        let uid = pod.uid().unwrap_or_default();
                        job.annotate(ctx, &[(saved_key, Some(text)), (uid_key, Some(uid.clone()))])
                            .await?;
                        delete_pod(&pods_api, &pod_name, &uid).await?;
                        return Ok(Outcome::wait(format!("deleted pod {pod_name}"), SOON));
                    }
                }
            }
            match pod {
                Some(pod) if pod.uid() == saved_uid => {
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
                        create_saved_pod(ctx, job, &pod_name).await?;
                        return Ok(Outcome::wait(format!("recreated pod {pod_name}"), SOON));
                    }
                },
                Some(pod) => {
                    if !pod_ready(&pod) || pvc_progress != PvcProgress::Reached {
                        return Ok(Outcome::wait(
                            format!(
                                "waiting for pod {pod_name} to be Ready and PVC {pvc_name} to reach {target}"
                            ),
                            SOON,
                        ));
                    }
                    job.annotate(
                        ctx,
                        &[(pod_annotation(&pod_name), None), (pod_uid_key(&pod_name), None)],
                    )
                    .await?;
                }
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

/// Creates a pod from its saved JSON (no-op if it exists).
async fn create_saved_pod(ctx: &Ctx, job: &Job, pod_name: &str) -> Result<()> {
    let key = pod_annotation(pod_name);
    let Some(text) = job.annotations.get(&key) else {
        return Ok(());
    };
    let mut saved: Value = crate::saved::decode(text).map_err(|source| Error::Saved {
        key: key.clone(),
        source,
    })?;
    let saved = strip_pod(&std::mem::take(&mut saved));
    let pod: Pod = serde_json::from_value(saved).map_err(|source| Error::Json {
        what: format!("pod {key}"),
        source,
    })?;
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &job.namespace);
    match api.create(&PostParams::default(), &pod).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(crate::error::code_of(&e), Some(409)) => Ok(()),
        Err(e) => Err(e).during(|| format!("recreate pod {pod_name}")),
    }
}

/// Cleanup: recreate every saved pod that is missing; true when none is missing any more and
/// their annotations are gone.
pub async fn restore_pods(ctx: &Ctx, job: &mut Job) -> Result<bool> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &job.namespace);
    let mut done = Vec::new();
    for name in saved_pods(job) {
        let saved_uid = job.annotations.get(&pod_uid_key(&name)).cloned();
        match api.get_opt(&name).await.during(|| format!("get pod {name}"))? {
            // The old pod is still going away; recreate it once it is gone.
            Some(p) if p.uid() == saved_uid && p.metadata.deletion_timestamp.is_some() => return Ok(false),
            Some(_) => done.push(name),
            None => {
                create_saved_pod(ctx, job, &name).await?;
                done.push(name);
            }
        }
    }
    let changes: Vec<(String, Option<String>)> = done
        .iter()
        .flat_map(|p| [(pod_annotation(p), None), (pod_uid_key(p), None)])
        .collect();
    job.annotate(ctx, &changes).await?;
    Ok(true)
}

/// The pods an Offline expansion took down and saved.
fn saved_pods(job: &Job) -> Vec<String> {
    job.annotations
        .keys()
        .filter_map(|k| k.strip_prefix("volumeexpansion.ops.kubedb.com/"))
        .map(str::to_owned)
        .collect()
}

/// Cleanup: whether a claim of a pod this request took down is still in its controller-side
/// resize, so neither the pod nor its workload (whose controller would create the pod) may
/// come back yet. Put back now, an offline-only driver needs yet another restart to grow the
/// file system, and the claim stays half expanded. Bounded by [`crate::decide::RESIZE_GRACE`].
pub async fn claims_resizing(ctx: &Ctx, job: &Job) -> Result<bool> {
    if !cleanup_may_wait(&job.status.conditions, jiff::Timestamp::now()) {
        return Ok(false);
    }
    for pod_name in saved_pods(job) {
        if claim_resizing(ctx, job, &pod_name).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether a claim of the saved pod `pod_name` is in its controller-side resize.
async fn claim_resizing(ctx: &Ctx, job: &Job, pod_name: &str) -> Result<bool> {
    for claim in saved_claims(job, pod_name) {
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

/// The claims the saved pod mounts (none if its JSON cannot be read).
fn saved_claims(job: &Job, pod_name: &str) -> Vec<String> {
    let Some(saved) = job
        .annotations
        .get(&pod_annotation(pod_name))
        .and_then(|t| crate::saved::decode(t).ok())
    else {
        return Vec::new();
    };
    saved
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.pointer("/persistentVolumeClaim/claimName")?.as_str())
        .map(str::to_owned)
        .collect()
}
