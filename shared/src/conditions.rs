//! KubeDB condition names (docs/KUBEDB.md, "Status and events") and helpers to keep a condition list current.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::Condition;

pub const VOLUME_EXPANSION: &str = "VolumeExpansion";
pub const PAUSED: &str = "Paused";
pub const PAUSE_DATABASE: &str = "PauseDatabase";
pub const DATABASE_PAUSE_SUCCEEDED: &str = "DatabasePauseSucceeded";
pub const RESUME_DATABASE: &str = "ResumeDatabase";
pub const DATABASE_RESUME_SUCCEEDED: &str = "DatabaseResumeSucceeded";
pub const ORPHAN_PETSET_PODS: &str = "OrphanPetSetPods";
pub const ORPHAN_STATEFULSET_PODS: &str = "OrphanStatefulSetPods";
pub const VOLUME_EXPANSION_SUCCEEDED: &str = "VolumeExpansionSucceeded";
pub const UPDATE_NODE_PVCS: &str = "UpdateNodePVCs";
pub const VOLUME_EXPANSION_FAILED: &str = "VolumeExpansionFailed";
pub const UPDATE_PETSETS: &str = "UpdatePetSets";
pub const UPDATE_STATEFULSETS: &str = "UpdateStatefulSets";
pub const READY_PETSETS: &str = "ReadyPetSets";
pub const READY_STATEFULSETS: &str = "ReadyStatefulSets";
pub const UPDATE_DATABASE: &str = "UpdateDatabase";
pub const SUCCESSFUL: &str = "Successful";
pub const FAILED: &str = "Failed";
pub const SKIPPED: &str = "Skipped";
pub const PROGRESSING: &str = "Progressing";
pub const RETRYING: &str = "Retrying";

/// Event reasons KubeDB's ops-manager uses besides condition types.
pub const STARTING: &str = "Starting";
pub const FAILED_TO_START: &str = "FailedToStart";

pub const TRUE: &str = "True";
pub const FALSE: &str = "False";
pub const UNKNOWN: &str = "Unknown";

/// Annotation on the ops request that holds a pod's JSON while Offline mode has it deleted.
pub fn pod_annotation(pod: &str) -> String {
    format!("volumeexpansion.ops.kubedb.com/{pod}")
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of `type_` is present with status True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == TRUE)
}

/// The condition that marks a failed request: KubeDB's shape, `{type: VolumeExpansion, reason:
/// Failed, status: True}`, or the `{type: Failed}` one volops wrote before (a request in flight
/// across an upgrade is still cleaned up).
pub fn failure(conditions: &[Condition]) -> Option<&Condition> {
    conditions
        .iter()
        .find(|c| c.type_ == VOLUME_EXPANSION && c.status == TRUE && c.reason.as_deref() == Some(FAILED))
        .or_else(|| conditions.iter().find(|c| c.type_ == FAILED && c.status == TRUE))
}

/// Builds a condition stamped `now`.
/// The time of a condition written now.
pub fn now() -> Time {
    Time(jiff::Timestamp::now())
}

pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        observed_generation: generation,
        last_transition_time: now,
        severity: None,
    }
}

/// Adds or replaces the condition of the same type. The transition time is kept when the
/// status does not change, as Kubernetes' condition helpers do. Returns whether anything changed.
pub fn set(conditions: &mut Vec<Condition>, mut new: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            if old.status == new.status {
                new.last_transition_time = old.last_transition_time.clone();
            }
            let changed = *old != new;
            *old = new;
            changed
        }
        None => {
            conditions.push(new);
            true
        }
    }
}

/// Adds or replaces the condition of the same type, keeping its place and its own time: a
/// change of reason is a transition too (KubeDB's condition helper stamps every change).
pub fn replace(conditions: &mut Vec<Condition>, new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => *old = new,
        None => conditions.push(new),
    }
}

/// Removes the condition of `type_`; returns whether it was there.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn set_keeps_transition_time_when_status_is_unchanged() {
        let mut cs = Vec::new();
        assert!(set(
            &mut cs,
            condition(PAUSED, UNKNOWN, "Paused", "a", Some(1), at(10))
        ));
        assert!(set(
            &mut cs,
            condition(PAUSED, UNKNOWN, "Paused", "b", Some(1), at(20))
        ));
        assert_eq!(cs[0].last_transition_time, at(10));
        assert_eq!(cs[0].message.as_deref(), Some("b"));
        assert!(!set(
            &mut cs,
            condition(PAUSED, UNKNOWN, "Paused", "b", Some(1), at(30))
        ));
        assert!(set(
            &mut cs,
            condition(PAUSED, TRUE, "Paused", "b", Some(1), at(40))
        ));
        assert_eq!(cs[0].last_transition_time, at(40));
        assert!(is_true(&cs, PAUSED));
        assert!(remove(&mut cs, PAUSED));
        assert!(!remove(&mut cs, PAUSED));
        assert!(find(&cs, PAUSED).is_none());
    }

    #[test]
    fn failure_is_kubedbs_shape_or_the_legacy_one() {
        let started = condition(VOLUME_EXPANSION, TRUE, VOLUME_EXPANSION, "", Some(1), at(1));
        let mut cs = vec![started.clone()];
        assert!(failure(&cs).is_none());
        replace(
            &mut cs,
            condition(VOLUME_EXPANSION, TRUE, FAILED, "boom", Some(1), at(5)),
        );
        assert_eq!(cs.len(), 1);
        assert_eq!(failure(&cs).and_then(|c| c.message.as_deref()), Some("boom"));
        assert_eq!(cs[0].last_transition_time, at(5), "the failure is stamped");
        // What volops wrote before: `{type: Failed, reason: <step>}`.
        let legacy = vec![started, condition(FAILED, TRUE, "Expand", "old", Some(1), at(9))];
        assert_eq!(failure(&legacy).and_then(|c| c.reason.as_deref()), Some("Expand"));
        let not_true = vec![condition(FAILED, FALSE, "Expand", "", None, at(9))];
        assert!(failure(&not_true).is_none());
    }

    #[test]
    fn pod_annotation_key_matches_kubedb() {
        assert_eq!(pod_annotation("zk-0"), "volumeexpansion.ops.kubedb.com/zk-0");
    }
}
