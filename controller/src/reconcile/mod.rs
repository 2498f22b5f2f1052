//! One reconcile as a pipeline (docs/ARCHITECTURE.md): fetch the request -> decide the next
//! step from its conditions (pure; after claiming the request and adding the finalizer) ->
//! check it is still the request and database admitted, within its timeout -> run that step
//! (idempotent) -> record its condition on `/status` and requeue.

mod failure;
mod lifecycle;
mod report;
#[cfg(test)]
mod tests;
mod unreadable;

use std::{ops::ControlFlow, sync::Arc, time::Duration};

use kube::{
    Api, ResourceExt,
    runtime::{controller::Action, events::EventType},
};
use tracing::{debug, info, warn};
use volops_shared::{
    api::OpsRequestPhase,
    conditions::{self as c, condition},
    duration,
};

use crate::{
    caches::Freshest,
    claim,
    context::Ctx,
    controller::Watched,
    decide::{Step, next_step, step_started, step_timed_out},
    error::{Error, KubeContext, Result},
    metrics::{ErrorLabels, StepLabels},
    ops::OpsRequest,
    saved::Retries,
    steps::{self, Job, Outcome, cleanup::Verdict},
};

pub use failure::{CLEANUP, RESTORE_FAILED, failed_status, failure_conditions};
use failure::{fail, finish_failed};
use lifecycle::{add_finalizer, finish, report_ignored_annotations, try_claim};
use report::{count_phase, successful, track_progress};
pub use report::{publish, publish_as, step_events};

/// Finalizer that makes a deletion mid-way run the cleanup first. Handled here, not by
/// `kube::runtime::finalizer`: that helper keeps it for the object's whole life and drops it as
/// soon as its cleanup returns `Ok`, while ours goes when the request is over (deleted or not:
/// once the database is resumed and the saved state is gone, see `lifecycle::finish`), stays
/// while a cleanup pass waits (a requeue, not an error), and is added only to a claimed request.
pub const FINALIZER: &str = "volops.dev/cleanup";
/// Delay before the step after a finished one: none, as every reconcile reads the request fresh
/// (a delay here is paid once per step by every request).
const NEXT_STEP: Duration = Duration::ZERO;

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

/// One request as watched: typed, or one our types cannot read (see [`unreadable`]).
pub async fn reconcile<R: OpsRequest>(obj: Arc<Watched<R>>, ctx: Arc<Ctx>) -> Result<Action> {
    match &obj.0 {
        Ok(request) => reconcile_request(Arc::new(request.clone()), ctx).await,
        Err(invalid) => unreadable::reconcile::<R>(&ctx, invalid).await,
    }
}

/// fetch -> decide -> check -> run -> record.
async fn reconcile_request<R: OpsRequest>(obj: Arc<R>, ctx: Arc<Ctx>) -> Result<Action> {
    // Other types are KubeDB's ops-manager's; so is VolumeExpansion when it owns it.
    if !obj.is_volume_expansion() || kubedb_owns(&ctx) {
        return Ok(Action::await_change());
    }
    let Some(fresh) = fetch(&ctx, obj).await? else {
        return Ok(Action::await_change());
    };
    let mut job = Job::from_request(fresh.as_ref())?;
    let step = match decide(&ctx, &mut job).await? {
        ControlFlow::Continue(step) => step,
        ControlFlow::Break(action) => {
            // Not in flight (not ours, or over): no step, deadline or pause to report.
            ctx.metrics
                .progress
                .forget(job.kind.ops_kind(), &job.namespace, &job.name);
            return Ok(action);
        }
    };
    if step == Step::Admit {
        job.with_raw(fresh.as_ref())?;
    }
    let timeout = match check(&ctx, &mut job, step).await? {
        Ok(timeout) => timeout,
        Err(reason) => return fail(&ctx, &mut job, step, reason).await,
    };
    track_progress(&ctx, &job, step, timeout);
    debug!(request = %job.describe(), step = step.label(), "reconcile");
    let outcome = match run_step(&ctx, &mut job, step).await {
        Ok(o) => o,
        // The cleanup is bounded on its own (steps::cleanup); its errors are only retried.
        Err(e) if e.is_transient() || step == Step::Cleanup => return Err(e),
        Err(e) => return count_retry(&ctx, &mut job, step, e).await,
    };
    record(&ctx, &mut job, step, outcome, timeout).await
}

/// Whether KubeDB's ops-manager carries out VolumeExpansion requests in this cluster.
fn kubedb_owns(ctx: &Ctx) -> bool {
    ctx.config.volume_expansion_owner == volops_shared::facts::VolumeExpansionOwner::Kubedb
}

/// The freshest copy of the request: the cached one will do unless this process wrote or read
/// a newer one; after its own write (the usual case: the watch event is still on its way) it
/// goes on from what that write returned. None when the request is gone.
async fn fetch<R: OpsRequest>(ctx: &Ctx, obj: Arc<R>) -> Result<Option<Arc<R>>> {
    let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
    let rv = obj.resource_version();
    match ctx.request_versions.freshest(R::KIND, &ns, &name, rv.as_deref()) {
        Freshest::Cache => Ok(Some(obj)),
        Freshest::Written(written) => match as_request::<R>(&written) {
            Some(r) => Ok(Some(Arc::new(r))),
            None => read_request(ctx, &ns, &name).await,
        },
        Freshest::Read => read_request(ctx, &ns, &name).await,
    }
}

/// The step to run (pure: `decide::next_step` of the recorded conditions), once the request
/// is claimed and holds the finalizer; Break when there is none: not volops's to carry out,
/// deleted, or over.
async fn decide(ctx: &Ctx, job: &mut Job) -> Result<ControlFlow<Action, Step>> {
    if !claim::claimed(&job.status.conditions) && !try_claim(ctx, job).await? {
        return Ok(ControlFlow::Break(Action::await_change()));
    }
    if job.deleting {
        return finish(ctx, job).await.map(ControlFlow::Break);
    }
    let step = next_step(Some(&job.status));
    if step == Step::Done {
        let action = finish(ctx, job).await?;
        ctx.request_versions.forget(job.kind, &job.namespace, &job.name);
        return Ok(ControlFlow::Break(action));
    }
    if !job.finalizers.iter().any(|f| f == FINALIZER) {
        add_finalizer(ctx, job).await?;
    }
    report_ignored_annotations(ctx, job).await?;
    Ok(ControlFlow::Continue(step))
}

/// Before a step past Admit: the request and database are still the ones admitted, and the
/// step is within `spec.timeout` (returned, parsed). Err(reason) fails the request. A timeout
/// that is not a Go duration fails it once; the cleanup needs none.
async fn check(
    ctx: &Ctx,
    job: &mut Job,
    step: Step,
) -> Result<std::result::Result<Option<Duration>, String>> {
    let timeout = match (step, job.timeout.as_deref().map(duration::parse).transpose()) {
        (Step::Cleanup, _) => None,
        (_, Ok(t)) => t,
        (_, Err(e)) => return Ok(Err(format!("spec.timeout: {e}"))),
    };
    if step == Step::Admit {
        return Ok(Ok(timeout));
    }
    job.load_saved(ctx).await?;
    if step == Step::Cleanup {
        return Ok(Ok(timeout));
    }
    if let Some(reason) = steps::guard::check(ctx, job).await? {
        return Ok(Err(reason));
    }
    if step_timed_out(&job.status.conditions, timeout, jiff::Timestamp::now()) {
        let limit = job.timeout.clone().unwrap_or_default();
        return Ok(Err(format!(
            "step {} did not finish within spec.timeout {limit}",
            step.label()
        )));
    }
    Ok(Ok(timeout))
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
        Step::Cleanup => match steps::cleanup::pass(ctx, job).await? {
            Verdict::Restored => finish_failed(ctx, job, Vec::new()).await,
            Verdict::GaveUp(problems) => finish_failed(ctx, job, problems).await,
            Verdict::Wait { reason, after } => Ok(Outcome::wait(format!("cleanup: {reason}"), after)),
        },
        Step::Done => Ok(Outcome::Done(Vec::new())),
    }
}

async fn record(
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
                        c::now(),
                    ),
                );
            }
            if let Some(start) = step_started(&job.status.conditions) {
                let secs = jiff::Timestamp::now()
                    .duration_since(start)
                    .as_secs_f64()
                    .max(0.0);
                let labels = StepLabels {
                    kind: job.kind.ops_kind().into(),
                    step: step.label().into(),
                };
                ctx.metrics.step_duration.get_or_create(&labels).observe(secs);
            }
            let events = step_events(job, step, &conditions);
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
            for (reason, action, note) in events {
                publish_as(ctx, job, EventType::Normal, reason, action, note);
            }
            info!(request = %job.describe(), step = step.label(), "step finished");
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
                    c::now(),
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

/// A non-transient error counts against `maxRetries` (in the saved state); past it the request
/// fails.
async fn count_retry(ctx: &Ctx, job: &mut Job, step: Step, err: Error) -> Result<Action> {
    let max = job.max_retries.max(0);
    let state = job.saved_mut(ctx).await?;
    let count = match &state.retries {
        Some(r) if r.step == step.label() => r.count,
        _ => 0,
    };
    if count >= max {
        return fail(ctx, job, step, err.to_string()).await;
    }
    state.retries = Some(Retries {
        step: step.label().to_owned(),
        count: count + 1,
    });
    job.save(ctx).await?;
    Err(err)
}

/// Requeue after an error, counting it.
pub fn error_policy<R: OpsRequest>(_obj: Arc<Watched<R>>, err: &Error, ctx: Arc<Ctx>) -> Action {
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
