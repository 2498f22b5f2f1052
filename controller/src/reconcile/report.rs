//! What a reconcile tells: the events of a finished step (KubeDB's reasons and texts), the
//! final Successful condition, the phase counter and where a request in flight stands.

use kube::runtime::events::{Event, EventType};
use tracing::debug;
use volops_shared::{
    api::Condition,
    conditions::{self as c, condition},
};

use crate::{
    context::Ctx,
    decide::{Step, holds_pause, step_started},
    metrics::{PhaseLabels, Snapshot},
    steps::Job,
};

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
pub(super) const KUBEDB_STEP_CONDITIONS: [&str; 9] = [
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

/// The condition of a finished expansion.
pub(super) fn successful(job: &Job) -> Condition {
    condition(
        c::SUCCESSFUL,
        c::TRUE,
        c::SUCCESSFUL,
        &format!("Successfully completed volumeExpansion for {}", job.kind.kind()),
        job.generation,
        c::now(),
    )
}

pub(super) fn count_phase(ctx: &Ctx, job: &Job) {
    let phase = job.status.phase.map_or("", |p| p.as_str());
    ctx.metrics
        .ops_phase
        .get_or_create(&PhaseLabels {
            kind: job.kind.ops_kind().into(),
            phase: phase.into(),
        })
        .inc();
}

/// Unix seconds of a condition time.
fn unix_seconds(t: jiff::Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

/// Where the request stands before `step` runs (metrics::progress): the step's start and
/// deadline (`timeout` as `check` parsed it), and since when it holds its database paused.
pub(super) fn track_progress(ctx: &Ctx, job: &Job, step: Step, timeout: Option<std::time::Duration>) {
    let conditions = &job.status.conditions;
    let started = match step {
        Step::Cleanup => c::failure(conditions).map(|f| f.last_transition_time.0),
        _ => step_started(conditions),
    }
    .map(unix_seconds);
    let paused_since = holds_pause(conditions)
        .then(|| c::find(conditions, c::PAUSE_DATABASE))
        .flatten()
        .map(|cond| unix_seconds(cond.last_transition_time.0));
    ctx.metrics.progress.observe(&Snapshot {
        kind: job.kind.ops_kind().into(),
        database_kind: job.kind.kind().into(),
        namespace: job.namespace.clone(),
        name: job.name.clone(),
        database: job.database.clone(),
        step: step.label().into(),
        started,
        deadline: started.zip(timeout).map(|(s, t)| s + t.as_secs_f64()),
        paused_since,
    });
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
    let slots = ctx.event_slots.clone();
    tokio::spawn(async move {
        // The semaphore is never closed; without a permit the event is still published.
        let _permit = slots.acquire_owned().await.ok();
        if let Err(e) = recorder.publish(&event, &reference).await {
            debug!(%request, error = %e, "event not published");
        }
    });
}
