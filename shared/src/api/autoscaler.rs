//! KubeDB's storage autoscalers, `RedisAutoscaler` and `ZooKeeperAutoscaler`
//! (autoscaling.kubedb.com/v1alpha1): the storage sections volops acts on, typed; every other
//! field (`compute`, a newer KubeDB's fields, KubeDB's `status.vpas`) kept in `other` maps so a
//! read-modify-write never drops it. The schema is written out in `shared/src/crd/autoscaler.rs`, a superset
//! of KubeDB's (docs/KUBEDB.md, "Storage autoscalers").

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::CustomResource;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApplyPolicy, DatabaseRef, VolumeExpansionMode, condition::Condition, quantity_field};
use crate::descriptor::DatabaseKind;

/// `trigger` that turns an autoscaler on; anything else (KubeDB's default `Off`) leaves it off.
pub const TRIGGER_ON: &str = "On";
/// `trigger` KubeDB's webhook writes when none is set.
pub const TRIGGER_OFF: &str = "Off";

/// The autoscaler kind of a database kind.
pub fn autoscaler_kind(kind: DatabaseKind) -> &'static str {
    match kind {
        DatabaseKind::Redis => "RedisAutoscaler",
        DatabaseKind::ZooKeeper => "ZooKeeperAutoscaler",
    }
}

/// The database kind an autoscaler kind scales.
pub fn kind_of_autoscaler(kind: &str) -> Option<DatabaseKind> {
    [DatabaseKind::Redis, DatabaseKind::ZooKeeper]
        .into_iter()
        .find(|k| autoscaler_kind(*k) == kind)
}

/// The keys `spec.storage` of an autoscaler of `kind` may hold, one per database mode.
pub fn storage_keys(kind: DatabaseKind) -> &'static [&'static str] {
    match kind {
        DatabaseKind::Redis => &["standalone", "cluster", "sentinel"],
        DatabaseKind::ZooKeeper => &["zookeeper"],
    }
}

/// One entry of `scalingRules`: up to `appliesUpto` (empty: any size), grow by `threshold`
/// (`30pc`, `20%` or a quantity such as `50Gi`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageScalingRule {
    #[serde(default)]
    pub applies_upto: String,
    #[serde(default)]
    pub threshold: String,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// KubeDB's `StorageAutoscalerSpec`: one storage section. Defaults (KubeDB's webhook's,
/// `shared/src/autoscale/defaults.rs`): `trigger: Off`, `usageThreshold: 80`,
/// `scalingThreshold: 50`, `scalingRules` from `scalingThreshold`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageAutoscalerSpec {
    /// `On` turns the autoscaler on; absent or anything else is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// Usage percent of the fullest volume at which the database grows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_threshold: Option<i32>,
    /// Percent to grow by when no scaling rule applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_rules: Option<Vec<StorageScalingRule>>,
    /// Largest size the autoscaler grows a volume to.
    #[serde(
        default,
        deserialize_with = "quantity_field::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub upper_bound: Option<Quantity>,
    /// Required by KubeDB's schema; an Option so that a missing one gets the rule's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expansion_mode: Option<VolumeExpansionMode>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl StorageAutoscalerSpec {
    /// Whether the section is turned on.
    pub fn is_on(&self) -> bool {
        self.trigger.as_deref() == Some(TRIGGER_ON)
    }
}

/// `spec.opsRequestOptions`: what the requests the autoscaler creates carry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerOpsRequestOptions {
    /// A Go duration, the requests' `spec.timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// `IfReady` by default (KubeDB's CRD and webhook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply: Option<ApplyPolicy>,
    /// 1 by default (KubeDB's CRD and webhook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i32>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `spec.storage` of a RedisAutoscaler: the section of the Redis's mode.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedisStorageAutoscalerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standalone: Option<StorageAutoscalerSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<StorageAutoscalerSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<StorageAutoscalerSpec>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `spec.storage` of a ZooKeeperAutoscaler (KubeDB's before it removed it, 2026-05).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZooKeeperStorageAutoscalerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zookeeper: Option<StorageAutoscalerSpec>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `status.phase` of an autoscaler: KubeDB's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AutoscalerPhase {
    InProgress,
    Current,
    Terminating,
    Failed,
}

/// What the autoscaler last decided to ask for (volops's, beside KubeDB's status).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageRecommendation {
    /// RFC 3339 time of the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Usage percent of the fullest volume seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_percent: Option<i32>,
    /// The size the volumes grow from (their real capacity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The size asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Which limit lowered the size, when one did (`upperBound`, a policy's `maxSize`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clamped_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The last ops request the autoscaler created.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastOpsRequest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// RFC 3339 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// RFC 3339 time it reached a final phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// Failed requests in a row (the back-off grows with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
}

/// `status` of an autoscaler: KubeDB's (`phase`, `observedGeneration`, `conditions`, and its
/// compute fields kept in `other`) plus volops's last recommendation and request. KubeDB's own
/// CRD prunes the last two (its status schema does not list them): the conditions carry the
/// same news (docs/KUBEDB.md).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<AutoscalerPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_recommendation: Option<StorageRecommendation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request: Option<LastOpsRequest>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `spec` of a RedisAutoscaler.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "autoscaling.kubedb.com",
    version = "v1alpha1",
    kind = "RedisAutoscaler",
    plural = "redisautoscalers",
    singular = "redisautoscaler",
    shortname = "rdscaler",
    category = "autoscaler",
    category = "kubedb",
    category = "appscode",
    namespaced,
    status = "AutoscalerStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct RedisAutoscalerSpec {
    #[serde(default)]
    pub database_ref: DatabaseRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_request_options: Option<AutoscalerOpsRequestOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<RedisStorageAutoscalerSpec>,
    /// `compute` and every other field, kept as they came.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `spec` of a ZooKeeperAutoscaler.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "autoscaling.kubedb.com",
    version = "v1alpha1",
    kind = "ZooKeeperAutoscaler",
    plural = "zookeeperautoscalers",
    singular = "zookeeperautoscaler",
    shortname = "zkscaler",
    category = "autoscaler",
    category = "kubedb",
    category = "appscode",
    namespaced,
    status = "AutoscalerStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ZooKeeperAutoscalerSpec {
    #[serde(default)]
    pub database_ref: DatabaseRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_request_options: Option<AutoscalerOpsRequestOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<ZooKeeperStorageAutoscalerSpec>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// What the rules and the decision read of an autoscaler of either kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AutoscalerView {
    pub database: String,
    pub options: AutoscalerOpsRequestOptions,
    /// Each storage section present, by its key in `spec.storage`.
    pub sections: Vec<(&'static str, StorageAutoscalerSpec)>,
}

impl AutoscalerView {
    /// The section under `key`, if present.
    pub fn section(&self, key: &str) -> Option<&StorageAutoscalerSpec> {
        self.sections.iter().find(|(k, _)| *k == key).map(|(_, s)| s)
    }
}

impl From<&RedisAutoscalerSpec> for AutoscalerView {
    fn from(spec: &RedisAutoscalerSpec) -> Self {
        let storage = spec.storage.clone().unwrap_or_default();
        let sections = [
            ("standalone", storage.standalone),
            ("cluster", storage.cluster),
            ("sentinel", storage.sentinel),
        ];
        Self {
            database: spec.database_ref.name.clone(),
            options: spec.ops_request_options.clone().unwrap_or_default(),
            sections: sections
                .into_iter()
                .filter_map(|(k, s)| s.map(|s| (k, s)))
                .collect(),
        }
    }
}

impl From<&ZooKeeperAutoscalerSpec> for AutoscalerView {
    fn from(spec: &ZooKeeperAutoscalerSpec) -> Self {
        let section = spec.storage.as_ref().and_then(|s| s.zookeeper.clone());
        Self {
            database: spec.database_ref.name.clone(),
            options: spec.ops_request_options.clone().unwrap_or_default(),
            sections: section.map(|s| ("zookeeper", s)).into_iter().collect(),
        }
    }
}

/// Why an autoscaler cannot be read as its typed API object.
#[derive(Debug, thiserror::Error)]
pub enum AutoscalerReadError {
    #[error("spec.databaseRef.name is required: name the {0} to scale")]
    NoDatabase(&'static str),
    #[error("{kind} cannot be read as its typed API object: {source}")]
    Shape {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// Reads an autoscaler of `kind` from its JSON into its view (the webhook's and controller's
/// one reader).
pub fn autoscaler_view(kind: DatabaseKind, obj: &Value) -> Result<AutoscalerView, AutoscalerReadError> {
    let spec = match obj.get("spec") {
        Some(Value::Object(spec)) => Value::Object(spec.clone()),
        _ => Value::Object(Default::default()),
    };
    let named = spec
        .pointer("/databaseRef/name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !named {
        return Err(AutoscalerReadError::NoDatabase(kind.kind()));
    }
    let shape = |source| AutoscalerReadError::Shape {
        kind: autoscaler_kind(kind),
        source,
    };
    Ok(match kind {
        DatabaseKind::Redis => {
            AutoscalerView::from(&serde_json::from_value::<RedisAutoscalerSpec>(spec).map_err(shape)?)
        }
        DatabaseKind::ZooKeeper => {
            AutoscalerView::from(&serde_json::from_value::<ZooKeeperAutoscalerSpec>(spec).map_err(shape)?)
        }
    })
}
