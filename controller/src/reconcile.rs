//! One reconcile: fetch the request -> decide the next step from its conditions (pure) -> check
//! it is still the request and database admitted -> do that step (idempotent) -> record its
//! condition on `/status` -> requeue.

use std::{sync::Arc, time::Duration};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
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
    api::{Condition, OpsRequestPhase, OpsRequestStatus},
    conditions::{self as c, condition},
    duration,
};

use crate::{
    caches::Freshest,
    claim,
    context::Ctx,
    decide::{Step, next_step, step_started, step_timed_out, time},
    error::{Error, KubeContext, Result},
    forged,
    metrics::{ErrorLabels, PhaseLabels, StepLabels},
    ops::OpsRequest,
    saved::Retries,
    saved_store,
    steps::{
        self, Job, Outcome,
        cleanup::{Problem, Verdict},
    },
};

/// Finalizer that makes a deletion mid-way run the cleanup first.
pub const FINALIZER: &str = "volops.dev/cleanup";
/// Delay before the step after a finished one: none, as every reconcile reads the request fresh
/// (a delay here is paid once per step by every request).
const NEXT_STEP: Duration = Duration::ZERO;
/// The condition that names what the cleanup could not restore.
pub const RESTORE_FAILED: &str = "RestoreFailed";
/// volops's condition of the cleanup after a failure (docs/KUBEDB.md, "Status and events"):
/// its reason is the step that failed; Unknown while the cleanup runs, True once everything
/// is back and the database resumed, False when it gave up on something (see RestoreFailed).
pub const CLEANUP: &str = "Cleanup";
/// At most this many objects are named in the RestoreFailed condition.
const NAMED_PROBLEMS: usize = 10;

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

/// The events of a finished step, as (reason, action, note), with KubeDB's reasons and
/// texts: the pause and resume as `Starting`/`Successful`, every other KubeDB condition under
/// its own type, `Successful` at the end. volops's own conditions (Queued) have no event here.
/// The action tells apart events of one reason (a recorder folds same-reason, same-action
/// events into one series).
pub fn step_events(
    job: &Job,
    step: Step,
    conditions: &[Condition],
) -> Vec<(&'static str, &'static str, String)> {
    let mut events = Vec::new();
    if step == Step::Admit {
        events.push((
            c::STARTING,
            step.label(),
            format!(
                "Start processing for {}: {}/{}",
                job.kind.ops_kind(),
                job.namespace,
                job.name
            ),
        ));
    }
    for cond in conditions {
        let note = cond.message.clone().unwrap_or_default();
        match cond.type_.as_str() {
            c::PAUSE_DATABASE => events.push((c::SUCCESSFUL, c::PAUSE_DATABASE, note)),
            c::SUCCESSFUL => events.push((c::SUCCESSFUL, c::SUCCESSFUL, note)),
            c::RESUME_DATABASE => {
                events.push((
                    c::STARTING,
                    c::RESUME_DATABASE,
                    format!(
                        "Resuming {} database: {}/{}",
                        job.kind.kind(),
                        job.namespace,
                        job.database
                    ),
                ));
                events.push((c::SUCCESSFUL, c::RESUME_DATABASE, note));
            }
            t => {
                if let Some(kubedb) = KUBEDB_STEP_CONDITIONS.iter().find(|k| **k == t) {
                    events.push((*kubedb, *kubedb, note));
                }
            }
        }
    }
    events
}

/// The summary conditions whose event reason is the condition type (docs/KUBEDB.md, "Status and events").
const KUBEDB_STEP_CONDITIONS: [&str; 9] = [
    c::ORPHAN_PETSET_PODS,
    c::ORPHAN_STATEFULSET_PODS,
    c::VOLUME_EXPANSION_SUCCEEDED,
    c::UPDATE_NODE_PVCS,
    c::UPDATE_PETSETS,
    c::UPDATE_STATEFULSETS,
    c::READY_PETSETS,
    c::READY_STATEFULSETS,
    c::UPDATE_DATABASE,
];

/// Records the failure in KubeDB's shape (`VolumeExpansion` with reason Failed, the error as
/// its message) and volops's `Cleanup` condition naming the step; the next reconcile runs the
/// cleanup, then writes phase Failed.
async fn fail(ctx: &Ctx, job: &mut Job, step: Step, reason: String) -> Result<Action> {
    warn!(request = %job.describe(), step = step.label(), %reason, "failed");
    let mut status = job.status.clone();
    for cond in failure_conditions(job, step.label(), &reason, time(jiff::Timestamp::now())) {
        c::replace(&mut status.conditions, cond);
    }
    job.write_status(ctx, status).await?;
    publish(
        ctx,
        job,
        EventType::Warning,
        c::FAILED_TO_START,
        format!(
            "Fail to be ready {}: \"{}\". Reason: {reason}",
            job.kind.ops_kind(),
            job.name
        ),
    );
    Ok(Action::requeue(Duration::from_millis(100)))
}

/// The conditions a failure writes: KubeDB's `{type: VolumeExpansion, reason: Failed, status:
/// True, message: <error>}` and volops's `Cleanup` (Unknown: running) whose reason is the step.
pub fn failure_conditions(job: &Job, step: &str, reason: &str, now: Time) -> [Condition; 2] {
    [
        condition(
            c::VOLUME_EXPANSION,
            c::TRUE,
            c::FAILED,
            reason,
            job.generation,
            now.clone(),
        ),
        condition(
            CLEANUP,
            c::UNKNOWN,
            step,
            &if step == Step::Admit.label() {
                format!("{step} failed; nothing was taken away")
            } else {
                format!(
                    "{step} failed; restoring the workloads and pods the request took away, then \
                     resuming the database"
                )
            },
            job.generation,
            now,
        ),
    ]
}

/// The status once the cleanup is over: phase Failed, `Cleanup` True (or False when something
/// was not restored) and, for a request an earlier volops failed with `{type: Failed, reason:
/// <step>}`, KubeDB's failure shape in its place.
pub fn failed_status(job: &Job, problems: &[Problem], now: Time) -> OpsRequestStatus {
    let mut status = job.status.clone();
    status.phase = Some(OpsRequestPhase::Failed);
    let legacy = c::find(&status.conditions, c::FAILED)
        .filter(|f| f.status == c::TRUE)
        .cloned();
    let step = c::find(&status.conditions, CLEANUP)
        .or(legacy.as_ref())
        .and_then(|f| f.reason.clone())
        .unwrap_or_default();
    if let Some(old) = legacy {
        c::remove(&mut status.conditions, c::FAILED);
        let message = old.message.clone().unwrap_or_default();
        c::replace(
            &mut status.conditions,
            condition(
                c::VOLUME_EXPANSION,
                c::TRUE,
                c::FAILED,
                &message,
                job.generation,
                old.last_transition_time.clone(),
            ),
        );
    }
    let (state, message) = if problems.is_empty() && step == Step::Admit.label() {
        (c::TRUE, format!("{step} failed; nothing was taken away"))
    } else if problems.is_empty() {
        (
            c::TRUE,
            format!("{step} failed; workloads and pods restored, database resumed"),
        )
    } else {
        (
            c::FALSE,
            format!(
                "{step} failed; {} objects not restored (see {RESTORE_FAILED})",
                problems.len()
            ),
        )
    };
    c::set(
        &mut status.conditions,
        condition(CLEANUP, state, &step, &message, job.generation, now),
    );
    if let Some(cond) = restore_failed(job, problems) {
        c::set(&mut status.conditions, cond);
    }
    status
}

/// The cleanup is over: phase Failed (with what it could not restore, if anything) in one
/// status write, one event per problem, then the saved state goes.
async fn finish_failed(ctx: &Ctx, job: &mut Job, problems: Vec<Problem>) -> Result<Outcome> {
    let status = failed_status(job, &problems, time(jiff::Timestamp::now()));
    job.write_status(ctx, status).await?;
    count_phase(ctx, job);
    publish_problems(ctx, job, &problems);
    if problems.is_empty() {
        publish(
            ctx,
            job,
            EventType::Normal,
            CLEANUP,
            "workloads and pods restored, database resumed".into(),
        );
    }
    if let Some(uid) = job.uid.clone() {
        saved_store::delete(ctx, &uid).await?;
        job.saved = None;
    }
    Ok(Outcome::wait("failed", Duration::from_millis(100)))
}

/// The `RestoreFailed` condition naming what the cleanup could not restore (None for nothing).
fn restore_failed(job: &Job, problems: &[Problem]) -> Option<Condition> {
    if problems.is_empty() {
        return None;
    }
    let mut message: Vec<String> = problems
        .iter()
        .take(NAMED_PROBLEMS)
        .map(|p| format!("{}: {}", p.object, p.message))
        .collect();
    if problems.len() > NAMED_PROBLEMS {
        message.push(format!("and {} more", problems.len() - NAMED_PROBLEMS));
    }
    Some(condition(
        RESTORE_FAILED,
        c::TRUE,
        "Cleanup",
        &message.join("; "),
        job.generation,
        time(jiff::Timestamp::now()),
    ))
}

/// One Warning per object the cleanup could not restore (the cleanup reports once: it is over).
fn publish_problems(ctx: &Ctx, job: &Job, problems: &[Problem]) {
    for p in problems {
        publish(
            ctx,
            job,
            EventType::Warning,
            RESTORE_FAILED,
            format!("{}: {}", p.object, p.message),
        );
    }
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

/// A request that is over (final, Skipped, deleted) keeps nothing of ours. If it has saved
/// state, one more cleanup pass makes sure nothing stays taken away (the phase is written
/// through `/status`, which is not proof the cleanup ran), then the state and the finalizer go.
async fn finish(ctx: &Ctx, job: &mut Job) -> Result<Action> {
    if !job.finalizers.iter().any(|f| f == FINALIZER) {
        // A left-over saved state is the sweep's.
        return Ok(Action::await_change());
    }
    if job.load_saved(ctx).await?.is_some() {
        match steps::cleanup::pass(ctx, job).await? {
            Verdict::Restored => {}
            Verdict::GaveUp(problems) => {
                if let Some(cond) = restore_failed(job, &problems) {
                    // Best effort: a request being deleted may refuse it.
                    let _ = job.record(ctx, vec![cond]).await;
                }
                publish_problems(ctx, job, &problems);
            }
            Verdict::Wait { reason, after } => {
                debug!(request = %job.describe(), %reason, "cleanup before the finalizer goes");
                return Ok(Action::requeue(after));
            }
        }
        if let Some(uid) = job.uid.clone() {
            saved_store::delete(ctx, &uid).await?;
        }
    }
    let finalizers: Vec<String> = job
        .finalizers
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    let patch = json!({"metadata": {"resourceVersion": job.resource_version, "finalizers": finalizers}});
    let obj = job
        .api(ctx)
        .patch(&job.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .during(|| format!("finish {}", job.describe()))?;
    job.wrote(ctx, obj);
    job.finalizers = finalizers;
    ctx.request_versions.forget(job.kind, &job.namespace, &job.name);
    Ok(Action::await_change())
}

/// Claims an unclaimed request, unless another controller's status shows it acts on it
/// already: then it is left alone and reported (a Warning event). False when left alone.
async fn try_claim(ctx: &Ctx, job: &mut Job) -> Result<bool> {
    if let Some(why) = claim::foreign(&job.status) {
        // A request an earlier volops (before claims) started has volops's finalizer and a
        // saved state, which only the controller can write (its own namespace).
        // (Its deletion is let through to the finalizer's cleanup.)
        let legacy = job.finalizers.iter().any(|f| f == FINALIZER)
            && (job.deleting || job.load_saved(ctx).await?.is_some());
        if !legacy {
            warn!(request = %job.describe(), %why, "left alone");
            publish(ctx, job, EventType::Warning, claim::NOT_CLAIMED, why);
            return Ok(false);
        }
    }
    if job.deleting {
        return Ok(true);
    }
    // Guarded by the resourceVersion: if the other controller wrote the status meanwhile, this
    // write conflicts and the next reconcile sees its status.
    let cond = condition(
        claim::CLAIMED,
        c::TRUE,
        claim::CLAIMED,
        &format!("{} runs this request", ctx.config.identity),
        job.generation,
        time(jiff::Timestamp::now()),
    );
    job.record(ctx, vec![cond]).await?;
    Ok(true)
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

/// Annotations only the controller could once have used are a tenant's today: reported (a
/// condition and a Warning event) whenever the set changes, never acted on.
async fn report_ignored_annotations(ctx: &Ctx, job: &mut Job) -> Result<()> {
    let Some(message) = forged::report(&forged::ignored_keys(&job.annotations)) else {
        return Ok(());
    };
    let reported = c::find(&job.status.conditions, forged::CONDITION).and_then(|c| c.message.as_deref());
    if reported == Some(message.as_str()) {
        return Ok(());
    }
    let cond = condition(
        forged::CONDITION,
        c::TRUE,
        forged::CONDITION,
        &message,
        job.generation,
        time(jiff::Timestamp::now()),
    );
    job.record(ctx, vec![cond]).await?;
    warn!(request = %job.describe(), %message, "ignored annotations");
    publish(ctx, job, EventType::Warning, forged::CONDITION, message);
    Ok(())
}

fn count_phase(ctx: &Ctx, job: &Job) {
    let phase = job.status.phase.map_or("", |p| p.as_str());
    ctx.metrics
        .ops_phase
        .get_or_create(&PhaseLabels {
            kind: job.kind.ops_kind().into(),
            phase: phase.into(),
        })
        .inc();
}

/// Publishes an Event in the background. Like client-go's recorder, a step does not wait for
/// its event: the round trip would otherwise sit between every step of every request.
/// Events name volops's controller as their reporter (who really acted), not KubeDB's.
pub fn publish(ctx: &Ctx, job: &Job, type_: EventType, reason: &str, note: String) {
    publish_as(ctx, job, type_, reason, reason, note);
}

/// [`publish`] with an action other than the reason.
pub fn publish_as(ctx: &Ctx, job: &Job, type_: EventType, reason: &str, action: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use volops_shared::api::{RedisOpsRequest, ZooKeeperOpsRequest};

    fn job(kind: &str) -> Job {
        let body = json!({"apiVersion": "ops.kubedb.com/v1alpha1", "kind": kind,
            "metadata": {"name": "grow", "namespace": "demo", "generation": 1, "uid": "u"},
            "spec": {"type": "VolumeExpansion", "databaseRef": {"name": "db"},
                     "volumeExpansion": {"mode": "Offline", "node": "2Gi", "redis": "2Gi"}}});
        match kind {
            "RedisOpsRequest" => Job::from_request(&serde_json::from_value::<RedisOpsRequest>(body).unwrap()),
            _ => Job::from_request(&serde_json::from_value::<ZooKeeperOpsRequest>(body).unwrap()),
        }
        .unwrap()
    }

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).unwrap())
    }

    fn done(type_: &str, message: &str) -> Condition {
        condition(type_, c::TRUE, type_, message, Some(1), at(1))
    }

    fn step_events(job: &Job, step: Step, conditions: &[Condition]) -> Vec<(&'static str, String)> {
        super::step_events(job, step, conditions)
            .into_iter()
            .map(|(reason, _, note)| (reason, note))
            .collect()
    }

    #[test]
    fn finished_steps_emit_kubedbs_event_reasons_and_texts() {
        let zk = job("ZooKeeperOpsRequest");
        // Each Starting/Successful event has its own action, so none folds into another.
        let end = [
            done(c::RESUME_DATABASE, "resumed"),
            done(c::SUCCESSFUL, "completed"),
        ];
        let actions: Vec<(&str, &str)> = super::step_events(&zk, Step::ResumeDatabase, &end)
            .into_iter()
            .map(|(reason, action, _)| (reason, action))
            .collect();
        assert_eq!(
            actions,
            [
                ("Starting", "ResumeDatabase"),
                ("Successful", "ResumeDatabase"),
                ("Successful", "Successful")
            ]
        );
        assert_eq!(
            step_events(&zk, Step::Admit, &[]),
            vec![(
                "Starting",
                "Start processing for ZooKeeperOpsRequest: demo/grow".to_owned()
            )]
        );
        // volops's own Queued condition has no event.
        let queued = condition("Queued", c::FALSE, "Queued", "started", Some(1), at(1));
        assert_eq!(step_events(&zk, Step::Admit, &[queued]).len(), 1);
        let paused = done(c::PAUSE_DATABASE, "Successfully paused ...");
        assert_eq!(
            step_events(&zk, Step::PauseDatabase, &[paused]),
            vec![("Successful", "Successfully paused ...".to_owned())]
        );
        let recreated = [
            done(
                c::UPDATE_PETSETS,
                "successfully reconciled the ZooKeeper resources",
            ),
            done(c::READY_PETSETS, "PetSet is recreated"),
        ];
        let reasons: Vec<&str> = step_events(&zk, Step::RecreateWorkloads, &recreated)
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert_eq!(reasons, ["UpdatePetSets", "ReadyPetSets"]);
        let end = [
            done(c::RESUME_DATABASE, "Successfully resumed ..."),
            done(
                c::SUCCESSFUL,
                "Successfully completed volumeExpansion for ZooKeeper",
            ),
        ];
        assert_eq!(
            step_events(&zk, Step::ResumeDatabase, &end),
            vec![
                ("Starting", "Resuming ZooKeeper database: demo/db".to_owned()),
                ("Successful", "Successfully resumed ...".to_owned()),
                (
                    "Successful",
                    "Successfully completed volumeExpansion for ZooKeeper".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_failure_has_kubedbs_shape_and_the_cleanup_names_the_step() {
        let mut rd = job("RedisOpsRequest");
        rd.status.phase = Some(OpsRequestPhase::Progressing);
        rd.status.conditions = vec![done(c::VOLUME_EXPANSION, "started")];
        for cond in failure_conditions(&rd, "Expand", "PVC data-db-0: Infeasible", at(9)) {
            c::replace(&mut rd.status.conditions, cond);
        }
        let ve = c::find(&rd.status.conditions, c::VOLUME_EXPANSION).unwrap();
        assert_eq!(
            (ve.status.as_str(), ve.reason.as_deref(), ve.message.as_deref()),
            ("True", Some("Failed"), Some("PVC data-db-0: Infeasible"))
        );
        assert_eq!(ve.observed_generation, Some(1));
        assert!(c::find(&rd.status.conditions, c::FAILED).is_none());
        assert_eq!(crate::decide::next_step(Some(&rd.status)), Step::Cleanup);
        let end = failed_status(&rd, &[], at(20));
        assert_eq!(end.phase, Some(OpsRequestPhase::Failed));
        let cleanup = c::find(&end.conditions, CLEANUP).unwrap();
        assert_eq!(
            (cleanup.status.as_str(), cleanup.reason.as_deref()),
            ("True", Some("Expand"))
        );
        let problems = [Problem {
            object: "Pod demo/db-0".into(),
            message: "forbidden".into(),
            refused: true,
        }];
        let end = failed_status(&rd, &problems, at(20));
        assert_eq!(c::find(&end.conditions, CLEANUP).unwrap().status, "False");
        assert!(c::find(&end.conditions, RESTORE_FAILED).is_some());
    }

    #[test]
    fn a_legacy_failure_ends_in_kubedbs_shape() {
        let mut rd = job("RedisOpsRequest");
        rd.status.phase = Some(OpsRequestPhase::Progressing);
        rd.status.conditions = vec![
            done(c::VOLUME_EXPANSION, "started"),
            condition(c::FAILED, c::TRUE, "Expand", "boom", Some(1), at(5)),
        ];
        let end = failed_status(&rd, &[], at(20));
        assert!(c::find(&end.conditions, c::FAILED).is_none(), "{end:?}");
        let ve = c::find(&end.conditions, c::VOLUME_EXPANSION).unwrap();
        assert_eq!(
            (ve.reason.as_deref(), ve.message.as_deref()),
            (Some("Failed"), Some("boom"))
        );
        assert_eq!(ve.last_transition_time, at(5), "the time of the failure");
        assert_eq!(
            c::find(&end.conditions, CLEANUP).unwrap().reason.as_deref(),
            Some("Expand")
        );
    }
}
