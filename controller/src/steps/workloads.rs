//! Orphan-delete the workloads (manifest saved on the request first) and recreate them from
//! the saved manifests with the new claim size; the new workload adopts the pods and PVCs.

use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, DynamicObject, PostParams, PropagationPolicy},
};
use serde_json::Value;
use volops_shared::{
    Quantity, Workload, WorkloadKind,
    conditions::{self as c, condition},
};

use super::{Job, Outcome, SOON, database_workloads, to_json};
use crate::{
    caches::Cached,
    context::Ctx,
    decide::time,
    error::{Error, KubeContext, Result},
    manifest::{claim_size, saved_workload_kind, with_claim_size, workload_key},
};

/// What [`InFlight`](crate::caches::InFlight) records for an orphan delete.
const ORPHAN: &str = "orphan-delete";

/// One workload as a step sees it: its kind and object, or None when it does not exist.
type Live = Option<(WorkloadKind, Arc<DynamicObject>)>;

/// The workload of this name, looking at the descriptor's kind first and then the other one.
/// The caches answer where they can; the API server is asked when a cache is not synced, or
/// when `confirm_absence` (the caller would fail on a missing workload that the cache may
/// only not have seen yet).
async fn find(ctx: &Ctx, job: &Job, w: &Workload, confirm_absence: bool) -> Result<Live> {
    let caches = ctx.caches(job.kind);
    let mut unknown = false;
    for kind in [w.kind, w.kind.other()] {
        match caches
            .as_ref()
            .map_or(Cached::Unknown, |c| c.workload(kind, &job.namespace, &w.name))
        {
            Cached::Present(obj) => return Ok(Some((kind, obj))),
            Cached::Absent => {}
            Cached::Unknown => unknown = true,
        }
    }
    if !unknown && !confirm_absence {
        return Ok(None);
    }
    for kind in [w.kind, w.kind.other()] {
        match ctx.workload_api(kind, &job.namespace).get_opt(&w.name).await {
            Ok(Some(obj)) => return Ok(Some((kind, Arc::new(obj)))),
            Ok(None) => {}
            // The PetSet CRD may not be installed.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e).during(|| format!("get {} {}/{}", kind.kind(), job.namespace, w.name)),
        }
    }
    Ok(None)
}

/// The saved manifest of a workload, if any, with the kind it was saved under.
fn saved<'a>(job: &'a Job, w: &Workload) -> Option<(WorkloadKind, &'a String)> {
    [w.kind, w.kind.other()]
        .into_iter()
        .find_map(|k| job.annotations.get(&workload_key(k, &w.name)).map(|s| (k, s)))
}

/// The annotation saving a live workload's manifest.
fn manifest_annotation(
    kind: WorkloadKind,
    name: &str,
    obj: &DynamicObject,
) -> Result<(String, Option<String>)> {
    let manifest = crate::manifest::strip_workload(&to_json("workload", obj)?);
    let key = workload_key(kind, name);
    let text =
        crate::saved::encode(&manifest, crate::saved::WORKLOAD_PLAIN_MAX).map_err(|source| Error::Saved {
            key: key.clone(),
            source,
        })?;
    Ok((key, Some(text)))
}

async fn orphan_delete(ctx: &Ctx, job: &Job, kind: WorkloadKind, name: &str) -> Result<()> {
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..Default::default()
    };
    match ctx.workload_api(kind, &job.namespace).delete(name, &dp).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(crate::error::code_of(&e), Some(404)) => Ok(()),
        Err(e) => Err(e).during(|| format!("orphan-delete {} {name}", kind.kind())),
    }
}

/// Saves every workload's manifest on the request (one write, before any delete), then
/// orphan-deletes them all at once; done when none is left.
pub async fn orphan(ctx: &Ctx, job: &mut Job) -> Result<Outcome> {
    let workloads = database_workloads(ctx, job).await?;
    let mut live = Vec::with_capacity(workloads.len());
    for w in &workloads {
        live.push(find(ctx, job, w, saved(job, w).is_none()).await?);
    }
    let mut to_save = Vec::new();
    let mut used_kind = workloads.first().map_or(job.kind.workload_kind(), |w| w.kind);
    for (w, l) in workloads.iter().zip(&live) {
        used_kind = match (saved(job, w), l) {
            (Some((kind, _)), _) => kind,
            (None, Some((kind, obj))) => {
                to_save.push(manifest_annotation(*kind, &w.name, obj)?);
                *kind
            }
            (None, None) => {
                return Ok(Outcome::Fail(format!(
                    "{} {}/{} of {} {} does not exist",
                    w.kind.kind(),
                    job.namespace,
                    w.name,
                    job.kind.kind(),
                    job.database
                )));
            }
        };
    }
    job.annotate(ctx, &to_save).await?;
    let in_flight = &ctx.in_flight;
    // A delete already sent whose mark the cache does not show yet is not sent again.
    let to_delete: Vec<(WorkloadKind, &str, Option<String>)> = workloads
        .iter()
        .zip(&live)
        .filter_map(|(w, l)| match l {
            Some((kind, obj))
                if obj.metadata.deletion_timestamp.is_none()
                    && !in_flight.pending(
                        (kind.plural(), &job.namespace, &w.name),
                        ORPHAN,
                        obj.resource_version().as_deref(),
                    ) =>
            {
                Some((*kind, w.name.as_str(), obj.resource_version()))
            }
            _ => None,
        })
        .collect();
    futures::future::try_join_all(
        to_delete
            .iter()
            .map(|(kind, name, _)| orphan_delete(ctx, job, *kind, name)),
    )
    .await?;
    for (kind, name, rv) in to_delete {
        in_flight.sent((kind.plural(), &job.namespace, name), ORPHAN, rv);
    }
    let left = live.iter().filter(|l| l.is_some()).count();
    if left > 0 {
        return Ok(Outcome::wait(
            format!("waiting for {left} workloads to be deleted"),
            SOON,
        ));
    }
    Ok(Outcome::Done(vec![condition(
        used_kind.orphan_condition(),
        c::TRUE,
        used_kind.orphan_condition(),
        &format!(
            "successfully deleted the {} with orphan propagation policy",
            used_kind.plural()
        ),
        job.generation,
        time(jiff::Timestamp::now()),
    )]))
}

/// Whether the workload exists: the cache answers when synced, else the API server.
async fn exists(ctx: &Ctx, job: &Job, kind: WorkloadKind, name: &str) -> Result<bool> {
    let cached = ctx
        .caches(job.kind)
        .map_or(Cached::Unknown, |c| c.workload(kind, &job.namespace, name));
    match cached {
        Cached::Present(_) => Ok(true),
        // A creation the cache has not seen yet answers 409 below, which is success.
        Cached::Absent => Ok(false),
        Cached::Unknown => Ok(ctx
            .workload_api(kind, &job.namespace)
            .get_opt(name)
            .await
            .during(|| format!("get {} {name}", kind.kind()))?
            .is_some()),
    }
}

/// Creates one saved workload unless it exists, with the claim size `size_of` gives.
async fn recreate_one(
    ctx: &Ctx,
    job: &Job,
    workloads: &[Workload],
    (key, kind, text): (&str, WorkloadKind, &str),
    size_of: &impl AsyncSize,
) -> Result<()> {
    let saved: Value = crate::saved::decode(text).map_err(|source| Error::Saved {
        key: key.to_owned(),
        source,
    })?;
    let name = saved
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Invalid(format!("saved manifest {key} has no metadata.name")))?;
    if exists(ctx, job, kind, name).await? {
        return Ok(());
    }
    let template = workloads
        .iter()
        .find(|w| w.name == name)
        .map(|w| w.claim_template.clone())
        .or_else(|| workloads.first().map(|w| w.claim_template.clone()))
        .unwrap_or_else(|| "data".to_owned());
    let size = size_of.size(ctx, job, name, &template, &saved).await?;
    let manifest =
        with_claim_size(&saved, &template, &size).map_err(|e| Error::Invalid(format!("{key}: {e}")))?;
    let obj: DynamicObject = serde_json::from_value(manifest).map_err(|source| Error::Json {
        what: format!("manifest {key}"),
        source,
    })?;
    match ctx
        .workload_api(kind, &job.namespace)
        .create(&PostParams::default(), &obj)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if matches!(crate::error::code_of(&e), Some(409)) => Ok(()),
        Err(e) => Err(e).during(|| format!("recreate {} {}/{name}", kind.kind(), job.namespace)),
    }
}

/// Creates every saved workload that does not exist (all at once), with the claim size
/// `size_of` gives. Returns the kind of the workloads seen (for the condition name).
async fn recreate_saved(
    ctx: &Ctx,
    job: &Job,
    workloads: &[Workload],
    size_of: impl AsyncSize,
) -> Result<Option<WorkloadKind>> {
    let saved: Vec<(&str, WorkloadKind, &str)> = job
        .annotations
        .iter()
        .filter_map(|(key, text)| saved_workload_kind(key).map(|kind| (key.as_str(), kind, text.as_str())))
        .collect();
    let creates = saved
        .iter()
        .map(|&one| recreate_one(ctx, job, workloads, one, &size_of));
    futures::future::try_join_all(creates).await?;
    Ok(saved.last().map(|&(_, kind, _)| kind))
}

/// Where a recreated workload's claim size comes from.
trait AsyncSize {
    async fn size(
        &self,
        ctx: &Ctx,
        job: &Job,
        workload: &str,
        template: &str,
        saved: &Value,
    ) -> Result<String>;
}

/// The request's target.
struct Target<'a>(&'a Quantity);

impl AsyncSize for Target<'_> {
    async fn size(&self, _: &Ctx, _: &Job, _: &str, _: &str, _: &Value) -> Result<String> {
        Ok(self.0.as_str().to_owned())
    }
}

/// What the workload's PVCs really have: the largest capacity, never below the saved size.
struct RealSize;

impl AsyncSize for RealSize {
    async fn size(
        &self,
        ctx: &Ctx,
        job: &Job,
        workload: &str,
        template: &str,
        saved: &Value,
    ) -> Result<String> {
        let saved_size = claim_size(saved, template);
        let mut best = saved_size.as_deref().and_then(|s| Quantity::parse(s).ok());
        let prefix = format!("{template}-{workload}-");
        let pvcs = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &job.namespace)
            .list(&Default::default())
            .await
            .during(|| "list PVCs".into())?;
        for pvc in pvcs
            .items
            .iter()
            .filter(|p| p.metadata.name.as_deref().is_some_and(|n| n.starts_with(&prefix)))
        {
            let cap = pvc
                .status
                .as_ref()
                .and_then(|s| s.capacity.as_ref())
                .and_then(|c| c.get("storage"));
            if let Some(q) = cap.and_then(|q| Quantity::parse(&q.0).ok())
                && best.as_ref().is_none_or(|b| q > *b)
            {
                best = Some(q);
            }
        }
        best.map(|q| q.as_str().to_owned())
            .ok_or_else(|| Error::Invalid(format!("no claim size known for workload {workload}")))
    }
}

pub async fn recreate(ctx: &Ctx, job: &Job) -> Result<Outcome> {
    let target = job.target()?.clone();
    let workloads = database_workloads(ctx, job).await?;
    let kind = recreate_saved(ctx, job, &workloads, Target(&target))
        .await?
        .unwrap_or(job.kind.workload_kind());
    Ok(Outcome::Done(vec![condition(
        kind.update_condition(),
        c::TRUE,
        kind.update_condition(),
        &format!("successfully reconciled the {} resources", job.kind.kind()),
        job.generation,
        time(jiff::Timestamp::now()),
    )]))
}

/// Cleanup: recreate any saved workload still missing with the size its PVCs really have.
pub async fn restore(ctx: &Ctx, job: &Job) -> Result<()> {
    let workloads = database_workloads(ctx, job).await.unwrap_or_default();
    recreate_saved(ctx, job, &workloads, RealSize).await?;
    Ok(())
}

/// The keys of every saved workload manifest.
pub fn saved_keys(job: &Job) -> Vec<String> {
    job.annotations
        .keys()
        .filter(|k| saved_workload_kind(k).is_some())
        .cloned()
        .collect()
}
