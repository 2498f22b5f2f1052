//! The view of each cluster object the rules read, built from the object's JSON or its typed
//! form: only what a rule looks at.

use std::collections::BTreeMap;

use k8s_openapi::api::{core::v1::ResourceQuota, storage::v1::StorageClass};
use serde_json::Value;

use crate::{
    api::{OpsRequestPhase, VolumeExpansionMode, policy::VolumeExpansionPolicySpec},
    descriptor::{DatabaseKind, Topology},
};

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

/// A namespace's labels (policies select namespaces by them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NamespaceView {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl NamespaceView {
    pub fn from_namespace(n: &k8s_openapi::api::core::v1::Namespace) -> Self {
        Self {
            name: n.metadata.name.clone().unwrap_or_default(),
            labels: n.metadata.labels.clone().unwrap_or_default(),
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

impl PolicyView {
    pub fn from_policy(p: &crate::api::VolumeExpansionPolicy) -> Self {
        Self {
            name: p.metadata.name.clone().unwrap_or_default(),
            spec: p.spec.clone(),
        }
    }
}
