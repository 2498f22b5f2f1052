//! Plain views of the cluster objects the rules look at. The webhook fills them from its watch
//! caches and the controller from its reflectors; the rules never see a kube type or a client.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    core::v1::{PersistentVolumeClaim, ResourceQuota},
    storage::v1::StorageClass,
};
use serde_json::Value;

use crate::{
    api::policy::VolumeExpansionPolicySpec,
    descriptor::{DatabaseKind, Topology},
};

/// What the rules need to know about an ops request. Built from raw JSON so that a request the
/// typed API would refuse (a missing field, a number where a string goes) still gets a clear
/// verdict instead of a parse error.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpsRequestView {
    pub namespace: String,
    pub name: String,
    pub type_: Option<String>,
    pub database: Option<String>,
    pub mode: Option<String>,
    /// The requested size as written (numbers are turned into their decimal text).
    pub size: Option<String>,
    pub phase: Option<String>,
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
            mode: text(at("/spec/volumeExpansion/mode")),
            size: text(at(&format!("/spec/volumeExpansion/{}", kind.size_field()))),
            phase: text(at("/status/phase")).filter(|p| !p.is_empty()),
            created: text(at("/metadata/creationTimestamp")),
        }
    }

    /// True while the request has not started (KubeDB checks sizes only then).
    pub fn is_pending(&self) -> bool {
        matches!(self.phase.as_deref(), None | Some("Pending"))
    }

    /// True while the request may still act (not in a final phase).
    pub fn is_active(&self) -> bool {
        matches!(
            self.phase.as_deref(),
            None | Some("Pending") | Some("Progressing")
        )
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
    pub request: Option<String>,
    pub capacity: Option<String>,
    /// `status.allocatedResources.storage` (quota counts max(request, allocated)).
    pub allocated: Option<String>,
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
        let storage = |m: Option<
            &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
        >| { m.and_then(|m| m.get("storage")).map(|q| q.0.clone()) };
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

/// Switches that change what the rules allow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleOptions {
    /// Admit ops requests of types volops does not handle (KubeDB's ops-manager runs too).
    pub pass_through_other_types: bool,
}

/// Everything the rules decide an ops request on.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    pub kind: DatabaseKind,
    pub request: OpsRequestView,
    pub database: Option<DatabaseView>,
    /// Every PVC in the request's namespace (quota needs them all).
    pub namespace_pvcs: Vec<PvcView>,
    pub storage_classes: Vec<StorageClassView>,
    pub quotas: Vec<QuotaView>,
    pub namespace_labels: BTreeMap<String, String>,
    /// Every policy in the cluster; the rules pick those that select the namespace.
    pub policies: Vec<PolicyView>,
    /// Other ops requests of the same kind in the namespace.
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
            namespace_pvcs: Vec::new(),
            storage_classes: Vec::new(),
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
        let want = self.kind.selector_labels(db);
        let mut pvcs: Vec<&PvcView> = self
            .namespace_pvcs
            .iter()
            .filter(|p| want.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
            .collect();
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
