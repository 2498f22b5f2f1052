//! The failure path's status: KubeDB's failure shape, volops's `Cleanup` condition, and the
//! end of the cleanup (phase Failed, what could not be restored).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::{controller::Action, events::EventType};
use tracing::warn;
use volops_shared::{
    api::{Condition, OpsRequestPhase, OpsRequestStatus},
    conditions::{self as c, condition},
};

use super::report::{count_phase, publish};
use crate::{
    context::Ctx,
    decide::Step,
    error::Result,
    saved_store,
    steps::{Job, Outcome, cleanup::Problem},
};

/// The condition that names what the cleanup could not restore.
pub const RESTORE_FAILED: &str = "RestoreFailed";
/// volops's condition of the cleanup after a failure (docs/KUBEDB.md, "Status and events"):
/// its reason is the step that failed; Unknown while the cleanup runs, True once everything
/// is back and the database resumed, False when it gave up on something (see RestoreFailed).
pub const CLEANUP: &str = "Cleanup";
/// At most this many objects are named in the RestoreFailed condition.
pub(super) const NAMED_PROBLEMS: usize = 10;

/// Records the failure in KubeDB's shape (`VolumeExpansion` with reason Failed, the error as
/// its message) and volops's `Cleanup` condition naming the step; the next reconcile runs the
/// cleanup, then writes phase Failed.
pub(super) async fn fail(ctx: &Ctx, job: &mut Job, step: Step, reason: String) -> Result<Action> {
    warn!(request = %job.describe(), step = step.label(), %reason, "failed");
    let mut status = job.status.clone();
    for cond in failure_conditions(job, step.label(), &reason, c::now()) {
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
pub(super) async fn finish_failed(ctx: &Ctx, job: &mut Job, problems: Vec<Problem>) -> Result<Outcome> {
    let status = failed_status(job, &problems, c::now());
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
pub(super) fn restore_failed(job: &Job, problems: &[Problem]) -> Option<Condition> {
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
        c::now(),
    ))
}

/// One Warning per object the cleanup could not restore (the cleanup reports once: it is over).
pub(super) fn publish_problems(ctx: &Ctx, job: &Job, problems: &[Problem]) {
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
