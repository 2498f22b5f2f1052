//! `RedisOpsRequest` and `ZooKeeperOpsRequest` (ops.kubedb.com/v1alpha1), with KubeDB's schema.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{condition::Condition, quantity_field};

/// `spec.type` values KubeDB defines for RedisOpsRequest.
pub const REDIS_OPS_TYPES: &[&str] = &[
    "UpdateVersion",
    "HorizontalScaling",
    "VerticalScaling",
    "VolumeExpansion",
    "Restart",
    "Reconfigure",
    "ReconfigureTLS",
    "ReplaceSentinel",
    "RotateAuth",
    "Announce",
    "StorageMigration",
];

/// `spec.type` values KubeDB defines for ZooKeeperOpsRequest.
pub const ZOOKEEPER_OPS_TYPES: &[&str] = &[
    "UpdateVersion",
    "HorizontalScaling",
    "VerticalScaling",
    "VolumeExpansion",
    "Restart",
    "Reconfigure",
    "ReconfigureTLS",
    "RotateAuth",
];

/// The one type volops carries out.
pub const VOLUME_EXPANSION: &str = "VolumeExpansion";

fn enum_schema(values: &[&str]) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": values})
}

fn redis_type_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    enum_schema(REDIS_OPS_TYPES)
}

fn zookeeper_type_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    enum_schema(ZOOKEEPER_OPS_TYPES)
}

fn duration_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "description": "Timeout of each step, a Go duration such as 5m or 3000s."})
}

/// `spec.databaseRef`: a database in the request's namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DatabaseRef {
    pub name: String,
}

/// `spec.volumeExpansion.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum VolumeExpansionMode {
    /// Grow the volumes while the pods keep running.
    #[default]
    Online,
    /// Stop one pod at a time, grow its volume, start it again.
    Offline,
}

impl VolumeExpansionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "Online",
            Self::Offline => "Offline",
        }
    }
}

/// `spec.apply`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApplyPolicy {
    /// Start only when the database is Ready.
    #[default]
    IfReady,
    /// Start whatever the database's phase.
    Always,
}

fn one() -> i32 {
    1
}

/// `spec.volumeExpansion` of a RedisOpsRequest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RedisVolumeExpansion {
    pub mode: VolumeExpansionMode,
    /// The new size of every Redis data volume.
    #[serde(
        default,
        deserialize_with = "quantity_field::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "quantity_field::schema")]
    pub redis: Option<Quantity>,
}

/// `spec.volumeExpansion` of a ZooKeeperOpsRequest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ZooKeeperVolumeExpansion {
    pub mode: VolumeExpansionMode,
    /// The new size of every ZooKeeper node's data volume.
    #[serde(
        default,
        deserialize_with = "quantity_field::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "quantity_field::schema")]
    pub node: Option<Quantity>,
}

/// `spec` of a RedisOpsRequest.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ops.kubedb.com",
    version = "v1alpha1",
    kind = "RedisOpsRequest",
    plural = "redisopsrequests",
    singular = "redisopsrequest",
    shortname = "rdops",
    category = "ops",
    category = "kubedb",
    category = "appscode",
    namespaced,
    status = "OpsRequestStatus",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Database","type":"string","jsonPath":".spec.databaseRef.name"}"#,
    printcolumn = r#"{"name":"Size","type":"string","jsonPath":".spec.volumeExpansion.redis"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.volumeExpansion.mode"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RedisOpsRequestSpec {
    #[serde(rename = "type")]
    #[schemars(schema_with = "redis_type_schema")]
    pub type_: String,
    pub database_ref: DatabaseRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_expansion: Option<RedisVolumeExpansion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "duration_schema")]
    pub timeout: Option<String>,
    #[serde(default)]
    pub apply: ApplyPolicy,
    #[serde(default = "one")]
    pub max_retries: i32,
}

/// `spec` of a ZooKeeperOpsRequest.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ops.kubedb.com",
    version = "v1alpha1",
    kind = "ZooKeeperOpsRequest",
    plural = "zookeeperopsrequests",
    singular = "zookeeperopsrequest",
    shortname = "zkops",
    category = "ops",
    category = "kubedb",
    category = "appscode",
    namespaced,
    status = "OpsRequestStatus",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Database","type":"string","jsonPath":".spec.databaseRef.name"}"#,
    printcolumn = r#"{"name":"Size","type":"string","jsonPath":".spec.volumeExpansion.node"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.volumeExpansion.mode"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ZooKeeperOpsRequestSpec {
    #[serde(rename = "type")]
    #[schemars(schema_with = "zookeeper_type_schema")]
    pub type_: String,
    pub database_ref: DatabaseRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_expansion: Option<ZooKeeperVolumeExpansion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "duration_schema")]
    pub timeout: Option<String>,
    #[serde(default)]
    pub apply: ApplyPolicy,
    #[serde(default = "one")]
    pub max_retries: i32,
}

/// `status.phase` of an ops request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OpsRequestPhase {
    Pending,
    Progressing,
    Successful,
    WaitingForApproval,
    Failed,
    Approved,
    Denied,
    Skipped,
}

impl OpsRequestPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Progressing => "Progressing",
            Self::Successful => "Successful",
            Self::WaitingForApproval => "WaitingForApproval",
            Self::Failed => "Failed",
            Self::Approved => "Approved",
            Self::Denied => "Denied",
            Self::Skipped => "Skipped",
        }
    }

    /// Parses a phase as it appears in `status.phase`.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Progressing,
            Self::Successful,
            Self::WaitingForApproval,
            Self::Failed,
            Self::Approved,
            Self::Denied,
            Self::Skipped,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }

    /// A request in this phase will never act again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Successful | Self::Failed | Self::Denied | Self::Skipped
        )
    }
}

/// A backup paused while the request runs (KubeDB's TypedObjectReference).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PausedBackup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `status` of an ops request (KubeDB's OpsRequestStatus).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpsRequestStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<OpsRequestPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paused_backups: Vec<PausedBackup>,
}
