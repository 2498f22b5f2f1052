//! One reconcile: fetch the request -> decide the next step from its conditions (pure) -> check
//! it is still the request and database admitted -> do that step (idempotent) -> record its
//! condition on `/status` -> requeue.

mod failure;
mod lifecycle;
mod report;
#[cfg(test)]
mod tests;

use std::{sync::Arc, time::Duration};

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
    decide::{Step, next_step, step_started, step_timed_out, time},
    error::{Error, KubeContext, Result},
    metrics::{ErrorLabels, StepLabels},
    ops::OpsRequest,
    saved::Retries,
    steps::{self, Job, Outcome, cleanup::Verdict},
};

pub use failure::{CLEANUP, RESTORE_FAILED, failed_status, failure_conditions};
use failure::{fail, finish_failed};
use lifecycle::{add_finalizer, finish, report_ignored_annotations, try_claim};
use report::{count_phase, successful};
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

pub async fn reconcile<R: OpsRequest>(obj: Arc<R>, ctx: Arc<Ctx>) -> Result<Action> {
    // Other types are KubeDB's ops-manager's; so is VolumeExpansion when it owns it.
    if !obj.is_volume_expansion()
        || ctx.config.volume_expansion_owner == volops_shared::facts::VolumeExpansionOwner::Kubedb
    {
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
    if !claim::claimed(&job.status.conditions) && !try_claim(&ctx, &mut job).await? {
        return Ok(Action::await_change());
    }
    if job.deleting {
        return finish(&ctx, &mut job).await;
    }
    let step = next_step(Some(&job.status));
    if step == Step::Done {
        let action = finish(&ctx, &mut job).await?;
        versions.forget(R::KIND, &ns, &name);
        return Ok(action);
    }
    if step == Step::Admit {
        job.with_raw(fresh.as_ref())?;
    }
    if !job.finalizers.iter().any(|f| f == FINALIZER) {
        add_finalizer(&ctx, &mut job).await?;
    }
    report_ignored_annotations(&ctx, &mut job).await?;
    // A timeout that is not a Go duration fails the request once; the cleanup needs none.
    let timeout = match (step, job.timeout.as_deref().map(duration::parse).transpose()) {
        (Step::Cleanup, _) => None,
        (_, Ok(t)) => t,
        (_, Err(e)) => return fail(&ctx, &mut job, step, format!("spec.timeout: {e}")).await,
    };
    if step == Step::Cleanup {
        job.load_saved(&ctx).await?;
    } else if step != Step::Admit {
        job.load_saved(&ctx).await?;
        if let Some(reason) = steps::guard::check(&ctx, &job).await? {
            return fail(&ctx, &mut job, step, reason).await;
        }
    }
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
        // The cleanup is bounded on its own (steps::cleanup); its errors are only retried.
        Err(e) if e.is_transient() || step == Step::Cleanup => return Err(e),
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
        Step::Cleanup => match steps::cleanup::pass(ctx, job).await? {
            Verdict::Restored => finish_failed(ctx, job, Vec::new()).await,
            Verdict::GaveUp(problems) => finish_failed(ctx, job, problems).await,
            Verdict::Wait { reason, after } => Ok(Outcome::wait(format!("cleanup: {reason}"), after)),
        },
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
