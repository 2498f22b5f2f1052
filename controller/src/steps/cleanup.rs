//! The cleanup after a failure, a deletion mid-way, or for a saved state whose request is gone
//! (controller/DESIGN-NOTES.md, "Failure"). One pass restores each saved object on its own: a
//! restore the API server refuses is a problem reported with its message, never a reason to
//! stop the rest; the database is resumed once everything is back or the cleanup gives up.
//! Bounded: it gives up after [`MAX_REFUSALS`] passes with a refusal, on objects still going
//! away after [`WAIT_GRACE`], and on anything after [`DEADLINE`], backing off in between. A database that is gone takes its pods along (they lost their owner with the
//! orphan delete): the pods the request recorded are deleted, nothing is recreated.

use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Preconditions},
};
use volops_shared::{
    Quantity,
    facts::{PvcView, QuantityText},
};

use super::{Job, SOON, expand, guard, pause, resize_wait, workloads};
use crate::{
    context::Ctx,
    decide::holds_pause,
    error::{Error, Result},
    manifest::claim_size,
    ownership::DatabaseId,
    saved::{CleanupProgress, SavedPod, SavedState, SavedWorkload},
};

/// Passes in which the API server refused a restore (403, 422, ...) before the cleanup gives
/// up on what is left.
pub const MAX_REFUSALS: u32 = 4;
/// How long the cleanup retries transient errors.
pub const DEADLINE: Duration = Duration::from_secs(10 * 60);
/// How long the cleanup waits for a workload or pod still going away (a finalizer may hold it
/// forever). Past it the object is reported and the database resumed: its provisioner
/// recreates a missing workload, and a recreated workload its missing pods.
pub const WAIT_GRACE: Duration = Duration::from_secs(30);
/// The longest back-off between passes.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One object the cleanup could not put back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `Kind namespace/name`.
    pub object: String,
    pub message: String,
    /// The API server refused (not a transient error worth retrying until the deadline).
    pub refused: bool,
}

impl Problem {
    fn of(object: String, err: &Error) -> Self {
        Self {
            object,
            message: err.to_string(),
            refused: !err.is_transient(),
        }
    }
}

/// How a pass ended.
#[derive(Debug)]
pub enum Verdict {
    /// Everything saved is back and the database resumed (or there was nothing to do).
    Restored,
    /// The cleanup is over with these objects not restored (report them).
    GaveUp(Vec<Problem>),
    /// Look again after this long.
    Wait { after: Duration, reason: String },
}

/// Pure: whether the cleanup stops trying, given what it recorded and this pass: a refusal,
/// something still going away.
pub fn gives_up(
    progress: Option<&CleanupProgress>,
    refused_now: bool,
    waiting: bool,
    now: jiff::Timestamp,
) -> bool {
    let refusals = progress.map_or(0, |p| p.refusals) + u32::from(refused_now);
    let started = progress.map_or(now, |p| p.started.0);
    let elapsed = now.duration_since(started);
    let (Ok(deadline), Ok(grace)) = (
        jiff::SignedDuration::try_from(DEADLINE),
        jiff::SignedDuration::try_from(WAIT_GRACE),
    ) else {
        return true;
    };
    refusals >= MAX_REFUSALS || elapsed >= deadline || (waiting && elapsed >= grace)
}

/// Pure: how long to wait before the next pass: a quarter of the time already spent (the waits
/// grow geometrically), at least a second, at most [`MAX_BACKOFF`].
pub fn backoff(progress: Option<&CleanupProgress>, now: jiff::Timestamp) -> Duration {
    let spent = progress.map_or(Duration::ZERO, |p| {
        Duration::try_from(now.duration_since(p.started.0)).unwrap_or_default()
    });
    (spent / 4).clamp(Duration::from_secs(1), MAX_BACKOFF)
}

/// One pass of the cleanup for `job` (its saved state read).
pub async fn pass(ctx: &Ctx, job: &mut Job) -> Result<Verdict> {
    let Some(state) = job.saved.as_ref().map(|s| s.state.clone()) else {
        // Nothing saved; an older release's pause is still resumed.
        if holds_pause(&job.status.conditions) {
            pause::resume(ctx, job, None).await?;
        }
        return Ok(Verdict::Restored);
    };
    let now = jiff::Timestamp::now();
    let mut problems = Vec::new();
    let mut waiting = None;
    let mut pods = state.pods.clone();
    let gone = guard::database_gone(ctx, job).await?;
    match (&gone, job.database_id()) {
        (Some(_), _) => delete_recorded_pods(ctx, job, &state, &mut problems).await,
        (None, Ok(db)) => {
            // Bounded on its own (decide::RESIZE_GRACE).
            if resize_wait::claims_resizing(ctx, job).await? {
                return Ok(Verdict::Wait {
                    after: SOON,
                    reason: "a claim of a pod taken down is still in its controller-side resize".into(),
                });
            }
            restore_workloads(ctx, job, &state, &db, &mut problems, &mut waiting).await;
            restore_pods(ctx, job, &state, &mut pods, &mut problems, &mut waiting).await;
        }
        // Never admitted: nothing was taken away.
        (None, Err(_)) => {}
    }
    let holds = state.pause_requested || holds_pause(&job.status.conditions);
    let settled = problems.is_empty() && waiting.is_none();
    let refused = problems.iter().any(|p| p.refused);
    let giving_up = gives_up(state.cleanup.as_ref(), refused, waiting.is_some(), now);
    if gone.is_none() && holds && (settled || giving_up) {
        let db = job.describe_database();
        let uid = state.admitted.as_ref().map(|a| a.database_uid.as_str());
        if let Err(e) = pause::resume(ctx, job, uid).await {
            problems.push(Problem::of(db, &e));
        }
    }
    let changed_pods = pods != state.pods;
    if let Some(stored) = job.saved.as_mut() {
        stored.state.pods = pods;
    }
    if problems.is_empty() && waiting.is_none() {
        return Ok(Verdict::Restored);
    }
    let refused = problems.iter().any(|p| p.refused);
    if gives_up(state.cleanup.as_ref(), refused, waiting.is_some(), now) {
        if let Some((object, message)) = waiting {
            problems.push(Problem {
                object,
                message,
                refused: false,
            });
        }
        return Ok(Verdict::GaveUp(problems));
    }
    let save = changed_pods || state.cleanup.is_none();
    retry_later(ctx, job, &state, problems, waiting, save, now).await
}

/// Records the cleanup's progress (when it started, how many refusals) and says when to try
/// again; `save`: the saved state changed in this pass.
async fn retry_later(
    ctx: &Ctx,
    job: &mut Job,
    state: &SavedState,
    problems: Vec<Problem>,
    waiting: Option<(String, String)>,
    save: bool,
    now: jiff::Timestamp,
) -> Result<Verdict> {
    let refused = problems.iter().any(|p| p.refused);
    let after = if problems.is_empty() {
        SOON
    } else {
        backoff(state.cleanup.as_ref(), now)
    };
    let progress = job.saved_mut(ctx).await?.cleanup.get_or_insert(CleanupProgress {
        started: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now),
        refusals: 0,
    });
    let recorded = progress.refusals;
    if refused {
        progress.refusals += 1;
    }
    if save || progress.refusals != recorded {
        job.save(ctx).await?;
    }
    let reason = waiting.map(|(o, m)| format!("{o}: {m}")).unwrap_or_else(|| {
        problems
            .iter()
            .map(|p| format!("{}: {}", p.object, p.message))
            .collect::<Vec<_>>()
            .join("; ")
    });
    Ok(Verdict::Wait { after, reason })
}

/// The size a workload is recreated with after a failure: the largest capacity its claims
/// really have, never below the size saved in its claim template.
async fn real_size(ctx: &Ctx, job: &Job, w: &SavedWorkload) -> Result<String> {
    let mut best = claim_size(&w.manifest, &w.claim_template).and_then(|s| Quantity::parse(&s).ok());
    let names: Vec<String> = w.pods().map(|p| w.claim_of(&p)).collect();
    let cached = ctx
        .caches(job.kind)
        .and_then(|c| c.pvcs_of(&job.namespace, &job.database, &names));
    let claims = match cached {
        Some(pvcs) => pvcs,
        None => {
            let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &job.namespace);
            let mut found = Vec::new();
            for n in &names {
                if let Some(p) =
                    crate::error::KubeContext::during(api.get_opt(n).await, || format!("get PVC {n}"))?
                {
                    found.push(PvcView::from_pvc(&p));
                }
            }
            found
        }
    };
    for pvc in &claims {
        let cap = pvc.capacity.as_ref().and_then(QuantityText::quantity);
        if let Some(q) = cap
            && best.as_ref().is_none_or(|b| q > *b)
        {
            best = Some(q);
        }
    }
    best.map(|q| q.as_str().to_owned())
        .ok_or_else(|| Error::Invalid(format!("no claim size known for workload {}", w.name)))
}

/// Recreates one saved workload if it is missing: what is still in the way, if anything.
async fn restore_workload(
    ctx: &Ctx,
    job: &Job,
    w: &SavedWorkload,
    db: &DatabaseId,
) -> (String, Result<Option<String>>) {
    let object = format!("{} {}/{}", w.kind.kind(), job.namespace, w.name);
    let result = async {
        match workloads::presence(ctx, job, w, db).await? {
            workloads::Presence::Back => Ok(None),
            workloads::Presence::Leaving => Ok(Some(
                "still being deleted; its provisioner recreates it once it is gone".to_owned(),
            )),
            workloads::Presence::Foreign(why) => Err(Error::Invalid(why)),
            workloads::Presence::Missing => {
                let size = real_size(ctx, job, w).await?;
                workloads::create(ctx, job, w, &size, db).await?;
                Ok(None)
            }
        }
    }
    .await;
    (object, result)
}

/// Recreates every saved workload that is missing, each on its own.
async fn restore_workloads(
    ctx: &Ctx,
    job: &Job,
    state: &SavedState,
    db: &DatabaseId,
    problems: &mut Vec<Problem>,
    waiting: &mut Option<(String, String)>,
) {
    for (object, result) in join_all(state.workloads.iter().map(|w| restore_workload(ctx, job, w, db))).await
    {
        match result {
            Ok(None) => {}
            Ok(Some(w)) => *waiting = Some((object, w)),
            Err(e) => problems.push(Problem::of(object, &e)),
        }
    }
}

/// Recreates every pod the request took down that is missing, each on its own, and records
/// the ones that are back.
async fn restore_pods(
    ctx: &Ctx,
    job: &Job,
    state: &SavedState,
    pods: &mut std::collections::BTreeMap<String, SavedPod>,
    problems: &mut Vec<Problem>,
    waiting: &mut Option<(String, String)>,
) {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &job.namespace);
    for (name, record) in &state.pods {
        let Some(saved) = &record.manifest else { continue };
        let object = format!("Pod {}/{name}", job.namespace);
        let live =
            match crate::error::KubeContext::during(api.get_opt(name).await, || format!("get pod {name}")) {
                Ok(p) => p,
                Err(e) => {
                    problems.push(Problem::of(object, &e));
                    continue;
                }
            };
        let back = match live {
            // The pod taken down is still going away; recreate it once it is gone.
            Some(p) if p.uid() == record.uid && p.metadata.deletion_timestamp.is_some() => {
                *waiting = Some((object, "still being deleted".to_owned()));
                continue;
            }
            // Still the pod saved (never deleted), or another one at its name: nothing to put
            // back, and nothing of ours to act on later.
            Some(p) if p.uid() == record.uid => record.uid.clone(),
            Some(_) => None,
            None => match expand::create_saved_pod(ctx, job, name, saved).await {
                Ok(uid) => uid,
                Err(e) => {
                    problems.push(Problem::of(object, &e));
                    continue;
                }
            },
        };
        pods.insert(
            name.clone(),
            SavedPod {
                uid: back,
                manifest: None,
                restarted: true,
            },
        );
    }
}

/// The database is gone: the pods its workloads controlled lost their owner chain with the
/// orphan delete, so they are deleted here, each exactly the pod recorded (UID precondition).
async fn delete_recorded_pods(ctx: &Ctx, job: &Job, state: &SavedState, problems: &mut Vec<Problem>) {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &job.namespace);
    for (name, record) in &state.pods {
        let Some(uid) = &record.uid else { continue };
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(name, &dp).await {
            Ok(_) => {}
            // Gone, or another pod at its name now.
            Err(e) if matches!(crate::error::code_of(&e), Some(404 | 409)) => {}
            Err(e) => {
                let err = Error::Kube {
                    action: format!("delete pod {name}"),
                    source: e,
                };
                problems.push(Problem::of(format!("Pod {}/{name}", job.namespace), &err));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(secs).unwrap()
    }

    fn progress(started: i64, refusals: u32) -> CleanupProgress {
        CleanupProgress {
            started: Time(at(started)),
            refusals,
        }
    }

    #[test]
    fn the_cleanup_gives_up_after_repeated_refusals_or_its_deadline() {
        let deadline = DEADLINE.as_secs() as i64;
        let grace = WAIT_GRACE.as_secs() as i64;
        // The first pass: only a pass that would be the last refusal allowed gives up.
        assert!(!gives_up(None, true, false, at(0)));
        assert!(!gives_up(None, false, true, at(0)));
        assert!(!gives_up(
            Some(&progress(0, MAX_REFUSALS - 2)),
            true,
            false,
            at(1)
        ));
        assert!(gives_up(Some(&progress(0, MAX_REFUSALS - 1)), true, false, at(1)));
        assert!(
            !gives_up(Some(&progress(0, MAX_REFUSALS - 1)), false, false, at(1)),
            "transient errors alone wait for the deadline"
        );
        assert!(!gives_up(Some(&progress(0, 0)), false, false, at(deadline - 1)));
        assert!(gives_up(Some(&progress(0, 0)), false, false, at(deadline)));
        // Something still going away is waited for a while, not until the deadline.
        assert!(!gives_up(Some(&progress(0, 0)), false, true, at(grace - 1)));
        assert!(gives_up(Some(&progress(0, 0)), false, true, at(grace)));
        assert!(!gives_up(Some(&progress(0, 0)), false, false, at(grace)));
    }

    #[test]
    fn back_off_grows_with_the_time_spent_within_bounds() {
        assert_eq!(backoff(None, at(0)), Duration::from_secs(1));
        assert_eq!(backoff(Some(&progress(0, 1)), at(2)), Duration::from_secs(1));
        assert_eq!(backoff(Some(&progress(0, 1)), at(40)), Duration::from_secs(10));
        assert_eq!(backoff(Some(&progress(0, 1)), at(4000)), MAX_BACKOFF);
        assert_eq!(
            backoff(Some(&progress(100, 1)), at(0)),
            Duration::from_secs(1),
            "a clock that went back"
        );
    }
}
