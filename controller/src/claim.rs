//! One owner per request (controller/DESIGN-NOTES.md, "One owner per request"): the controller
//! acts only on a VolumeExpansion request it claimed, by a status condition (tenants cannot
//! write `/status`, docs/SECURITY.md), and never claims one whose status someone else (KubeDB's
//! ops-manager) wrote first. Pure.

use volops_shared::api::{Condition, OpsRequestStatus};

/// The condition type of the claim.
pub const CLAIMED: &str = "ClaimedByVolops";
/// The event reason of a request left alone.
pub const NOT_CLAIMED: &str = "NotClaimed";

/// Whether the controller claimed this request.
pub fn claimed(conditions: &[Condition]) -> bool {
    conditions.iter().any(|c| c.type_ == CLAIMED)
}

/// What shows that someone else already acts on an unclaimed request: a phase or conditions
/// in its status (a new request has none). None when the request is free to claim.
pub fn foreign(status: &OpsRequestStatus) -> Option<String> {
    if status.phase.is_none() && status.conditions.is_empty() {
        return None;
    }
    let phase = status.phase.map_or("none", |p| p.as_str());
    let mut types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    types.truncate(5);
    Some(format!(
        "its status (phase {phase}, conditions [{}]) was written by another controller, probably \
         KubeDB's ops-manager, before volops claimed it; volops leaves it alone (run only one of \
         them for VolumeExpansion: volops --volume-expansion-owner)",
        types.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use volops_shared::{
        api::OpsRequestPhase,
        conditions::{self as c, condition},
    };

    fn cond(t: &str) -> Condition {
        condition(t, c::TRUE, t, "", None, volops_shared::conditions::now())
    }

    #[test]
    fn a_new_request_is_free_and_a_started_one_is_not() {
        let mut st = OpsRequestStatus::default();
        assert_eq!(foreign(&st), None);
        st.phase = Some(OpsRequestPhase::Progressing);
        st.conditions = vec![cond(c::VOLUME_EXPANSION)];
        let why = foreign(&st).unwrap();
        assert!(
            why.contains("phase Progressing, conditions [VolumeExpansion]"),
            "{why}"
        );
        assert!(!claimed(&st.conditions));
        st.conditions.push(cond(CLAIMED));
        assert!(claimed(&st.conditions));
        // Pending with no condition is someone's write too.
        let st = OpsRequestStatus {
            phase: Some(OpsRequestPhase::Pending),
            ..Default::default()
        };
        assert!(foreign(&st).is_some());
    }
}
