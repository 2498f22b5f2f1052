//! Pure resize state machine (CSI external-resizer + kubelet node expansion).
//!
//! Behaviour per StorageClass, from `parameters`:
//! - `sandbox.volops.dev/resize-mode`:
//!   - `online` (default): controller resize (`Resizing`, `allocatedResources`,
//!     `ControllerResizeInProgress`), then the PV grows and the claim shows
//!     `FileSystemResizePending` / `NodeResizePending`, then `NodeResizeInProgress`, then
//!     `status.capacity` = new size with conditions and `allocatedResourceStatuses` cleared —
//!     whether or not a pod mounts the volume.
//!   - `offline`: like online up to `FileSystemResizePending` / `NodeResizePending`, which stays
//!     until a pod that was not running at that moment mounts the claim and runs; then the node
//!     resize completes.
//!   - `fail`: `Resizing`, then `ControllerResizeError` (driver message) and
//!     `ControllerResizeInfeasible`; capacity unchanged. Lowering the request back to the
//!     capacity clears the failure (RecoverVolumeExpansionFailure).
//! - `sandbox.volops.dev/resize-delay-ms`: delay of each step (default from the config).

use std::collections::BTreeMap;
use std::time::Duration;

/// Parameter selecting the resize behaviour.
pub const MODE_PARAM: &str = "sandbox.volops.dev/resize-mode";
/// Parameter with the per-step delay in milliseconds.
pub const DELAY_PARAM: &str = "sandbox.volops.dev/resize-delay-ms";
/// Name the simulated CSI resizer reports in messages.
pub const RESIZER_NAME: &str = "sandbox.volops.dev/csi";

/// How a class's driver resizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Online,
    Offline,
    Fail,
}

/// A class's resize behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    pub mode: Mode,
    pub delay: Duration,
}

/// Reads the behaviour from class parameters (unknown mode values fall back to online).
pub fn behaviour(params: Option<&BTreeMap<String, String>>, default_delay: Duration) -> Behaviour {
    let get = |k: &str| params.and_then(|p| p.get(k)).map(String::as_str);
    let mode = match get(MODE_PARAM) {
        Some("offline") => Mode::Offline,
        Some("fail") => Mode::Fail,
        _ => Mode::Online,
    };
    let delay = get(DELAY_PARAM)
        .and_then(|d| d.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(default_delay);
    Behaviour { mode, delay }
}

/// allocatedResourceStatuses values.
pub const CONTROLLER_IN_PROGRESS: &str = "ControllerResizeInProgress";
pub const CONTROLLER_INFEASIBLE: &str = "ControllerResizeInfeasible";
pub const NODE_PENDING: &str = "NodeResizePending";
pub const NODE_IN_PROGRESS: &str = "NodeResizeInProgress";

/// What the resizer sees of a claim (sizes in bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub request: i128,
    pub capacity: i128,
    pub allocated: Option<i128>,
    /// allocatedResourceStatuses["storage"].
    pub status: Option<String>,
}

/// The next transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    None,
    /// -> `Resizing`, allocatedResources = request, `ControllerResizeInProgress`.
    StartController,
    /// PV grows; -> `FileSystemResizePending`, `NodeResizePending`.
    FinishController,
    /// -> `ControllerResizeError`, `ControllerResizeInfeasible`.
    FailController,
    /// -> `NodeResizeInProgress`.
    StartNode,
    /// capacity = allocated; resize conditions and statuses cleared.
    FinishNode,
    /// The request went back to <= capacity after a failure: clear it.
    Recover,
}

/// The next step and whether it must wait for the class delay first.
/// `new_mount`: a pod that started after the controller resize mounts the claim (offline).
pub fn next(claim: &Claim, mode: Mode, new_mount: bool) -> (Step, bool) {
    match claim.status.as_deref() {
        None if claim.request > claim.capacity => (Step::StartController, false),
        None => (Step::None, false),
        Some(CONTROLLER_IN_PROGRESS) if mode == Mode::Fail => (Step::FailController, true),
        Some(CONTROLLER_IN_PROGRESS) => (Step::FinishController, true),
        Some(CONTROLLER_INFEASIBLE) if claim.request <= claim.capacity => (Step::Recover, false),
        Some(CONTROLLER_INFEASIBLE) if Some(claim.request) != claim.allocated => {
            (Step::StartController, false)
        }
        Some(NODE_PENDING) if mode == Mode::Offline && !new_mount => (Step::None, false),
        Some(NODE_PENDING) => (Step::StartNode, true),
        Some(NODE_IN_PROGRESS) => (Step::FinishNode, false),
        // Terminal or unknown values: leave alone (Kubernetes ignores unknown values too).
        Some(_) => (Step::None, false),
    }
}

/// The driver error message of the `fail` mode.
pub fn failure_message(pv: &str) -> String {
    format!(
        "resize volume \"{pv}\" by resizer \"{RESIZER_NAME}\" failed: rpc error: code = OutOfRange desc = requested size exceeds the backend limit"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GI: i128 = 1 << 30;

    fn claim(request: i128, capacity: i128, allocated: Option<i128>, status: Option<&str>) -> Claim {
        Claim {
            request,
            capacity,
            allocated,
            status: status.map(str::to_owned),
        }
    }

    #[test]
    fn parameters_choose_mode_and_delay() {
        let p: BTreeMap<String, String> = [
            (MODE_PARAM.into(), "offline".into()),
            (DELAY_PARAM.into(), "15".into()),
        ]
        .into();
        let b = behaviour(Some(&p), Duration::from_millis(200));
        assert_eq!(
            b,
            Behaviour {
                mode: Mode::Offline,
                delay: Duration::from_millis(15)
            }
        );
        let d = behaviour(None, Duration::from_millis(200));
        assert_eq!(
            d,
            Behaviour {
                mode: Mode::Online,
                delay: Duration::from_millis(200)
            }
        );
        let f: BTreeMap<String, String> = [(MODE_PARAM.into(), "fail".into())].into();
        assert_eq!(behaviour(Some(&f), Duration::ZERO).mode, Mode::Fail);
    }

    #[test]
    fn online_walks_controller_then_node() {
        assert_eq!(
            next(&claim(2 * GI, GI, None, None), Mode::Online, false),
            (Step::StartController, false)
        );
        let c = claim(2 * GI, GI, Some(2 * GI), Some(CONTROLLER_IN_PROGRESS));
        assert_eq!(next(&c, Mode::Online, false), (Step::FinishController, true));
        let c = claim(2 * GI, GI, Some(2 * GI), Some(NODE_PENDING));
        assert_eq!(
            next(&c, Mode::Online, false),
            (Step::StartNode, true),
            "online needs no new mount"
        );
        let c = claim(2 * GI, GI, Some(2 * GI), Some(NODE_IN_PROGRESS));
        assert_eq!(next(&c, Mode::Online, false), (Step::FinishNode, false));
        assert_eq!(
            next(&claim(2 * GI, 2 * GI, Some(2 * GI), None), Mode::Online, false),
            (Step::None, false)
        );
    }

    #[test]
    fn offline_waits_for_a_new_mount() {
        let c = claim(2 * GI, GI, Some(2 * GI), Some(NODE_PENDING));
        assert_eq!(next(&c, Mode::Offline, false), (Step::None, false));
        assert_eq!(next(&c, Mode::Offline, true), (Step::StartNode, true));
    }

    #[test]
    fn fail_is_infeasible_until_request_changes() {
        let c = claim(2 * GI, GI, Some(2 * GI), Some(CONTROLLER_IN_PROGRESS));
        assert_eq!(next(&c, Mode::Fail, false), (Step::FailController, true));
        let stuck = claim(2 * GI, GI, Some(2 * GI), Some(CONTROLLER_INFEASIBLE));
        assert_eq!(next(&stuck, Mode::Fail, false), (Step::None, false));
        let retried = claim(3 * GI, GI, Some(2 * GI), Some(CONTROLLER_INFEASIBLE));
        assert_eq!(next(&retried, Mode::Fail, false), (Step::StartController, false));
        let lowered = claim(GI, GI, Some(2 * GI), Some(CONTROLLER_INFEASIBLE));
        assert_eq!(next(&lowered, Mode::Fail, false), (Step::Recover, false));
    }

    #[test]
    fn unknown_status_values_are_ignored() {
        let c = claim(2 * GI, GI, Some(2 * GI), Some("SomethingNew"));
        assert_eq!(next(&c, Mode::Online, true), (Step::None, false));
        assert!(failure_message("pvc-1").contains("OutOfRange"));
    }
}
