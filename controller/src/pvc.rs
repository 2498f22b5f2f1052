//! Pure reading of a PVC's resize progress against the target size (controller/DESIGN-NOTES.md).

use std::num::NonZeroUsize;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use volops_shared::{Quantity, facts::PvcView};

/// Where one PVC is on its way to the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PvcProgress {
    /// `status.capacity` is at least the target: done.
    Reached,
    /// The request is below the target: patch it.
    NeedsPatch,
    /// Requested; the resize is under way.
    Resizing,
    /// Controller-side resize done; the node finishes it when a pod mounts the volume.
    FileSystemResizePending,
    /// The driver refused the resize; fail with its message.
    Infeasible(String),
}

fn parse(q: Option<&str>) -> Option<Quantity> {
    q.and_then(|s| Quantity::parse(s).ok())
}

/// The PVC's progress towards `target`.
pub fn progress(pvc: &PersistentVolumeClaim, target: &Quantity) -> PvcProgress {
    let view = PvcView::from_pvc(pvc);
    if parse(view.capacity.as_deref()).is_some_and(|c| c >= *target) {
        return PvcProgress::Reached;
    }
    if parse(view.request.as_deref()).is_none_or(|r| r < *target) {
        return PvcProgress::NeedsPatch;
    }
    if let Some(message) = infeasible(pvc, &view) {
        return PvcProgress::Infeasible(message);
    }
    if view
        .true_conditions
        .iter()
        .any(|c| c == "FileSystemResizePending")
    {
        return PvcProgress::FileSystemResizePending;
    }
    PvcProgress::Resizing
}

impl PvcProgress {
    /// Patched but not grown yet: counts against the PVC parallelism.
    pub fn in_flight(&self) -> bool {
        matches!(self, Self::Resizing | Self::FileSystemResizePending)
    }
}

/// Whether the controller side of a resize the claim asks for is still under way (not yet at
/// `FileSystemResizePending`, not refused). An offline-only driver grows the file system when
/// a pod that started after that point mounts the volume, so a pod put back earlier leaves the
/// claim waiting for yet another restart.
pub fn controller_resize_pending(pvc: &PersistentVolumeClaim) -> bool {
    let view = PvcView::from_pvc(pvc);
    let Some(request) = parse(view.request.as_deref()) else {
        return false;
    };
    progress(pvc, &request) == PvcProgress::Resizing
        && !view
            .resize_status
            .as_deref()
            .is_some_and(|s| s.starts_with("Node"))
}

/// Online: the positions (in `progress` order) of the PVCs to patch now. With a `limit`, the
/// PVCs already in flight use up part of it, so at most `limit` are ever in flight at once.
pub fn patch_now(progress: &[PvcProgress], limit: Option<NonZeroUsize>) -> Vec<usize> {
    let in_flight = progress.iter().filter(|p| p.in_flight()).count();
    let budget = limit.map_or(usize::MAX, |l| l.get().saturating_sub(in_flight));
    progress
        .iter()
        .enumerate()
        .filter(|(_, p)| **p == PvcProgress::NeedsPatch)
        .map(|(i, _)| i)
        .take(budget)
        .collect()
}

/// The driver's message when a resize cannot succeed: an `*Infeasible` allocated-resource
/// status or a `ControllerResizeError` condition.
fn infeasible(pvc: &PersistentVolumeClaim, view: &PvcView) -> Option<String> {
    let conditions = pvc.status.as_ref().and_then(|s| s.conditions.as_ref());
    let message_of = |type_: &str| {
        conditions?
            .iter()
            .find(|c| c.type_ == type_ && c.status == "True")
            .map(|c| c.message.clone().unwrap_or_default())
    };
    let name = &view.name;
    if let Some(status) = view
        .resize_status
        .as_deref()
        .filter(|s| s.ends_with("Infeasible"))
    {
        let detail = message_of("ControllerResizeError").or_else(|| message_of("NodeResizeError"));
        return Some(match detail.filter(|d| !d.is_empty()) {
            Some(d) => format!("resize of PVC {name} is {status}: {d}"),
            None => format!("resize of PVC {name} is {status}"),
        });
    }
    message_of("ControllerResizeError").map(|d| format!("resize of PVC {name} failed: {d}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pvc(
        request: &str,
        capacity: &str,
        resize: Option<&str>,
        conds: &[(&str, &str)],
    ) -> PersistentVolumeClaim {
        let mut status = json!({"capacity": {"storage": capacity},
            "conditions": conds.iter().map(|(t, m)| json!({"type": t, "status": "True", "message": m})).collect::<Vec<_>>()});
        if let Some(r) = resize {
            status["allocatedResourceStatuses"] = json!({"storage": r});
        }
        serde_json::from_value(json!({
            "metadata": {"name": "data-rd-0"},
            "spec": {"resources": {"requests": {"storage": request}}},
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn progress_table() {
        let target = Quantity::parse("2Gi").unwrap();
        let cases = [
            (pvc("1Gi", "1Gi", None, &[]), PvcProgress::NeedsPatch),
            (pvc("2Gi", "2Gi", None, &[]), PvcProgress::Reached),
            (pvc("2Gi", "2048Mi", None, &[]), PvcProgress::Reached),
            (pvc("3Gi", "3Gi", None, &[]), PvcProgress::Reached),
            (
                pvc("2Gi", "1Gi", Some("ControllerResizeInProgress"), &[]),
                PvcProgress::Resizing,
            ),
            (
                pvc("2Gi", "1Gi", Some("SomethingNew"), &[]),
                PvcProgress::Resizing,
            ),
            (
                pvc(
                    "2Gi",
                    "1Gi",
                    Some("NodeResizePending"),
                    &[("FileSystemResizePending", "")],
                ),
                PvcProgress::FileSystemResizePending,
            ),
            (
                pvc(
                    "2Gi",
                    "1Gi",
                    Some("ControllerResizeInfeasible"),
                    &[("ControllerResizeError", "quota exceeded")],
                ),
                PvcProgress::Infeasible(
                    "resize of PVC data-rd-0 is ControllerResizeInfeasible: quota exceeded".into(),
                ),
            ),
            (
                pvc("2Gi", "1Gi", Some("NodeResizeInfeasible"), &[]),
                PvcProgress::Infeasible("resize of PVC data-rd-0 is NodeResizeInfeasible".into()),
            ),
            (
                pvc("2Gi", "1Gi", None, &[("ControllerResizeError", "driver says no")]),
                PvcProgress::Infeasible("resize of PVC data-rd-0 failed: driver says no".into()),
            ),
        ];
        for (p, want) in cases {
            assert_eq!(progress(&p, &target), want, "{p:?}");
        }
    }

    #[test]
    fn controller_resize_pending_only_before_the_file_system_step() {
        let cases = [
            (pvc("1Gi", "1Gi", None, &[]), false),
            (pvc("2Gi", "2Gi", None, &[]), false),
            // Patched; the resizer has not answered yet.
            (pvc("2Gi", "1Gi", None, &[]), true),
            (pvc("2Gi", "1Gi", Some("ControllerResizeInProgress"), &[]), true),
            (
                pvc(
                    "2Gi",
                    "1Gi",
                    Some("NodeResizePending"),
                    &[("FileSystemResizePending", "")],
                ),
                false,
            ),
            (pvc("2Gi", "1Gi", Some("NodeResizeInProgress"), &[]), false),
            (pvc("2Gi", "1Gi", Some("ControllerResizeInfeasible"), &[]), false),
            (pvc("2Gi", "1Gi", None, &[("ControllerResizeError", "no")]), false),
        ];
        for (p, want) in cases {
            assert_eq!(controller_resize_pending(&p), want, "{p:?}");
        }
    }

    #[test]
    fn patch_now_keeps_at_most_limit_in_flight() {
        use PvcProgress::{FileSystemResizePending as Pending, NeedsPatch as Needs, Reached, Resizing};
        let limit = |n: usize| NonZeroUsize::new(n);
        let cases: [(Vec<PvcProgress>, Option<NonZeroUsize>, Vec<usize>); 8] = [
            (vec![Needs, Needs, Needs], None, vec![0, 1, 2]),
            (vec![Needs, Needs, Needs], limit(1), vec![0]),
            (vec![Needs, Needs, Needs], limit(2), vec![0, 1]),
            (vec![Reached, Resizing, Needs, Needs], limit(1), vec![]),
            (vec![Reached, Pending, Needs, Needs], limit(2), vec![2]),
            (vec![Reached, Reached, Needs], limit(1), vec![2]),
            (vec![Resizing, Resizing, Needs], limit(1), vec![]),
            (vec![Resizing, Needs, Needs], None, vec![1, 2]),
        ];
        for (progress, lim, want) in cases {
            assert_eq!(patch_now(&progress, lim), want, "{progress:?} limit {lim:?}");
        }
    }

    #[test]
    fn a_pvc_without_request_needs_a_patch() {
        let p: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
        assert_eq!(
            progress(&p, &Quantity::parse("1Gi").unwrap()),
            PvcProgress::NeedsPatch
        );
    }
}
