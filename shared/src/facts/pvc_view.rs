//! The view of a PVC: the one kind both binaries cache by the hundred thousand, so it is laid
//! out small (docs/ARCHITECTURE.md, "What each cache holds"): repeated texts interned, what is
//! only set while a volume resizes kept out of line.

use std::collections::BTreeMap;

use k8s_openapi::{api::core::v1::PersistentVolumeClaim, apimachinery::pkg::api::resource::Quantity};

use super::{Interned, QuantityText, intern::intern};
use crate::descriptor::DatabaseKind;

/// The database a PVC belongs to by KubeDB's selector labels (`SELECTOR_LABEL_KEYS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvcOwner {
    pub kind: DatabaseKind,
    /// The database's name (the `app.kubernetes.io/instance` label).
    pub instance: Box<str>,
}

impl PvcOwner {
    /// The owner that `labels` name, if they are KubeDB's selector labels of a database.
    pub fn of_labels(labels: &BTreeMap<String, String>) -> Option<Self> {
        let instance = labels.get(INSTANCE_LABEL)?;
        DatabaseKind::ALL
            .into_iter()
            .find(|k| k.selects(instance, labels))
            .map(|kind| Self {
                kind,
                instance: instance.as_str().into(),
            })
    }
}

/// The label KubeDB puts on every offshoot of a database with the database's name.
const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// What the rules need to know about a PVC.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PvcView {
    pub name: String,
    /// The database whose selector labels the PVC carries: all the rules read of its labels.
    pub owner: Option<PvcOwner>,
    pub storage_class: Option<Interned>,
    pub request: Option<QuantityText>,
    pub capacity: Option<QuantityText>,
    /// `status.allocatedResources.storage` (quota counts max(request, allocated)).
    pub allocated: Option<QuantityText>,
    pub phase: Option<Interned>,
    /// None while the PVC has no resize status and no True condition (most of the time).
    pub resize: Option<Box<PvcResize>>,
}

/// A PVC's resize status and conditions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PvcResize {
    /// `status.allocatedResourceStatuses.storage`, e.g. `ControllerResizeInProgress`.
    pub status: Option<String>,
    /// Types of the PVC's conditions whose status is True.
    pub true_conditions: Vec<String>,
    /// The message of a True `ControllerResizeError` condition, else of a True
    /// `NodeResizeError` one: why the driver refused a resize.
    pub error: Option<String>,
}

impl PvcView {
    pub fn from_pvc(pvc: &PersistentVolumeClaim) -> Self {
        let spec = pvc.spec.as_ref();
        let status = pvc.status.as_ref();
        let storage = |m: Option<&BTreeMap<String, Quantity>>| {
            m.and_then(|m| m.get("storage"))
                .map(|q| QuantityText::new(q.0.clone()))
        };
        Self {
            name: pvc.metadata.name.clone().unwrap_or_default(),
            owner: pvc.metadata.labels.as_ref().and_then(PvcOwner::of_labels),
            storage_class: spec.and_then(|s| s.storage_class_name.as_deref()).map(intern),
            request: storage(
                spec.and_then(|s| s.resources.as_ref())
                    .and_then(|r| r.requests.as_ref()),
            ),
            capacity: storage(status.and_then(|s| s.capacity.as_ref())),
            allocated: storage(status.and_then(|s| s.allocated_resources.as_ref())),
            phase: status.and_then(|s| s.phase.as_deref()).map(intern),
            resize: PvcResize::of(pvc).map(Box::new),
        }
    }

    /// Whether the PVC carries the selector labels of database `db` of `kind`.
    pub fn belongs_to(&self, kind: DatabaseKind, db: &str) -> bool {
        self.owner
            .as_ref()
            .is_some_and(|o| o.kind == kind && &*o.instance == db)
    }

    /// `status.allocatedResourceStatuses.storage`, e.g. `ControllerResizeInProgress`.
    pub fn resize_status(&self) -> Option<&str> {
        self.resize.as_ref().and_then(|r| r.status.as_deref())
    }

    /// Types of the PVC's conditions whose status is True.
    pub fn true_conditions(&self) -> &[String] {
        self.resize
            .as_ref()
            .map(|r| r.true_conditions.as_slice())
            .unwrap_or_default()
    }

    /// Why the driver refused a resize (see [`PvcResize::error`]).
    pub fn resize_error(&self) -> Option<&str> {
        self.resize.as_ref().and_then(|r| r.error.as_deref())
    }

    /// The resize state to change, created empty if the PVC has none (fixtures).
    pub fn resize_mut(&mut self) -> &mut PvcResize {
        self.resize.get_or_insert_default()
    }
}

impl PvcResize {
    /// The resize state of `pvc`, None when it has none.
    fn of(pvc: &PersistentVolumeClaim) -> Option<Self> {
        let status = pvc.status.as_ref()?;
        let conditions = status.conditions.as_deref().unwrap_or_default();
        let true_of = |type_: &str| {
            conditions
                .iter()
                .find(|c| c.type_ == type_ && c.status == "True")
                .map(|c| c.message.clone().unwrap_or_default())
        };
        let resize = Self {
            status: status
                .allocated_resource_statuses
                .as_ref()
                .and_then(|m| m.get("storage").cloned()),
            true_conditions: conditions
                .iter()
                .filter(|c| c.status == "True")
                .map(|c| c.type_.clone())
                .collect(),
            error: true_of("ControllerResizeError").or_else(|| true_of("NodeResizeError")),
        };
        (resize != Self::default()).then_some(resize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(status: serde_json::Value) -> PvcView {
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data-rd-0"},
            "spec": {"storageClassName": "standard", "resources": {"requests": {"storage": "1Gi"}}},
            "status": status,
        }))
        .expect("a PVC");
        PvcView::from_pvc(&pvc)
    }

    #[test]
    fn a_settled_pvc_keeps_no_resize_state_and_shares_its_class_and_phase() {
        let a = view(json!({"phase": "Bound", "capacity": {"storage": "1Gi"}}));
        let b = view(json!({"phase": "Bound", "capacity": {"storage": "1Gi"},
                            "conditions": [{"type": "Resizing", "status": "False"}]}));
        assert_eq!(a.resize, None);
        assert_eq!(b.resize, None, "a condition that is not True is not kept");
        assert_eq!(a.phase.as_deref(), Some("Bound"));
        let (Some(ca), Some(cb)) = (&a.storage_class, &b.storage_class) else {
            panic!("both have a class");
        };
        assert!(std::sync::Arc::ptr_eq(ca, cb));
    }

    #[test]
    fn a_resizing_pvc_keeps_its_status_true_conditions_and_the_drivers_refusal() {
        let p = view(json!({"phase": "Bound",
            "allocatedResourceStatuses": {"storage": "ControllerResizeInfeasible"},
            "conditions": [
                {"type": "NodeResizeError", "status": "True", "message": "node says no"},
                {"type": "ControllerResizeError", "status": "True", "message": "disk quota"},
                {"type": "FileSystemResizePending", "status": "False"}]}));
        assert_eq!(p.resize_status(), Some("ControllerResizeInfeasible"));
        assert_eq!(p.true_conditions(), ["NodeResizeError", "ControllerResizeError"]);
        assert_eq!(p.resize_error(), Some("disk quota"));
    }

    #[test]
    fn the_view_stays_small() {
        // The cached PVC views were ~340 bytes each before this layout (docs/PERFORMANCE.md,
        // "Large clusters"); the inline part is what every one of them pays.
        assert!(
            std::mem::size_of::<PvcView>() <= 136,
            "{}",
            std::mem::size_of::<PvcView>()
        );
    }
}
