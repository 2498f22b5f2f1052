//! Pure reading of a PVC's resize progress against the target size (controller/DESIGN-NOTES.md).

use std::num::NonZeroUsize;

use volops_shared::{
    Quantity,
    facts::{PvcView, QuantityText},
};

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

fn parse(q: &Option<QuantityText>) -> Option<Quantity> {
    q.as_ref().and_then(QuantityText::quantity)
}

/// The PVC's progress towards `target`.
pub fn progress(view: &PvcView, target: &Quantity) -> PvcProgress {
    if parse(&view.capacity).is_some_and(|c| c >= *target) {
        return PvcProgress::Reached;
    }
    if parse(&view.request).is_none_or(|r| r < *target) {
        return PvcProgress::NeedsPatch;
    }
    if let Some(message) = infeasible(view) {
        return PvcProgress::Infeasible(message);
    }
    if view
        .true_conditions()
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
pub fn controller_resize_pending(view: &PvcView) -> bool {
    let Some(request) = parse(&view.request) else {
        return false;
    };
    progress(view, &request) == PvcProgress::Resizing
        && !view.resize_status().is_some_and(|s| s.starts_with("Node"))
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
fn infeasible(view: &PvcView) -> Option<String> {
    let name = &view.name;
    let detail = view.resize_error().filter(|d| !d.is_empty());
    if let Some(status) = view.resize_status().filter(|s| s.ends_with("Infeasible")) {
        return Some(match detail {
            Some(d) => format!("resize of PVC {name} is {status}: {d}"),
            None => format!("resize of PVC {name} is {status}"),
        });
    }
    let controller_error = view
        .true_conditions()
        .iter()
        .any(|c| c == "ControllerResizeError");
    controller_error.then(|| {
        format!(
            "resize of PVC {name} failed: {}",
            view.resize_error().unwrap_or_default()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pvc(request: &str, capacity: &str, resize: Option<&str>, conds: &[(&str, &str)]) -> PvcView {
        let mut status = json!({"capacity": {"storage": capacity},
            "conditions": conds.iter().map(|(t, m)| json!({"type": t, "status": "True", "message": m})).collect::<Vec<_>>()});
        if let Some(r) = resize {
            status["allocatedResourceStatuses"] = json!({"storage": r});
        }
        let pvc: k8s_openapi::api::core::v1::PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data-rd-0"},
            "spec": {"resources": {"requests": {"storage": request}}},
            "status": status
        }))
        .unwrap();
        PvcView::from_pvc(&pvc)
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
        let p = PvcView {
            name: "x".into(),
            ..PvcView::default()
        };
        assert_eq!(
            progress(&p, &Quantity::parse("1Gi").unwrap()),
            PvcProgress::NeedsPatch
        );
    }
}
