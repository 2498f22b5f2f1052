//! One autoscaler, one interval: gather its database's facts from the caches and the usage
//! read, ask `autoscale::decide`, carry the decision out (at most one request), and report it
//! (status, Event, metrics).

use jiff::Timestamp;
use kube::{
    ResourceExt,
    api::{Api, DynamicObject},
};
use serde_json::Value;
use volops_shared::{
    DatabaseKind,
    api::{AutoscalerPhase, StorageRecommendation, autoscaler::autoscaler_kind, autoscaler_view},
    autoscale::{AutoscaleInput, Decision, ExpansionHistory, WaitReason, decide},
};

use super::{
    describe, events,
    history::{self, OwnedRequest},
    inputs,
    memory::Remembered,
    request::{self, Owner},
    status::{self, Wanted},
    usage::UsageMap,
    watch::autoscaler_resource,
};
use crate::{context::Ctx, metrics::autoscaler::AutoscalerLabels};

/// The autoscaler as its owner reference names it; None without a UID (never stored so).
pub fn owner_of(kind: DatabaseKind, obj: &DynamicObject) -> Option<Owner> {
    Some(Owner {
        kind,
        namespace: obj.namespace()?,
        name: obj.name_any(),
        uid: obj.uid()?,
    })
}

pub fn labels(owner: &Owner) -> AutoscalerLabels {
    AutoscalerLabels {
        kind: autoscaler_kind(owner.kind).into(),
        autoscaler_namespace: owner.namespace.clone(),
        autoscaler: owner.name.clone(),
    }
}

/// What one evaluation decided on.
struct Gathered {
    decision: Decision,
    history: ExpansionHistory,
    last_owned: Option<OwnedRequest>,
    database: String,
    crossed: bool,
}

/// The decision for one autoscaler, or None while a cache it needs is not filled (or it names
/// no database of its kind, or no section for the database's mode: nothing to act on).
fn gather(
    ctx: &Ctx,
    owner: &Owner,
    obj: &DynamicObject,
    usage: &UsageMap,
    mem: &mut Remembered,
    now: Timestamp,
) -> Option<Gathered> {
    let json = serde_json::to_value(obj).ok()?;
    let view = autoscaler_view(owner.kind, &json)
        .map_err(|e| tracing::debug!(autoscaler = %owner.name, error = %e, "autoscaler not read"))
        .ok()?;
    let caches = ctx.caches(owner.kind)?;
    let ns = owner.namespace.as_str();
    let db = caches.database(ns, &view.database)?;
    let (_, section) = inputs::section(owner.kind, &db.view, &view)?;
    let pvcs = caches.pvcs_selected(ns, &view.database)?;
    let requests = ctx.cached_requests(owner.kind, ns, &view.database)?;
    let shown = |name: &String| {
        requests
            .iter()
            .any(|r| r.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
    };
    if mem.pending.as_ref().is_some_and(shown) {
        mem.pending = None;
    }
    let (history, last_owned) = history::history(&requests, &owner.uid, mem.pending.as_deref());
    let samples = inputs::samples(ns, &pvcs, usage);
    let current = inputs::current_size(&pvcs);
    let cluster = ctx.cluster_caches();
    let policies = cluster.policies().unwrap_or_default();
    let namespace_labels = cluster.namespace_labels(ns).unwrap_or_default();
    let limits = inputs::limits(&policies, &namespace_labels, &pvcs, current, section);
    let ratio = inputs::peak_ratio(&samples);
    if !samples.is_empty() {
        ctx.metrics.autoscaler.saw_usage(&labels(owner), ratio);
    }
    let threshold = section
        .usage_threshold
        .unwrap_or(volops_shared::autoscale::growth::DEFAULT_USAGE_THRESHOLD);
    let input = AutoscaleInput {
        section,
        options: &view.options,
        samples: &samples,
        current,
        history: &history,
        limits: &limits,
        now,
    };
    Some(Gathered {
        decision: decide(&input),
        history,
        last_owned,
        database: view.database.clone(),
        crossed: section.is_on() && !samples.is_empty() && ratio * 100.0 >= f64::from(threshold),
    })
}

fn phase(g: &Gathered, pending: Option<&str>) -> AutoscalerPhase {
    let owned_active = g
        .history
        .active_request
        .as_deref()
        .is_some_and(|a| pending == Some(a) || g.last_owned.as_ref().is_some_and(|l| l.name == a));
    match &g.decision {
        Decision::Expand(_) => AutoscalerPhase::InProgress,
        _ if owned_active => AutoscalerPhase::InProgress,
        // The last expansion failed: so it stays until one succeeds.
        _ if g.history.failures.is_some() => AutoscalerPhase::Failed,
        Decision::Blocked(_)
        | Decision::Wait {
            reason: WaitReason::FailedBackoff { .. },
            ..
        } => AutoscalerPhase::Failed,
        _ => AutoscalerPhase::Current,
    }
}

/// Creates the request of an expansion decision; the recommendation for the status.
async fn expand(
    ctx: &Ctx,
    owner: &Owner,
    g: &mut Gathered,
    mem: &mut Remembered,
    now: Timestamp,
) -> Result<Option<StorageRecommendation>, kube::Error> {
    let Decision::Expand(e) = &g.decision else {
        return Ok(None);
    };
    let name = request::create(&ctx.client, owner, &g.database, e).await?;
    let kind = autoscaler_kind(owner.kind);
    let m = &ctx.metrics.autoscaler;
    if let Some(since) = mem.crossed_since.take() {
        m.requested_after(kind, now.duration_since(since).as_secs_f64());
    }
    if let Some(c) = &e.clamp {
        m.clamped(kind, &c.limit.source);
    }
    tracing::info!(autoscaler = %owner.name, namespace = %owner.namespace, request = %name, size = %e.size, "expansion requested");
    mem.pending = Some(name.clone());
    g.history.active_request = Some(name.clone());
    g.last_owned = Some(OwnedRequest {
        name,
        phase: None,
        created: Some(now),
        finished: None,
    });
    Ok(Some(StorageRecommendation {
        time: Some(now.to_string()),
        usage_percent: Some(e.peak.percent),
        from: Some(volops_shared::Quantity::from_bytes(e.from_bytes).to_string()),
        target: Some(e.size.to_string()),
        clamped_by: e.clamp.as_ref().map(|c| c.limit.source.clone()),
        message: Some(describe::expansion(e)),
    }))
}

/// Decides for one autoscaler and carries the decision out.
pub async fn evaluate(
    ctx: &Ctx,
    kind: DatabaseKind,
    obj: &DynamicObject,
    usage: &UsageMap,
    mem: &mut Remembered,
    now: Timestamp,
) -> Result<(), kube::Error> {
    let Some(owner) = owner_of(kind, obj).filter(|_| obj.metadata.deletion_timestamp.is_none()) else {
        return Ok(());
    };
    // Whole seconds, as Kubernetes writes times.
    let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
    let Some(mut g) = gather(ctx, &owner, obj, usage, mem, now) else {
        return Ok(());
    };
    if !g.crossed {
        mem.crossed_since = None;
    } else if mem.crossed_since.is_none() {
        mem.crossed_since = Some(now);
    }
    let reason = describe::reason(&g.decision);
    ctx.metrics.autoscaler.decided(autoscaler_kind(kind), reason);
    let recommendation = expand(ctx, &owner, &mut g, mem, now).await?;
    let message = describe::message(&g.decision);
    if mem.last_reason.as_deref() != Some(reason) || matches!(g.decision, Decision::Expand(_)) {
        if let Some((type_, event)) = events::event_of(&g.decision) {
            events::publish(ctx, &owner, type_, event, message.clone());
        }
        mem.last_reason = Some(reason.to_owned());
    }
    let wanted = Wanted {
        phase: phase(&g, mem.pending.as_deref()),
        generation: obj.metadata.generation,
        reason: reason.to_owned(),
        message,
        recommendation,
        last_request: g.last_owned.clone(),
        consecutive_failures: g.history.failures.map_or(0, |f| f.consecutive),
    };
    let current = obj.data.get("status").cloned().unwrap_or(Value::Null);
    let desired = status::desired(&current, &wanted, kind.ops_kind(), now);
    if status::changes(&current, &desired) {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &owner.namespace, &autoscaler_resource(kind));
        status::write(&api, &owner.name, desired).await?;
    }
    Ok(())
}
