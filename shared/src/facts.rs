//! Plain views of the cluster objects the rules look at. The webhook fills them from its watch
//! caches and the controller from its reflectors; the rules never see a kube type or a client.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use k8s_openapi::api::{
    core::v1::{PersistentVolumeClaim, ResourceQuota},
    storage::v1::StorageClass,
};
use serde_json::Value;

use crate::{
    api::{OpsRequestPhase, VolumeExpansionMode, policy::VolumeExpansionPolicySpec},
    descriptor::{DatabaseKind, Topology},
    quantity::Quantity,
};

/// A list shared between [`Facts`] values: cloning is a reference count, changing it (tests,
/// builders) copies it first if anybody else holds it. The webhook keeps each namespace's PVC
/// views in one and hands the same list to every review.
#[derive(PartialEq, Eq)]
pub struct Shared<T>(Arc<Vec<T>>);

impl<T> Shared<T> {
    pub fn new(items: Vec<T>) -> Self {
        Self(Arc::new(items))
    }
    /// True when both hold the very same list (not merely equal ones).
    pub fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Self(Arc::new(Vec::new()))
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T> Deref for Shared<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T: Clone> DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        Arc::make_mut(&mut self.0)
    }
}

impl<T> From<Vec<T>> for Shared<T> {
    fn from(items: Vec<T>) -> Self {
        Self::new(items)
    }
}

impl<T> FromIterator<T> for Shared<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self::new(iter.into_iter().collect())
    }
}

/// A quantity as written in an object, parsed once when the view is built (rules that sum or
/// compare many of them read [`QuantityText::nanos`]). Reads as the text it was written as.
#[derive(Clone, PartialEq, Eq)]
pub struct QuantityText {
    text: String,
    /// `None` when the text is not a valid quantity.
    nanos: Option<i128>,
}

impl QuantityText {
    pub fn new(text: String) -> Self {
        let nanos = Quantity::nanos_of(&text).ok();
        Self { text, nanos }
    }
    /// The exact value in nano-units, or `None` when the text is not a quantity.
    pub fn nanos(&self) -> Option<i128> {
        self.nanos
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Deref for QuantityText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl From<&str> for QuantityText {
    fn from(text: &str) -> Self {
        Self::new(text.to_owned())
    }
}

impl From<String> for QuantityText {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl fmt::Debug for QuantityText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.text.fmt(f)
    }
}

impl fmt::Display for QuantityText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What the rules need to know about an ops request. Built from raw JSON so that a request the
/// typed API would refuse (a missing field, a number where a string goes, a mode that is none)
/// still gets the clear verdict of the rule it breaks instead of a parse error. The webhook and
/// the controller build every view through [`OpsRequestView::from_json`], the one reader.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpsRequestView {
    pub namespace: String,
    pub name: String,
    pub type_: Option<String>,
    pub database: Option<String>,
    /// `spec.volumeExpansion.mode`; `Err` keeps a text that is no mode (rule 3 denies it).
    pub mode: Option<Result<VolumeExpansionMode, String>>,
    /// The requested size as written (numbers are turned into their decimal text).
    pub size: Option<String>,
    /// `status.phase`: an unknown text reads as [`OpsRequestPhase::Unknown`], an empty one as
    /// none.
    pub phase: Option<OpsRequestPhase>,
    /// RFC 3339 creation time; requests are ordered by it.
    pub created: Option<String>,
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl OpsRequestView {
    pub fn from_json(kind: DatabaseKind, obj: &Value) -> Self {
        let at = |p: &str| obj.pointer(p);
        Self {
            namespace: text(at("/metadata/namespace")).unwrap_or_default(),
            name: text(at("/metadata/name")).unwrap_or_default(),
            type_: text(at("/spec/type")),
            database: text(at("/spec/databaseRef/name")),
            mode: text(at("/spec/volumeExpansion/mode")).map(|m| VolumeExpansionMode::parse(&m).ok_or(m)),
            size: text(at(&format!("/spec/volumeExpansion/{}", kind.size_field()))),
            phase: text(at("/status/phase")).and_then(|p| OpsRequestPhase::parse(&p)),
            created: text(at("/metadata/creationTimestamp")),
        }
    }

    /// The mode, when one is written and valid.
    pub fn valid_mode(&self) -> Option<VolumeExpansionMode> {
        self.mode.clone().and_then(Result::ok)
    }

    /// True while the request has not started (see [`OpsRequestPhase::is_pending`]).
    pub fn is_pending(&self) -> bool {
        OpsRequestPhase::is_pending(self.phase)
    }

    /// True while the request may still act (see [`OpsRequestPhase::is_active`]).
    pub fn is_active(&self) -> bool {
        OpsRequestPhase::is_active(self.phase)
    }

    pub fn is_volume_expansion(&self) -> bool {
        self.type_.as_deref() == Some(crate::api::ops::VOLUME_EXPANSION)
    }
}

/// What the rules need to know about the database.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseView {
    pub namespace: String,
    pub name: String,
    pub storage_type: Option<String>,
    /// True when `spec.storage` is present.
    pub has_storage: bool,
    pub storage_request: Option<String>,
    pub storage_class: Option<String>,
    pub phase: Option<String>,
    pub topology: Topology,
}

impl DatabaseView {
    pub fn from_json(kind: DatabaseKind, obj: &Value) -> Self {
        let at = |p: &str| obj.pointer(p);
        let int = |p: &str| at(p).and_then(Value::as_i64).and_then(|v| i32::try_from(v).ok());
        let topology = match kind {
            DatabaseKind::Redis if text(at("/spec/mode")).as_deref() == Some("Cluster") => {
                Topology::RedisCluster {
                    shards: int("/spec/cluster/shards").unwrap_or(3),
                    replicas: int("/spec/cluster/replicas").unwrap_or(2),
                }
            }
            DatabaseKind::Redis => Topology::RedisSingle {
                replicas: int("/spec/replicas").unwrap_or(1),
            },
            DatabaseKind::ZooKeeper => Topology::ZooKeeper {
                replicas: int("/spec/replicas").unwrap_or(1),
            },
        };
        Self {
            namespace: text(at("/metadata/namespace")).unwrap_or_default(),
            name: text(at("/metadata/name")).unwrap_or_default(),
            storage_type: text(at("/spec/storageType")),
            has_storage: at("/spec/storage").is_some_and(|s| !s.is_null()),
            storage_request: text(at("/spec/storage/resources/requests/storage")),
            storage_class: text(at("/spec/storage/storageClassName")),
            phase: text(at("/status/phase")),
            topology,
        }
    }
}

/// What the rules need to know about a PVC.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PvcView {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub storage_class: Option<String>,
    pub request: Option<QuantityText>,
    pub capacity: Option<QuantityText>,
    /// `status.allocatedResources.storage` (quota counts max(request, allocated)).
    pub allocated: Option<QuantityText>,
    pub phase: Option<String>,
    /// `status.allocatedResourceStatuses.storage`, e.g. `ControllerResizeInProgress`.
    pub resize_status: Option<String>,
    /// Types of the PVC's conditions whose status is True.
    pub true_conditions: Vec<String>,
}

impl PvcView {
    pub fn from_pvc(pvc: &PersistentVolumeClaim) -> Self {
        let spec = pvc.spec.as_ref();
        let status = pvc.status.as_ref();
        let storage =
            |m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
                m.and_then(|m| m.get("storage"))
                    .map(|q| QuantityText::new(q.0.clone()))
            };
        Self {
            name: pvc.metadata.name.clone().unwrap_or_default(),
            labels: pvc.metadata.labels.clone().unwrap_or_default(),
            storage_class: spec.and_then(|s| s.storage_class_name.clone()),
            request: storage(
                spec.and_then(|s| s.resources.as_ref())
                    .and_then(|r| r.requests.as_ref()),
            ),
            capacity: storage(status.and_then(|s| s.capacity.as_ref())),
            allocated: storage(status.and_then(|s| s.allocated_resources.as_ref())),
            phase: status.and_then(|s| s.phase.clone()),
            resize_status: status
                .and_then(|s| s.allocated_resource_statuses.as_ref())
                .and_then(|m| m.get("storage").cloned()),
            true_conditions: status
                .and_then(|s| s.conditions.as_ref())
                .map(|cs| {
                    cs.iter()
                        .filter(|c| c.status == "True")
                        .map(|c| c.type_.clone())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// What the rules need to know about a StorageClass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StorageClassView {
    pub name: String,
    pub allow_expansion: bool,
    pub is_default: bool,
}

impl StorageClassView {
    pub fn from_class(sc: &StorageClass) -> Self {
        let annotations = sc.metadata.annotations.clone().unwrap_or_default();
        Self {
            name: sc.metadata.name.clone().unwrap_or_default(),
            allow_expansion: sc.allow_volume_expansion == Some(true),
            is_default: annotations
                .get("storageclass.kubernetes.io/is-default-class")
                .map(String::as_str)
                == Some("true"),
        }
    }
}

/// A ResourceQuota's hard limits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuotaView {
    pub name: String,
    pub hard: BTreeMap<String, String>,
}

impl QuotaView {
    pub fn from_quota(q: &ResourceQuota) -> Self {
        Self {
            name: q.metadata.name.clone().unwrap_or_default(),
            hard: q
                .spec
                .as_ref()
                .and_then(|s| s.hard.as_ref())
                .map(|h| h.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
                .unwrap_or_default(),
        }
    }
}

/// A VolumeExpansionPolicy by name.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyView {
    pub name: String,
    pub spec: VolumeExpansionPolicySpec,
}

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
        let of_db = |p: &&PvcView| self.kind.selects(db, &p.labels);
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
