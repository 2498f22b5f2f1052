//! Plain views of the cluster objects the rules look at. The webhook fills them from its watch
//! caches and the controller from its reflectors; the rules never see a kube type or a client.

mod intern;
mod pvc_view;
mod values;
mod views;

use std::collections::BTreeMap;

pub use intern::Interned;
pub use pvc_view::{PvcOwner, PvcResize, PvcView};
pub use values::{QuantityText, Shared};
pub use views::{DatabaseView, NamespaceView, OpsRequestView, PolicyView, QuotaView, StorageClassView};

use crate::descriptor::DatabaseKind;

/// How a storage request that grows outside an ops request is judged (`--direct-growth`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DirectGrowth {
    /// A database's volumes grow only through an ops request: growing one of its PVCs or its
    /// `spec.storage` directly is denied. Any other PVC is judged by the policies.
    #[default]
    Deny,
    /// Every direct growth is judged by the rules an ops request is: the policies, the quotas
    /// and (for a database) its StorageClasses.
    WithinPolicy,
}

impl DirectGrowth {
    /// The flag value (`--direct-growth deny|within-policy`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deny => "deny",
            Self::WithinPolicy => "within-policy",
        }
    }
}

/// What the webhook does with ops requests of types volops does not handle (`--other-types`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OtherTypes {
    /// Admit them untouched: they are KubeDB's ops-manager's (README.md, "Other ops types, and
    /// one owner per request").
    #[default]
    Pass,
    /// Deny them: a cluster where only volops runs ops requests.
    Deny,
}

impl OtherTypes {
    /// The flag value (`--other-types pass|deny`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Deny => "deny",
        }
    }
}

/// Who acts on `VolumeExpansion` ops requests (`--volume-expansion-owner`): never both
/// (controller/DESIGN-NOTES.md, "One owner per request").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VolumeExpansionOwner {
    /// volops's webhook judges them and its controller runs them.
    #[default]
    Volops,
    /// KubeDB's ops-manager runs them; volops's webhook and controller leave them alone.
    Kubedb,
}

impl VolumeExpansionOwner {
    /// The flag value (`--volume-expansion-owner volops|kubedb`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Volops => "volops",
            Self::Kubedb => "kubedb",
        }
    }
}

/// Switches that change what the rules allow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleOptions {
    /// Ops requests of types volops does not handle: passed through (the default) or denied.
    pub other_types: OtherTypes,
    /// Who owns `VolumeExpansion` requests; with `Kubedb` the rules admit them untouched.
    pub volume_expansion_owner: VolumeExpansionOwner,
    /// How storage growing outside an ops request is judged.
    pub direct_growth: DirectGrowth,
    /// The controller's user (`--controller-username`): the only one who may write volops's
    /// own annotations, and whose writes the webhook admits unchecked. Shared, as every review
    /// copies the options.
    pub controller_username: Option<std::sync::Arc<str>>,
}

/// Everything the rules decide an ops request on.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    pub kind: DatabaseKind,
    pub request: OpsRequestView,
    pub database: Option<DatabaseView>,
    /// Every PVC in the request's namespace (quota needs them all).
    pub namespace_pvcs: Shared<PvcView>,
    /// Positions in `namespace_pvcs` of the PVCs labelled with the database's instance name,
    /// when the caller keeps them indexed (a superset of the database's PVCs, so the rules pick
    /// those among a few instead of the whole namespace); `None` looks at every one.
    pub instance_pvcs: Option<Shared<u32>>,
    pub storage_classes: Shared<StorageClassView>,
    pub quotas: Vec<QuotaView>,
    pub namespace_labels: BTreeMap<String, String>,
    /// The cluster's policies (at least those that select the namespace: the rules pick those).
    pub policies: Vec<PolicyView>,
    /// Other ops requests of the same kind in the namespace (the rules read only those for the
    /// same database; the webhook passes just these).
    pub other_requests: Vec<OpsRequestView>,
    pub options: RuleOptions,
}

impl Facts {
    /// A request with nothing else known (builders fill the rest).
    pub fn new(kind: DatabaseKind, request: OpsRequestView) -> Self {
        Self {
            kind,
            request,
            database: None,
            namespace_pvcs: Shared::default(),
            instance_pvcs: None,
            storage_classes: Shared::default(),
            quotas: Vec::new(),
            namespace_labels: BTreeMap::new(),
            policies: Vec::new(),
            other_requests: Vec::new(),
            options: RuleOptions::default(),
        }
    }

    /// The database's PVCs: those labelled as its offshoots, by name.
    pub fn database_pvcs(&self) -> Vec<&PvcView> {
        let Some(db) = &self.request.database else {
            return Vec::new();
        };
        let of_db = |p: &&PvcView| p.belongs_to(self.kind, db);
        let mut pvcs: Vec<&PvcView> = match &self.instance_pvcs {
            Some(at) => at
                .iter()
                .filter_map(|&i| self.namespace_pvcs.get(i as usize))
                .filter(of_db)
                .collect(),
            None => self.namespace_pvcs.iter().filter(of_db).collect(),
        };
        pvcs.sort_by(|a, b| a.name.cmp(&b.name));
        pvcs
    }

    pub fn storage_class(&self, name: &str) -> Option<&StorageClassView> {
        self.storage_classes.iter().find(|c| c.name == name)
    }

    /// The class a PVC without `storageClassName` gets: the cluster default.
    pub fn default_storage_class(&self) -> Option<&StorageClassView> {
        self.storage_classes.iter().find(|c| c.is_default)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::api::{OpsRequestPhase, VolumeExpansionMode};

    use super::*;

    #[test]
    fn an_ops_request_view_reads_odd_shapes_as_absent_and_keeps_odd_texts() {
        let full = json!({"metadata": {"name": "g", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z"},
                          "spec": {"type": "VolumeExpansion", "databaseRef": {"name": "rd"},
                                   "volumeExpansion": {"mode": "Offline", "redis": "2Gi", "node": 3}},
                          "status": {"phase": "Pending"}});
        let rd = OpsRequestView::from_json(DatabaseKind::Redis, &full);
        assert_eq!(
            rd,
            OpsRequestView {
                namespace: "ns".into(),
                name: "g".into(),
                type_: Some("VolumeExpansion".into()),
                database: Some("rd".into()),
                mode: Some(Ok(VolumeExpansionMode::Offline)),
                size: Some("2Gi".into()),
                phase: Some(OpsRequestPhase::Pending),
                created: Some("2026-01-01T00:00:00Z".into()),
            }
        );
        // Numbers read as their text; the size field is the kind's.
        let zk = OpsRequestView::from_json(DatabaseKind::ZooKeeper, &full);
        assert_eq!(zk.size.as_deref(), Some("3"));
        for (pointer, odd, check) in [
            ("/spec/volumeExpansion/mode", json!("Sideways"), "mode"),
            ("/spec/volumeExpansion", json!("Online"), "shape"),
            ("/spec", json!([1, 2]), "shape"),
            ("/status", json!("Pending"), "phase none"),
            ("/status/phase", json!(""), "phase none"),
            ("/status/phase", json!("Paused"), "phase unknown"),
        ] {
            let mut v = full.clone();
            *v.pointer_mut(pointer).unwrap() = odd.clone();
            let view = OpsRequestView::from_json(DatabaseKind::Redis, &v);
            match check {
                "mode" => assert_eq!(view.mode, Some(Err("Sideways".into()))),
                "shape" => assert_eq!((view.mode, view.size), (None, None), "{pointer} = {odd}"),
                "phase none" => assert_eq!(view.phase, None, "{pointer} = {odd}"),
                _ => {
                    assert_eq!(view.phase, Some(OpsRequestPhase::Unknown));
                    assert!(view.is_active() && !view.is_pending());
                }
            }
        }
    }

    #[test]
    fn active_is_the_opposite_of_final_for_every_phase() {
        use OpsRequestPhase::*;
        for p in [Pending, Progressing, WaitingForApproval, Approved, Unknown] {
            assert!(!p.is_final() && OpsRequestPhase::is_active(Some(p)), "{p:?}");
        }
        for p in [Successful, Failed, Denied, Skipped] {
            assert!(p.is_final() && !OpsRequestPhase::is_active(Some(p)), "{p:?}");
        }
        assert!(OpsRequestPhase::is_active(None) && OpsRequestPhase::is_pending(None));
        // serde reads what `parse` reads, and an unknown phase does not make the status unreadable.
        let st: crate::api::OpsRequestStatus = serde_json::from_value(json!({"phase": "Paused"})).unwrap();
        assert_eq!(st.phase, OpsRequestPhase::parse("Paused"));
        let st: crate::api::OpsRequestStatus =
            serde_json::from_value(json!({"phase": "WaitingForApproval"})).unwrap();
        assert_eq!(st.phase, Some(WaitingForApproval));
    }
}
