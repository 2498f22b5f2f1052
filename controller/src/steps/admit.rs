//! Admit: queue behind other requests for the same database (and the saved state of any that
//! is over or gone), re-check the shared rules (the webhook may have been bypassed) and the
//! database's topology limits, with `apply: IfReady` wait for the database, then save what is
//! admitted: the generation, the size, the mode and the database's UID.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    core::v1::{Namespace, PersistentVolumeClaim, ResourceQuota},
    storage::v1::StorageClass,
};
use kube::{Api, ResourceExt, api::ListParams};
use volops_shared::{
    Facts,
    api::{ApplyPolicy, Condition, OpsRequestPhase, VolumeExpansionPolicy},
    conditions::{self as c, condition},
    facts::{DatabaseView, OpsRequestView, PolicyView, PvcView, QuotaView, StorageClassView},
    rules::{QueueDecision, decide_queue, quotas_need_namespace_pvcs, validate_create},
};

use super::{Job, LATER, Outcome, SOON, to_json};
use crate::{
    cluster_caches::ClusterCaches,
    context::Ctx,
    error::{KubeContext, Result},
    saved::Admitted,
};

/// The condition of a request waiting behind another one of its database.
pub const QUEUED: &str = "Queued";

pub async fn run(ctx: &Ctx, job: &mut Job) -> Result<Outcome> {
    let request = OpsRequestView::from_json(job.kind, &job.raw);
    let others = other_requests(ctx, job).await?;
    let started = match queue(ctx, job, &request, &others).await? {
        Ok(started) => started,
        Err(outcome) => return Ok(outcome),
    };
    // A request that ended, or was deleted, without its cleanup still holds the database.
    if let Some(why) = crate::sweep::clear_database(ctx, job).await? {
        return Ok(Outcome::wait(why, SOON));
    }
    let mut facts = facts(ctx, job, request.clone(), others.clone(), Source::Caches).await?;
    if validate_create(&facts).message().is_some() {
        // A cache may lag by a watch event, and a denial fails the request for good: confirm
        // it on facts read from the API server.
        facts = self::facts(ctx, job, request, others, Source::Api).await?;
    }
    if let Some(message) = validate_create(&facts).message() {
        return Ok(Outcome::Fail(message.to_owned()));
    }
    let db = job.describe_database();
    // A tenant writes these counts: an absurd one fails this request before anything is
    // allocated for it (shared/src/descriptor/mod.rs, `Topology::check`).
    if let Some(Err(e)) = facts.database.as_ref().map(|d| d.topology.check()) {
        return Ok(Outcome::Fail(format!("{db}: {e}")));
    }
    let phase = facts.database.as_ref().and_then(|d| d.phase.clone());
    if let Some(why) = ready_gate(job.apply, phase.as_deref()) {
        return Ok(Outcome::wait(format!("{why}: {db}"), LATER));
    }
    let cached = ctx
        .caches(job.kind)
        .and_then(|c| c.database(&job.namespace, &job.database));
    let database_uid = match cached {
        Some(d) => d.uid,
        None => super::get_database(ctx, job).await?.and_then(|d| d.uid()),
    };
    let Some(database_uid) = database_uid else {
        return Ok(Outcome::Fail(format!("{db} does not exist")));
    };
    let admitted = Admitted {
        generation: job.generation.unwrap_or_default(),
        target: job.spec_target()?.as_str().to_owned(),
        mode: job.mode,
        database_uid,
    };
    job.saved_mut(ctx).await?.admitted = Some(admitted);
    job.save(ctx).await?;
    Ok(Outcome::Done(started))
}

/// The queue (KubeDB's single flight per database): Ok(conditions to record) when this
/// request may start, Err(outcome) when it waits behind another one or is superseded.
async fn queue(
    ctx: &Ctx,
    job: &mut Job,
    request: &OpsRequestView,
    others: &[OpsRequestView],
) -> Result<std::result::Result<Vec<Condition>, Outcome>> {
    let now = || c::now();
    match decide_queue(request, others) {
        QueueDecision::Run => {
            // A request that waited says so no more once it starts.
            let waited = c::find(&job.status.conditions, QUEUED).filter(|q| q.status == c::TRUE);
            Ok(Ok(waited
                .map(|q| {
                    let why = q.message.as_deref().unwrap_or_default();
                    let message = format!("started, no longer waiting ({why})");
                    condition(QUEUED, c::FALSE, QUEUED, &message, job.generation, now())
                })
                .into_iter()
                .collect()))
        }
        QueueDecision::Wait { behind } => {
            // Shown on the request: it stays Pending until `behind` is over, then is judged
            // again by the same rules.
            let message = format!(
                "waiting for {} {}/{behind}: one request at a time per database; this one is judged again \
                 and starts when that one is over",
                job.kind.ops_kind(),
                job.namespace
            );
            let shown = c::find(&job.status.conditions, QUEUED)
                .is_some_and(|q| q.status == c::TRUE && q.message.as_deref() == Some(message.as_str()));
            if !shown {
                let mut status = job.status.clone();
                status.phase = Some(OpsRequestPhase::Pending);
                let queued = condition(QUEUED, c::TRUE, QUEUED, &message, job.generation, now());
                c::set(&mut status.conditions, queued);
                job.write_status(ctx, status).await?;
            }
            Ok(Err(Outcome::wait(message, LATER)))
        }
        QueueDecision::Skip { superseded_by } => Ok(Err(Outcome::Skip(format!(
            "skipped as {}/{superseded_by} is the most updated {} of type {}",
            job.namespace,
            job.kind.ops_kind(),
            volops_shared::api::ops::VOLUME_EXPANSION
        )))),
    }
}

/// Pure: why `apply: IfReady` holds the request back, if it does.
pub fn ready_gate(apply: ApplyPolicy, phase: Option<&str>) -> Option<String> {
    match (apply, phase) {
        (ApplyPolicy::Always, _) | (ApplyPolicy::IfReady, Some("Ready")) => None,
        (ApplyPolicy::IfReady, p) => Some(format!(
            "apply is IfReady and the database is {}",
            p.unwrap_or("not Ready")
        )),
    }
}

/// The other requests of the same database (the queue looks at no others): from the
/// controller's cache, which holds every request created before this one was seen; from the
/// API while that cache is not filled yet.
async fn other_requests(ctx: &Ctx, job: &Job) -> Result<Vec<OpsRequestView>> {
    let items = match ctx.cached_requests(job.kind, &job.namespace, &job.database) {
        Some(items) => items,
        None => job
            .api(ctx)
            .list(&ListParams::default())
            .await
            .during(|| format!("list {}", job.kind.ops_plural()))?
            .items
            .iter()
            .map(|o| to_json("ops request", o))
            .collect::<Result<Vec<_>>>()?,
    };
    Ok(items
        .iter()
        .filter(|o| o.pointer("/metadata/name").and_then(|n| n.as_str()) != Some(job.name.as_str()))
        .map(|o| OpsRequestView::from_json(job.kind, o))
        .collect())
}

/// Where [`facts`] reads from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The watch-fed caches, and the API server for what they cannot answer yet.
    Caches,
    /// The API server only.
    Api,
}

async fn facts(
    ctx: &Ctx,
    job: &Job,
    request: OpsRequestView,
    others: Vec<OpsRequestView>,
    source: Source,
) -> Result<Facts> {
    let ns = job.namespace.as_str();
    let mut facts = Facts::new(job.kind, request);
    facts.other_requests = others;
    let caches = (source == Source::Caches).then(|| ctx.caches(job.kind)).flatten();
    // The cached database will do (the webhook decides on its cache too); a database the
    // cache lacks is read, as it may only be new.
    let cached = caches
        .as_ref()
        .and_then(|caches| caches.database(&job.namespace, &job.database));
    facts.database = match cached {
        Some(db) => Some(db.view),
        None => super::get_database(ctx, job)
            .await?
            .map(|d| to_json("database", &d))
            .transpose()?
            .map(|v| DatabaseView::from_json(job.kind, &v)),
    };
    let cluster = (source == Source::Caches).then(|| ctx.cluster_caches());
    let (quotas, classes, namespace, policies) = futures::try_join!(
        quotas(ctx, ns, cluster),
        storage_classes(ctx, cluster),
        namespace_labels(ctx, ns, cluster),
        policies(ctx, cluster)
    )?;
    facts.quotas = quotas;
    facts.storage_classes = volops_shared::facts::Shared::new(classes);
    facts.namespace_labels = namespace;
    facts.policies = policies;
    let lp = ListParams::default();
    let api = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), ns);
    // Quotas count every PVC of the namespace, which only a list shows (the PVC cache holds
    // the kind's offshoots); otherwise the cached PVCs of the database will do.
    let cached = caches
        .filter(|_| !quotas_need_namespace_pvcs(&facts.quotas))
        .and_then(|caches| caches.pvcs_selected(ns, &job.database));
    facts.namespace_pvcs = match cached {
        Some(pvcs) => pvcs.into(),
        None => {
            let lp = if quotas_need_namespace_pvcs(&facts.quotas) {
                lp
            } else {
                lp.labels(&job.kind.selector(&job.database))
            };
            let pvcs = api.list(&lp).await.during(|| "list PVCs".into())?;
            pvcs.items.iter().map(PvcView::from_pvc).collect()
        }
    };
    Ok(facts)
}

// Each cluster-wide fact from the cluster caches (the webhook decides on its caches too), or
// read from the API server when they cannot answer yet (or `cluster` is None: a denial is
// being confirmed).

async fn quotas(ctx: &Ctx, ns: &str, cluster: Option<&ClusterCaches>) -> Result<Vec<QuotaView>> {
    if let Some(q) = cluster.and_then(|c| c.quotas(ns)) {
        return Ok(q);
    }
    Api::<ResourceQuota>::namespaced(ctx.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .during(|| "list ResourceQuotas".into())
        .map(|l| l.items.iter().map(QuotaView::from_quota).collect())
}

async fn storage_classes(ctx: &Ctx, cluster: Option<&ClusterCaches>) -> Result<Vec<StorageClassView>> {
    if let Some(c) = cluster.and_then(ClusterCaches::storage_classes) {
        return Ok(c);
    }
    Api::<StorageClass>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .during(|| "list StorageClasses".into())
        .map(|l| l.items.iter().map(StorageClassView::from_class).collect())
}

async fn namespace_labels(
    ctx: &Ctx,
    ns: &str,
    cluster: Option<&ClusterCaches>,
) -> Result<BTreeMap<String, String>> {
    if let Some(labels) = cluster.and_then(|c| c.namespace_labels(ns)) {
        return Ok(labels);
    }
    Api::<Namespace>::all(ctx.client.clone())
        .get_opt(ns)
        .await
        .during(|| format!("get namespace {ns}"))
        .map(|n| n.and_then(|n| n.metadata.labels).unwrap_or_default())
}

/// Every policy (the rules pick those that select the namespace); the policy CRD is optional:
/// a cluster without it has none.
async fn policies(ctx: &Ctx, cluster: Option<&ClusterCaches>) -> Result<Vec<PolicyView>> {
    if let Some(p) = cluster.and_then(ClusterCaches::policies) {
        return Ok(p);
    }
    match Api::<VolumeExpansionPolicy>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => Ok(list.items.iter().map(PolicyView::from_policy).collect()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e).during(|| "list VolumeExpansionPolicies".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_ready_waits_for_a_ready_database_and_always_does_not() {
        let cases = [
            (ApplyPolicy::IfReady, Some("Ready"), None),
            (
                ApplyPolicy::IfReady,
                Some("NotReady"),
                Some("apply is IfReady and the database is NotReady"),
            ),
            (
                ApplyPolicy::IfReady,
                Some("Provisioning"),
                Some("apply is IfReady and the database is Provisioning"),
            ),
            (
                ApplyPolicy::IfReady,
                None,
                Some("apply is IfReady and the database is not Ready"),
            ),
            (ApplyPolicy::Always, Some("NotReady"), None),
            (ApplyPolicy::Always, None, None),
        ];
        for (apply, phase, want) in cases {
            assert_eq!(ready_gate(apply, phase).as_deref(), want, "{apply:?} {phase:?}");
        }
    }
}
