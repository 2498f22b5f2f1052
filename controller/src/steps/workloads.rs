//! Orphan-delete the workloads (manifest saved on the request first) and recreate them from
//! the saved manifests with the new claim size; the new workload adopts the pods and PVCs.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::{
    Api,
    api::{DeleteParams, DynamicObject, PostParams, PropagationPolicy},
};
use serde_json::Value;
use volops_shared::{
    Quantity, Workload, WorkloadKind,
    conditions::{self as c, condition},
};

use super::{Job, Outcome, SOON, database_workloads, to_json};
use crate::{
    context::Ctx,
    decide::time,
    error::{Error, KubeContext, Result},
    manifest::{claim_size, parse_workload_key, with_claim_size, workload_key},
};

/// The workload of this name, looking at the descriptor's kind first and then the other one.
async fn find(ctx: &Ctx, job: &Job, w: &Workload) -> Result<Option<(WorkloadKind, DynamicObject)>> {
    for kind in [w.kind, w.kind.other()] {
        match ctx.workload_api(kind, &job.namespace).get_opt(&w.name).await {
            Ok(Some(obj)) => return Ok(Some((kind, obj))),
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

pub async fn orphan(ctx: &Ctx, job: &mut Job) -> Result<Outcome> {
    let workloads = database_workloads(ctx, job).await?;
    let mut gone = 0;
    let mut used_kind = workloads.first().map_or(job.kind.workload_kind(), |w| w.kind);
    for w in &workloads {
        let live = find(ctx, job, w).await?;
        let kind = match (saved(job, w), &live) {
            (Some((kind, _)), _) => kind,
            (None, Some((kind, obj))) => {
                let manifest = crate::manifest::strip_workload(&to_json("workload", obj)?);
                let text = serde_json::to_string(&manifest).map_err(|source| Error::Json {
                    what: "workload manifest".into(),
                    source,
                })?;
                job.annotate(ctx, &[(workload_key(*kind, &w.name), Some(text))])
                    .await?;
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
        used_kind = kind;
        match live {
            None => gone += 1,
            Some((live_kind, obj)) if obj.metadata.deletion_timestamp.is_none() => {
                let dp = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Orphan),
                    ..Default::default()
                };
                match ctx
                    .workload_api(live_kind, &job.namespace)
                    .delete(&w.name, &dp)
                    .await
                {
                    Ok(_) => {}
                    Err(e) if matches!(crate::error::code_of(&e), Some(404)) => {}
                    Err(e) => {
                        return Err(e).during(|| format!("orphan-delete {} {}", live_kind.kind(), w.name));
                    }
                }
            }
            Some(_) => {}
        }
    }
    if gone < workloads.len() {
        return Ok(Outcome::wait(
            format!("waiting for {} workloads to be deleted", workloads.len() - gone),
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

/// Creates every saved workload that does not exist, with the claim size `size_of` gives.
/// Returns the kind of the workloads seen (for the condition name).
async fn recreate_saved(
    ctx: &Ctx,
    job: &Job,
    workloads: &[Workload],
    size_of: impl AsyncSize,
) -> Result<Option<WorkloadKind>> {
    let mut seen = None;
    for (key, text) in &job.annotations {
        let Some((kind, name)) = parse_workload_key(key) else {
            continue;
        };
        seen = Some(kind);
        let api = ctx.workload_api(kind, &job.namespace);
        if api
            .get_opt(name)
            .await
            .during(|| format!("get {} {name}", kind.kind()))?
            .is_some()
        {
            continue;
        }
        let saved: Value = serde_json::from_str(text).map_err(|source| Error::Json {
            what: format!("saved manifest {key}"),
            source,
        })?;
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
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => {}
            Err(e) if matches!(crate::error::code_of(&e), Some(409)) => {}
            Err(e) => return Err(e).during(|| format!("recreate {} {}/{name}", kind.kind(), job.namespace)),
        }
    }
    Ok(seen)
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
        .filter(|k| parse_workload_key(k).is_some())
        .cloned()
        .collect()
}
