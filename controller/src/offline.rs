//! Pure: the next action of Offline expansion for one pod, from what the request saved of it,
//! the pod now at its name and its claim's progress (controller/DESIGN-NOTES.md). Offline
//! walks the pods in order; the first one whose action is not [`PodAction::Next`] acts, then
//! the step waits. Only a pod whose UID the saved state records is ever taken down.

use crate::{pvc::PvcProgress, saved::SavedPod};

/// What is at the pod's name now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSeen {
    pub uid: Option<String>,
    pub ready: bool,
    pub deleting: bool,
}

/// The next thing to do for one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodAction {
    /// This pod is done; look at the next one.
    Next,
    /// A pod the request did not create runs on the grown claim: record it as put back (its
    /// UID unknown, so never deleted), then look at the next one.
    RecordRestarted,
    /// Save the pod (a restarted controller can always put it back), then delete it.
    SaveAndDelete,
    /// The saved pod is still there: delete it (unless it is going already) and wait.
    AwaitDeletion {
        delete: bool,
    },
    /// The pod is gone and its claim is below the target: patch the claim.
    PatchClaim,
    /// Create the saved pod again on the grown claim.
    Recreate,
    Wait(String),
    Fail(String),
}

/// One pod as Offline sees it.
pub struct PodStep<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub claim: &'a str,
    pub target: &'a str,
    pub saved: &'a SavedPod,
    pub seen: Option<&'a PodSeen>,
    pub claim_progress: &'a PvcProgress,
}

impl PodStep<'_> {
    fn wait_ready(&self) -> PodAction {
        PodAction::Wait(format!(
            "waiting for pod {} to be Ready and PVC {} to reach {}",
            self.pod, self.claim, self.target
        ))
    }
}

/// The next action for `step`'s pod.
pub fn next_action(step: &PodStep<'_>) -> PodAction {
    if let PvcProgress::Infeasible(message) = step.claim_progress {
        return PodAction::Fail(message.clone());
    }
    let reached = *step.claim_progress == PvcProgress::Reached;
    if step.saved.manifest.is_none() {
        before_taken_down(step, reached)
    } else {
        while_taken_down(step, reached)
    }
}

/// The pod was not taken down (yet), or was put back by this request.
fn before_taken_down(step: &PodStep<'_>, reached: bool) -> PodAction {
    let saved = step.saved;
    match step.seen {
        // Put back by this request: wait until it runs on the grown claim.
        Some(pod) if saved.restarted && !(pod.ready && reached) => step.wait_ready(),
        Some(_) | None if reached => PodAction::Next,
        Some(_) if saved.restarted => PodAction::Next,
        None => PodAction::Fail(format!("pod: {} doesn't exist", step.pod)),
        Some(pod) if saved.uid.is_none() || pod.uid != saved.uid => PodAction::Fail(format!(
            "pod {}/{} (uid {}) is not a pod the database's workload controlled when it was saved; \
             refusing to delete it",
            step.namespace,
            step.pod,
            pod.uid.as_deref().unwrap_or_default()
        )),
        Some(_) => PodAction::SaveAndDelete,
    }
}

/// The pod was saved and taken down: wait for it to go, grow the claim, put it back.
fn while_taken_down(step: &PodStep<'_>, reached: bool) -> PodAction {
    match step.seen {
        Some(pod) if step.saved.uid.is_some() && pod.uid == step.saved.uid => PodAction::AwaitDeletion {
            delete: !pod.deleting,
        },
        None => match step.claim_progress {
            PvcProgress::NeedsPatch => PodAction::PatchClaim,
            PvcProgress::Resizing => PodAction::Wait(format!("waiting for PVC {} to resize", step.claim)),
            _ => PodAction::Recreate,
        },
        // Another pod at its name (one this request created before a crash, or anyone's):
        // never deleted; once it runs on the grown claim the pod is done, its UID unknown.
        Some(pod) if !pod.ready || !reached => step.wait_ready(),
        Some(_) => PodAction::RecordRestarted,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn seen(uid: &str, ready: bool, deleting: bool) -> PodSeen {
        PodSeen {
            uid: Some(uid.into()),
            ready,
            deleting,
        }
    }

    fn saved(uid: Option<&str>, manifest: bool, restarted: bool) -> SavedPod {
        SavedPod {
            uid: uid.map(str::to_owned),
            manifest: manifest.then(|| json!({"metadata": {"name": "rd-0"}})),
            restarted,
        }
    }

    fn action(saved: &SavedPod, seen: Option<&PodSeen>, progress: PvcProgress) -> PodAction {
        next_action(&PodStep {
            namespace: "demo",
            pod: "rd-0",
            claim: "data-rd-0",
            target: "2Gi",
            saved,
            seen,
            claim_progress: &progress,
        })
    }

    fn is_wait(a: &PodAction) -> bool {
        matches!(a, PodAction::Wait(_))
    }

    fn is_fail(a: &PodAction) -> bool {
        matches!(a, PodAction::Fail(_))
    }

    #[test]
    fn a_verified_pod_is_saved_then_deleted_and_any_other_is_refused() {
        let mine = saved(Some("u1"), false, false);
        let live = seen("u1", true, false);
        assert_eq!(
            action(&mine, Some(&live), PvcProgress::NeedsPatch),
            PodAction::SaveAndDelete
        );
        // A pod at the name with another UID, or a pod the request never verified.
        let stranger = seen("u2", true, false);
        assert!(is_fail(&action(&mine, Some(&stranger), PvcProgress::NeedsPatch)));
        let unverified = saved(None, false, false);
        assert!(is_fail(&action(
            &unverified,
            Some(&live),
            PvcProgress::NeedsPatch
        )));
        // Gone before it was taken down, and the claim not grown: nothing to put back.
        assert!(is_fail(&action(&mine, None, PvcProgress::NeedsPatch)));
        // Already grown (an earlier request, or online growth): nothing to do for this pod.
        assert_eq!(action(&mine, Some(&live), PvcProgress::Reached), PodAction::Next);
        assert_eq!(action(&mine, None, PvcProgress::Reached), PodAction::Next);
    }

    #[test]
    fn a_taken_down_pod_is_awaited_then_its_claim_grows_then_it_comes_back() {
        let down = saved(Some("u1"), true, false);
        let going = seen("u1", false, true);
        let still = seen("u1", true, false);
        assert_eq!(
            action(&down, Some(&still), PvcProgress::NeedsPatch),
            PodAction::AwaitDeletion { delete: true }
        );
        assert_eq!(
            action(&down, Some(&going), PvcProgress::NeedsPatch),
            PodAction::AwaitDeletion { delete: false }
        );
        assert_eq!(
            action(&down, None, PvcProgress::NeedsPatch),
            PodAction::PatchClaim
        );
        assert!(is_wait(&action(&down, None, PvcProgress::Resizing)));
        assert_eq!(
            action(&down, None, PvcProgress::FileSystemResizePending),
            PodAction::Recreate
        );
        assert_eq!(action(&down, None, PvcProgress::Reached), PodAction::Recreate);
    }

    #[test]
    fn a_pod_put_back_is_awaited_until_ready_on_the_grown_claim() {
        let back = saved(Some("u3"), false, true);
        let starting = seen("u3", false, false);
        let ready = seen("u3", true, false);
        assert!(is_wait(&action(&back, Some(&starting), PvcProgress::Reached)));
        assert!(is_wait(&action(
            &back,
            Some(&ready),
            PvcProgress::FileSystemResizePending
        )));
        assert_eq!(action(&back, Some(&ready), PvcProgress::Reached), PodAction::Next);
    }

    #[test]
    fn another_pod_at_the_name_is_never_deleted_and_counts_once_it_runs_grown() {
        let down = saved(Some("u1"), true, false);
        let other = seen("u9", false, false);
        assert!(is_wait(&action(&down, Some(&other), PvcProgress::Reached)));
        let other_ready = seen("u9", true, false);
        assert!(is_wait(&action(&down, Some(&other_ready), PvcProgress::Resizing)));
        assert_eq!(
            action(&down, Some(&other_ready), PvcProgress::Reached),
            PodAction::RecordRestarted
        );
    }

    #[test]
    fn a_claim_the_driver_refuses_fails_whatever_the_pod() {
        let infeasible = PvcProgress::Infeasible("no".into());
        for s in [saved(Some("u1"), false, false), saved(Some("u1"), true, true)] {
            assert_eq!(action(&s, None, infeasible.clone()), PodAction::Fail("no".into()));
        }
    }
}
