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

/// The schema stays KubeDB's (docs/KUBEDB.md, "Installing beside KubeDB"): the defaults of
/// `timeout` and `mode` are volops's, filled when a request is read (shared/src/defaults.rs),
/// not by the API server: `spec.timeout` is every ops type's, and KubeDB's other operations
/// must not get volops's timeout; KubeDB requires `mode`.
fn no_default(schema: &mut schemars::Schema) {
    schema.remove("default");
}

/// See [`no_default`]: `mode` required, as in KubeDB's schema.
fn mode_required(schema: &mut schemars::Schema) {
    if let Some(mode) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut("mode"))
        .and_then(|m| m.as_object_mut())
    {
        mode.remove("default");
    }
    schema.insert("required".into(), serde_json::json!(["mode"]));
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

    /// Reads a mode as written in `spec.volumeExpansion.mode`.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Online, Self::Offline]
            .into_iter()
            .find(|m| m.as_str() == s)
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

/// `spec.volumeExpansion` of a RedisOpsRequest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = mode_required)]
pub struct RedisVolumeExpansion {
    #[serde(default)]
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
#[schemars(transform = mode_required)]
pub struct ZooKeeperVolumeExpansion {
    #[serde(default)]
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
    // Defaults to 10m (shared/src/defaults.rs): every step is bounded.
    #[serde(default = "crate::defaults::timeout", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "duration_schema", transform = no_default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub apply: ApplyPolicy,
    #[serde(default = "crate::defaults::max_retries")]
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
    // Defaults to 10m (shared/src/defaults.rs): every step is bounded.
    #[serde(default = "crate::defaults::timeout", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "duration_schema", transform = no_default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub apply: ApplyPolicy,
    #[serde(default = "crate::defaults::max_retries")]
    pub max_retries: i32,
}

/// `status.phase` of an ops request: KubeDB's phases, plus `Unknown` for any other text, so that
/// a phase a later KubeDB adds never makes a request unreadable.
///
/// The one definition of where a request stands (docs/ARCHITECTURE.md, "Phases"): Successful,
/// Failed, Denied and Skipped are final; every other phase, an unknown one and none at all are
/// active: the request may still act, so the requests of its database queue behind it. The
/// controller writes only phases of requests it claimed; one whose phase another controller wrote
/// it leaves alone (controller/src/claim.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpsRequestPhase {
    Pending,
    Progressing,
    Successful,
    WaitingForApproval,
    Failed,
    Approved,
    Denied,
    Skipped,
    /// A phase volops does not know; read as active (see above). Not part of the schema.
    #[serde(other)]
    Unknown,
}

/// KubeDB's schema: the known phases only (`Unknown` is how volops reads any other).
impl JsonSchema for OpsRequestPhase {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OpsRequestPhase".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Self::KNOWN.iter().map(|p| p.as_str()).collect();
        schemars::json_schema!({
            "description": "`status.phase` of an ops request.",
            "type": "string",
            "enum": names
        })
    }
}

impl OpsRequestPhase {
    const KNOWN: [Self; 8] = [
        Self::Pending,
        Self::Progressing,
        Self::Successful,
        Self::WaitingForApproval,
        Self::Failed,
        Self::Approved,
        Self::Denied,
        Self::Skipped,
    ];

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
            Self::Unknown => "Unknown",
        }
    }

    /// Reads a phase as it appears in `status.phase` (the same as serde does): an empty text is
    /// no phase yet, any other text KubeDB does not define is [`OpsRequestPhase::Unknown`].
    pub fn parse(s: &str) -> Option<Self> {
        if s.is_empty() {
            return None;
        }
        Some(
            Self::KNOWN
                .into_iter()
                .find(|p| p.as_str() == s)
                .unwrap_or(Self::Unknown),
        )
    }

    /// A request in this phase will never act again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Successful | Self::Failed | Self::Denied | Self::Skipped
        )
    }

    /// Whether a request with this phase (`None`: none written yet) may still act.
    pub fn is_active(phase: Option<Self>) -> bool {
        !phase.is_some_and(Self::is_final)
    }

    /// Whether a request with this phase (`None`: none written yet) has not started: KubeDB
    /// checks sizes only then, and the queue orders such requests.
    pub fn is_pending(phase: Option<Self>) -> bool {
        matches!(phase, None | Some(Self::Pending))
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
