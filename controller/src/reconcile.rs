//! One reconcile: fetch the request -> decide the next step from its conditions (pure) -> do
//! that step (idempotent) -> record its condition on `/status` -> requeue.

use std::{sync::Arc, time::Duration};

use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        controller::Action,
        events::{Event, EventType},
    },
};
use serde_json::json;
use tracing::{debug, info, warn};
use volops_shared::{
    api::{Condition, OpsRequestPhase},
    conditions::{self as c, condition},
    duration,
};

use crate::{
    caches::Freshest,
    context::Ctx,
    decide::{Step, next_step, step_started, step_timed_out, time},
    error::{Error, KubeContext, Result},
    metrics::{ErrorLabels, PhaseLabels, StepLabels},
    ops::OpsRequest,
    steps::{self, Job, Outcome},
};

/// Finalizer that makes a deletion mid-way run the cleanup first.
pub const FINALIZER: &str = "volops.dev/cleanup";
/// Delay before the step after a finished one: none, as every reconcile reads the request fresh
/// (a delay here is paid once per step by every request).
const NEXT_STEP: Duration = Duration::ZERO;
/// Annotation counting a step's non-transient errors against `maxRetries`.
pub const RETRIES_KEY: &str = "volops.dev/retries";

/// The ops request read from the API server (None when it is gone).
async fn read_request<R: OpsRequest>(ctx: &Ctx, ns: &str, name: &str) -> Result<Option<Arc<R>>> {
    let api: Api<R> = Api::namespaced(ctx.client.clone(), ns);
    let versions = &ctx.request_versions;
    match api.get_opt(name).await.during(|| format!("get {name}"))? {
        Some(fresh) => {
            versions.saw(R::KIND, ns, name, fresh.resource_version());
            Ok(Some(Arc::new(fresh)))
        }
        None => {
            versions.forget(R::KIND, ns, name);
            Ok(None)
        }
    }
}

/// A written ops request as its typed self (None if it does not convert: then it is read).
fn as_request<R: OpsRequest>(obj: &kube::api::DynamicObject) -> Option<R> {
    serde_json::to_value(obj).and_then(serde_json::from_value).ok()
}

pub async fn reconcile<R: OpsRequest>(obj: Arc<R>, ctx: Arc<Ctx>) -> Result<Action> {
    if !obj.is_volume_expansion() {
        return Ok(Action::await_change());
    }
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let versions = &ctx.request_versions;
    // The cached copy will do unless this process wrote or read a newer one; after its own
    // write (the usual case: the watch event is still on its way) it goes on from what that
    // write returned.
    let rv = obj.resource_version();
    let fresh = match versions.freshest(R::KIND, &ns, &name, rv.as_deref()) {
        Freshest::Cache => Some(obj),
        Freshest::Written(written) => match as_request::<R>(&written) {
            Some(r) => Some(Arc::new(r)),
            None => read_request(&ctx, &ns, &name).await?,
        },
        Freshest::Read => read_request(&ctx, &ns, &name).await?,
    };
    let Some(fresh) = fresh else {
        return Ok(Action::await_change());
    };
    let mut job = Job::from_request(fresh.as_ref())?;
    if job.deleting {
        return on_delete(&ctx, &mut job).await;
    }
    let step = next_step(Some(&job.status));
    if step == Step::Admit {
        job.with_raw(fresh.as_ref())?;
    }
    if step == Step::Done {
        finish(&ctx, &mut job).await?;
        versions.forget(R::KIND, &ns, &name);
        return Ok(Action::await_change());
    }
    if !job.finalizers.iter().any(|f| f == FINALIZER) {
        add_finalizer(&ctx, &mut job).await?;
    }
    let timeout = match job.timeout.as_deref().map(duration::parse).transpose() {
        Ok(t) => t,
        Err(e) => return fail(&ctx, &mut job, step, e.to_string()).await,
    };
    if !matches!(step, Step::Admit | Step::Cleanup)
        && step_timed_out(&job.status.conditions, timeout, jiff::Timestamp::now())
    {
        let limit = job.timeout.clone().unwrap_or_default();
        return fail(
            &ctx,
            &mut job,
            step,
            format!("step {} did not finish within spec.timeout {limit}", step.label()),
        )
        .await;
    }
    debug!(request = %job.describe(), step = step.label(), "reconcile");
    let outcome = match run_step(&ctx, &mut job, step).await {
        Ok(o) => o,
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => return count_retry(&ctx, &mut job, step, e).await,
    };
    apply(&ctx, &mut job, step, outcome, timeout).await
}

async fn run_step(ctx: &Ctx, job: &mut Job, step: Step) -> Result<Outcome> {
    match step {
        Step::Admit => steps::admit::run(ctx, job).await,
        Step::PauseDatabase => steps::pause::pause(ctx, job).await,
        Step::OrphanWorkloads => steps::workloads::orphan(ctx, job).await,
        Step::Expand => steps::expand::run(ctx, job).await,
        Step::RecreateWorkloads => steps::workloads::recreate(ctx, job).await,
        Step::UpdateDatabase => steps::database::update(ctx, job).await,
        // Resuming is the last act: its status write also records the final phase.
        Step::ResumeDatabase => Ok(match steps::pause::resume_step(ctx, job).await? {
            Outcome::Done(mut conditions) => {
                conditions.push(successful(job));
                Outcome::Done(conditions)
            }
            other => other,
        }),
        // A request resumed by an earlier version, which wrote the phase on its own.
        Step::Succeed => Ok(Outcome::Done(vec![successful(job)])),
        Step::Cleanup => {
            if steps::cleanup::run(ctx, job).await? {
                finish_failed(ctx, job).await
            } else {
                Ok(Outcome::wait(
                    "cleanup waits for a pod to go away or a claim to finish its controller-side resize",
                    steps::SOON,
                ))
            }
        }
        Step::Done => Ok(Outcome::Done(Vec::new())),
    }
}

async fn apply(
    ctx: &Ctx,
    job: &mut Job,
    step: Step,
    outcome: Outcome,
    timeout: Option<Duration>,
) -> Result<Action> {
    match outcome {
        Outcome::Done(conditions) => {
            let mut status = job.status.clone();
            if step == Step::Admit {
                status.phase = Some(OpsRequestPhase::Progressing);
                status.observed_generation = job.generation;
                c::set(
                    &mut status.conditions,
                    condition(
                        c::VOLUME_EXPANSION,
                        c::TRUE,
                        c::VOLUME_EXPANSION,
                        &format!(
                            "{} ops-request has started to expand volume of {} nodes.",
                            job.kind.kind(),
                            job.kind.kind().to_ascii_lowercase()
                        ),
                        job.generation,
                        time(jiff::Timestamp::now()),
                    ),
                );
            }
            if let Some(start) = step_started(&job.status.conditions) {
                let secs = jiff::Timestamp::now()
                    .duration_since(start)
                    .as_secs_f64()
                    .max(0.0);
                let labels = StepLabels {
                    kind: job.kind.kind().into(),
                    step: step.label().into(),
                };
                ctx.metrics.step_duration.get_or_create(&labels).observe(secs);
            }
            let note = conditions.first().and_then(|c| c.message.clone());
            if conditions.iter().any(|cond| cond.type_ == c::SUCCESSFUL) {
                status.phase = Some(OpsRequestPhase::Successful);
            }
            for cond in conditions {
                c::set(&mut status.conditions, cond);
            }
            let entered = status.phase != job.status.phase;
            job.write_status(ctx, status).await?;
            if entered {
                count_phase(ctx, job);
            }
            publish(
                ctx,
                job,
                EventType::Normal,
                step.label(),
                note.unwrap_or_else(|| format!("{} done", step.label())),
            );
            info!(request = %job.describe(), step = step.label(), "step finished");
            if job.status.phase == Some(OpsRequestPhase::Successful) && step != Step::Succeed {
                publish(
                    ctx,
                    job,
                    EventType::Normal,
                    c::SUCCESSFUL,
                    "volume expansion finished".into(),
                );
            }
            Ok(Action::requeue(NEXT_STEP))
        }
        Outcome::Wait { reason, after } => {
            debug!(request = %job.describe(), step = step.label(), %reason, "waiting");
            // Never sleep past the step's deadline.
            let after = timeout.map_or(after, |t| after.min(t.max(Duration::from_secs(1))));
            Ok(Action::requeue(after))
        }
        Outcome::Fail(reason) => fail(ctx, job, step, reason).await,
        Outcome::Skip(message) => {
            let mut status = job.status.clone();
            status.phase = Some(OpsRequestPhase::Skipped);
            c::set(
                &mut status.conditions,
                condition(
                    c::SKIPPED,
                    c::TRUE,
                    c::SKIPPED,
                    &message,
                    job.generation,
                    time(jiff::Timestamp::now()),
                ),
            );
            job.write_status(ctx, status).await?;
            count_phase(ctx, job);
            finish(ctx, job).await?;
            publish(ctx, job, EventType::Normal, c::SKIPPED, message);
            Ok(Action::await_change())
        }
    }
}

/// Records the failure; the next reconcile runs the cleanup, then writes phase Failed.
async fn fail(ctx: &Ctx, job: &mut Job, step: Step, reason: String) -> Result<Action> {
    warn!(request = %job.describe(), step = step.label(), %reason, "failed");
    let mut status = job.status.clone();
    c::set(
        &mut status.conditions,
        condition(
            c::FAILED,
            c::TRUE,
            step.label(),
            &reason,
            job.generation,
            time(jiff::Timestamp::now()),
        ),
    );
    job.write_status(ctx, status).await?;
    publish(
        ctx,
        job,
        EventType::Warning,
        c::FAILED,
        format!("{}: {reason}", step.label()),
    );
    Ok(Action::requeue(Duration::from_millis(100)))
}

async fn finish_failed(ctx: &Ctx, job: &mut Job) -> Result<Outcome> {
    let mut status = job.status.clone();
    status.phase = Some(OpsRequestPhase::Failed);
    job.write_status(ctx, status).await?;
    count_phase(ctx, job);
    publish(
        ctx,
        job,
        EventType::Normal,
        "Cleanup",
        "workloads and pods restored, database resumed".into(),
    );
    Ok(Outcome::wait("failed", Duration::from_millis(100)))
}

/// The condition of a finished expansion.
fn successful(job: &Job) -> Condition {
    condition(
        c::SUCCESSFUL,
        c::TRUE,
        c::SUCCESSFUL,
        &format!("Successfully completed volumeExpansion for {}", job.kind.kind()),
        job.generation,
        time(jiff::Timestamp::now()),
    )
}

/// A non-transient error counts against `maxRetries`; past it the request fails.
async fn count_retry(ctx: &Ctx, job: &mut Job, step: Step, err: Error) -> Result<Action> {
    let prefix = format!("{}:", step.label());
    let count = job
        .annotations
        .get(RETRIES_KEY)
        .and_then(|v| v.strip_prefix(&prefix))
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    if count >= job.max_retries.max(0) {
        return fail(ctx, job, step, err.to_string()).await;
    }
    job.annotate(
        ctx,
        &[(RETRIES_KEY.to_owned(), Some(format!("{prefix}{}", count + 1)))],
    )
    .await?;
    Err(err)
}

async fn on_delete(ctx: &Ctx, job: &mut Job) -> Result<Action> {
    if !job.finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let mid_way = job.status.phase.is_none_or(|p| !p.is_final());
    if mid_way && !steps::cleanup::run(ctx, job).await? {
        return Ok(Action::requeue(steps::SOON));
    }
    finish(ctx, job).await?;
    ctx.request_versions.forget(job.kind, &job.namespace, &job.name);
    Ok(Action::await_change())
}

/// A request that is over (final, Skipped, or deleted after its cleanup) keeps nothing of ours:
/// the finalizer, the saved workload manifests and the retry count go in one write (none when
/// they are gone already).
async fn finish(ctx: &Ctx, job: &mut Job) -> Result<()> {
    let mut dropped = steps::workloads::saved_keys(job);
    dropped.extend(
        job.annotations
            .contains_key(RETRIES_KEY)
            .then(|| RETRIES_KEY.to_owned()),
    );
    let ours = job.finalizers.iter().any(|f| f == FINALIZER);
    if dropped.is_empty() && !ours {
        return Ok(());
    }
    let finalizers: Vec<String> = job
        .finalizers
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    let annotations: serde_json::Map<String, serde_json::Value> = dropped
        .iter()
        .map(|k| (k.clone(), serde_json::Value::Null))
        .collect();
    let patch = json!({"metadata": {"resourceVersion": job.resource_version,
        "finalizers": finalizers, "annotations": annotations}});
    let obj = job
        .api(ctx)
        .patch(&job.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .during(|| format!("finish {}", job.describe()))?;
    job.wrote(ctx, obj);
    job.finalizers = finalizers;
    for k in &dropped {
        job.annotations.remove(k);
    }
    Ok(())
}

async fn add_finalizer(ctx: &Ctx, job: &mut Job) -> Result<()> {
    let mut finalizers = job.finalizers.clone();
    finalizers.push(FINALIZER.to_owned());
    let patch = json!({"metadata": {"resourceVersion": job.resource_version, "finalizers": finalizers}});
    let obj = job
        .api(ctx)
        .patch(&job.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .during(|| format!("add the finalizer of {}", job.describe()))?;
    job.wrote(ctx, obj);
    job.finalizers = finalizers;
    Ok(())
}

fn count_phase(ctx: &Ctx, job: &Job) {
    let phase = job.status.phase.map_or("", |p| p.as_str());
    ctx.metrics
        .ops_phase
        .get_or_create(&PhaseLabels {
            kind: job.kind.kind().into(),
            phase: phase.into(),
        })
        .inc();
}

/// Publishes an Event in the background. Like client-go's recorder, a step does not wait for
/// its event: the round trip would otherwise sit between every step of every request.
fn publish(ctx: &Ctx, job: &Job, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    let (recorder, reference, request) = (ctx.recorder.clone(), job.reference(), job.describe());
    tokio::spawn(async move {
        if let Err(e) = recorder.publish(&event, &reference).await {
            debug!(%request, error = %e, "event not published");
        }
    });
}

/// Requeue after an error, counting it.
pub fn error_policy<R: OpsRequest>(_obj: Arc<R>, err: &Error, ctx: Arc<Ctx>) -> Action {
    warn!(kind = R::KIND.ops_kind(), error = %err, "reconcile failed");
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ErrorLabels {
            kind: R::KIND.ops_kind().into(),
            error: err.label().into(),
        })
        .inc();
    Action::requeue(Duration::from_secs(5))
}
