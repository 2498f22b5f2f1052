//! The step machine as a pure function of the recorded conditions (docs/ARCHITECTURE.md, "The step machine"). The request's
//! status is the only state: the next step is the first one whose completion condition is not
//! True, so a restarted controller resumes where the last one stopped.

use std::time::Duration;

use volops_shared::{
    api::{Condition, OpsRequestPhase, OpsRequestStatus},
    conditions::{self as c, is_true},
};

/// The steps of a volume expansion, in order, plus the failure path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Re-check the rules, queue, wait for Ready; then phase Progressing.
    Admit,
    PauseDatabase,
    /// Save and orphan-delete every workload.
    OrphanWorkloads,
    /// Grow the PVCs (Online or Offline).
    Expand,
    /// Recreate the workloads with the new claim size.
    RecreateWorkloads,
    UpdateDatabase,
    ResumeDatabase,
    /// Write phase Successful.
    Succeed,
    /// A failure is recorded: restore workloads and pods, resume, then phase Failed.
    Cleanup,
    /// Final phase; nothing to do.
    Done,
}

impl Step {
    /// A stable label for metrics, logs and events.
    pub fn label(self) -> &'static str {
        match self {
            Self::Admit => "Admit",
            Self::PauseDatabase => "PauseDatabase",
            Self::OrphanWorkloads => "OrphanWorkloads",
            Self::Expand => "Expand",
            Self::RecreateWorkloads => "RecreateWorkloads",
            Self::UpdateDatabase => "UpdateDatabase",
            Self::ResumeDatabase => "ResumeDatabase",
            Self::Succeed => "Successful",
            Self::Cleanup => "Cleanup",
            Self::Done => "Done",
        }
    }
}

/// Conditions whose True status marks a finished step (either workload kind's name counts).
pub const ORPHAN_DONE: [&str; 2] = [c::ORPHAN_PETSET_PODS, c::ORPHAN_STATEFULSET_PODS];
pub const RECREATE_DONE: [&str; 2] = [c::UPDATE_PETSETS, c::UPDATE_STATEFULSETS];
/// ZooKeeper's PVC step is `UpdateNodePVCs`, Redis's `VolumeExpansionSucceeded` (and a
/// ZooKeeper request an earlier volops started may carry the latter).
pub const EXPAND_DONE: [&str; 2] = [c::VOLUME_EXPANSION_SUCCEEDED, c::UPDATE_NODE_PVCS];

/// The steps after Admit in order, each with the conditions whose True status marks it done
/// (`VolumeExpansion` True with phase Progressing marks Admit done; after the last one, the
/// request succeeds).
pub const PIPELINE: [(Step, &[&str]); 6] = [
    (Step::PauseDatabase, &[c::PAUSE_DATABASE]),
    (Step::OrphanWorkloads, &ORPHAN_DONE),
    (Step::Expand, &EXPAND_DONE),
    (Step::RecreateWorkloads, &RECREATE_DONE),
    (Step::UpdateDatabase, &[c::UPDATE_DATABASE]),
    (Step::ResumeDatabase, &[c::RESUME_DATABASE]),
];

fn any_true(conditions: &[Condition], types: &[&str]) -> bool {
    types.iter().any(|t| is_true(conditions, t))
}

/// The next step for a request with this status.
pub fn next_step(status: Option<&OpsRequestStatus>) -> Step {
    let Some(status) = status else { return Step::Admit };
    if status.phase.is_some_and(OpsRequestPhase::is_final) {
        return Step::Done;
    }
    let cs = status.conditions.as_slice();
    // KubeDB's failure shape, or the `Failed` condition an earlier volops wrote.
    if c::failure(cs).is_some() {
        return Step::Cleanup;
    }
    if status.phase != Some(OpsRequestPhase::Progressing) || !is_true(cs, c::VOLUME_EXPANSION) {
        return Step::Admit;
    }
    PIPELINE
        .iter()
        .find(|(_, done)| !any_true(cs, done))
        .map_or(Step::Succeed, |(step, _)| *step)
}

/// Whether `type_` is a condition that marks a step done.
fn marks_a_step(type_: &str) -> bool {
    type_ == c::VOLUME_EXPANSION || PIPELINE.iter().any(|(_, done)| done.contains(&type_))
}

/// When the current step started: the latest transition of a finished step's condition.
pub fn step_started(conditions: &[Condition]) -> Option<jiff::Timestamp> {
    conditions
        .iter()
        .filter(|cond| cond.status == c::TRUE && marks_a_step(&cond.type_))
        .map(|cond| cond.last_transition_time.0)
        .max()
}

/// Whether the current step has run longer than `timeout` (only once the request started).
pub fn step_timed_out(conditions: &[Condition], timeout: Option<Duration>, now: jiff::Timestamp) -> bool {
    let (Some(timeout), Some(start)) = (timeout, step_started(conditions)) else {
        return false;
    };
    let Ok(limit) = jiff::SignedDuration::try_from(timeout) else {
        return false;
    };
    now.duration_since(start) > limit
}

/// How long the cleanup keeps a saved pod away from a claim whose controller-side resize is
/// still running; past it the database's pod comes first.
pub const RESIZE_GRACE: Duration = Duration::from_secs(60);

/// Whether the cleanup may still wait for a resize: within [`RESIZE_GRACE`] of the failure
/// (or, for a deletion mid-way, of the start of the step it stopped).
pub fn cleanup_may_wait(conditions: &[Condition], now: jiff::Timestamp) -> bool {
    let since = c::failure(conditions)
        .map(|f| f.last_transition_time.0)
        .or_else(|| step_started(conditions));
    let Ok(grace) = jiff::SignedDuration::try_from(RESIZE_GRACE) else {
        return false;
    };
    since.is_some_and(|s| now.duration_since(s) <= grace)
}

/// Whether this request asked the database to pause and has not resumed it yet, so the
/// cleanup must resume it.
pub fn holds_pause(conditions: &[Condition]) -> bool {
    c::find(conditions, c::PAUSE_DATABASE).is_some() && !is_true(conditions, c::RESUME_DATABASE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use volops_shared::conditions::condition;

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).unwrap())
    }

    fn status(phase: Option<OpsRequestPhase>, trues: &[&str]) -> OpsRequestStatus {
        OpsRequestStatus {
            phase,
            conditions: trues
                .iter()
                .map(|t| condition(t, c::TRUE, t, "", None, at(0)))
                .collect(),
            ..Default::default()
        }
    }

    /// KubeDB's failure shape: `VolumeExpansion` with reason Failed, after `trues`.
    fn failed(phase: Option<OpsRequestPhase>, trues: &[&str]) -> OpsRequestStatus {
        let mut st = status(phase, trues);
        st.conditions.push(condition(
            c::VOLUME_EXPANSION,
            c::TRUE,
            c::FAILED,
            "boom",
            None,
            at(0),
        ));
        st
    }

    #[test]
    fn next_step_follows_the_recorded_conditions() {
        use OpsRequestPhase::*;
        let p = Some(Progressing);
        let cases: Vec<(OpsRequestStatus, Step)> = vec![
            (status(None, &[]), Step::Admit),
            (status(Some(Pending), &[]), Step::Admit),
            (status(p, &[]), Step::Admit),
            (status(p, &[c::VOLUME_EXPANSION]), Step::PauseDatabase),
            (
                status(p, &[c::VOLUME_EXPANSION, c::PAUSE_DATABASE]),
                Step::OrphanWorkloads,
            ),
            (
                status(
                    p,
                    &[c::VOLUME_EXPANSION, c::PAUSE_DATABASE, c::ORPHAN_PETSET_PODS],
                ),
                Step::Expand,
            ),
            (
                status(
                    p,
                    &[c::VOLUME_EXPANSION, c::PAUSE_DATABASE, c::ORPHAN_STATEFULSET_PODS],
                ),
                Step::Expand,
            ),
            (
                status(
                    p,
                    &[
                        c::VOLUME_EXPANSION,
                        c::PAUSE_DATABASE,
                        c::ORPHAN_PETSET_PODS,
                        c::VOLUME_EXPANSION_SUCCEEDED,
                    ],
                ),
                Step::RecreateWorkloads,
            ),
            (
                status(
                    p,
                    &[
                        c::VOLUME_EXPANSION,
                        c::PAUSE_DATABASE,
                        c::ORPHAN_PETSET_PODS,
                        c::VOLUME_EXPANSION_SUCCEEDED,
                        c::UPDATE_STATEFULSETS,
                    ],
                ),
                Step::UpdateDatabase,
            ),
            (
                status(
                    p,
                    &[
                        c::VOLUME_EXPANSION,
                        c::PAUSE_DATABASE,
                        c::ORPHAN_PETSET_PODS,
                        c::VOLUME_EXPANSION_SUCCEEDED,
                        c::UPDATE_PETSETS,
                        c::UPDATE_DATABASE,
                    ],
                ),
                Step::ResumeDatabase,
            ),
            (
                status(
                    p,
                    &[
                        c::VOLUME_EXPANSION,
                        c::PAUSE_DATABASE,
                        c::ORPHAN_PETSET_PODS,
                        c::VOLUME_EXPANSION_SUCCEEDED,
                        c::UPDATE_PETSETS,
                        c::UPDATE_DATABASE,
                        c::RESUME_DATABASE,
                    ],
                ),
                Step::Succeed,
            ),
            (
                status(
                    p,
                    &[
                        c::VOLUME_EXPANSION,
                        c::PAUSE_DATABASE,
                        c::ORPHAN_PETSET_PODS,
                        c::UPDATE_NODE_PVCS,
                    ],
                ),
                Step::RecreateWorkloads,
            ),
            // The failure shape of an earlier volops: `{type: Failed, reason: <step>}`.
            (
                status(p, &[c::VOLUME_EXPANSION, c::PAUSE_DATABASE, c::FAILED]),
                Step::Cleanup,
            ),
            (status(Some(Pending), &[c::FAILED]), Step::Cleanup),
            (failed(p, &[c::PAUSE_DATABASE]), Step::Cleanup),
            (failed(Some(Pending), &[]), Step::Cleanup),
            (failed(Some(Failed), &[]), Step::Done),
            (status(Some(Failed), &[c::FAILED]), Step::Done),
            (status(Some(Successful), &[]), Step::Done),
            (status(Some(Skipped), &[c::SKIPPED]), Step::Done),
        ];
        for (st, want) in cases {
            assert_eq!(next_step(Some(&st)), want, "{st:?}");
        }
        assert_eq!(next_step(None), Step::Admit);
    }

    #[test]
    fn a_pause_that_is_only_requested_is_not_done() {
        let mut st = status(Some(OpsRequestPhase::Progressing), &[c::VOLUME_EXPANSION]);
        st.conditions.push(condition(
            c::PAUSE_DATABASE,
            c::UNKNOWN,
            "Paused",
            "",
            None,
            at(0),
        ));
        assert_eq!(next_step(Some(&st)), Step::PauseDatabase);
        assert!(holds_pause(&st.conditions));
    }

    #[test]
    fn holds_pause_until_resumed() {
        assert!(!holds_pause(&status(None, &[c::VOLUME_EXPANSION]).conditions));
        assert!(holds_pause(&status(None, &[c::PAUSE_DATABASE]).conditions));
        assert!(!holds_pause(
            &status(None, &[c::PAUSE_DATABASE, c::RESUME_DATABASE]).conditions
        ));
    }

    #[test]
    fn cleanup_waits_for_a_resize_only_within_the_grace_of_the_failure() {
        let grace = RESIZE_GRACE.as_secs() as i64;
        let mut cs = vec![condition(c::PAUSE_DATABASE, c::TRUE, "", "", None, at(100))];
        // A deletion mid-way: counted from the start of the step it stopped.
        assert!(cleanup_may_wait(&cs, at(100 + grace).0));
        assert!(!cleanup_may_wait(&cs, at(101 + grace).0));
        cs.push(condition(
            c::VOLUME_EXPANSION,
            c::TRUE,
            c::FAILED,
            "",
            None,
            at(500),
        ));
        assert!(cleanup_may_wait(&cs, at(500 + grace).0));
        assert!(!cleanup_may_wait(&cs, at(501 + grace).0));
        // The failure an earlier volops recorded counts the same.
        let legacy = vec![condition(c::FAILED, c::TRUE, "Expand", "", None, at(700))];
        assert!(cleanup_may_wait(&legacy, at(700 + grace).0));
        assert!(!cleanup_may_wait(&legacy, at(701 + grace).0));
        assert!(!cleanup_may_wait(&[], at(0).0), "nothing to count from");
    }

    #[test]
    fn step_timeout_counts_from_the_last_finished_step() {
        let cs = vec![
            condition(c::VOLUME_EXPANSION, c::TRUE, "", "", None, at(100)),
            condition(c::PAUSE_DATABASE, c::TRUE, "", "", None, at(200)),
            // Not a step marker, and not True: ignored.
            condition(c::UPDATE_DATABASE, c::FALSE, "", "", None, at(900)),
            condition(c::RETRYING, c::TRUE, "", "", None, at(950)),
        ];
        assert_eq!(step_started(&cs), Some(at(200).0));
        let t = Some(Duration::from_secs(60));
        assert!(!step_timed_out(&cs, t, at(260).0));
        assert!(step_timed_out(&cs, t, at(261).0));
        assert!(!step_timed_out(&cs, None, at(100_000).0));
        assert!(!step_timed_out(&[], t, at(100_000).0));
    }
}
