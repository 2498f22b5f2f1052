//! The parts of KubeDB's `Redis` (kubedb.com/v1) and `ZooKeeper` (kubedb.com/v1alpha2) that
//! volops reads and writes. Every other field is kept in `other` maps so a read-modify-write
//! never drops what KubeDB (or a newer KubeDB) put there; the CRDs preserve unknown fields.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
use kube::CustomResource;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::condition::Condition;

/// `spec` of a Redis (kubedb.com/v1).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "kubedb.com",
    version = "v1",
    kind = "Redis",
    plural = "redises",
    singular = "redis",
    shortname = "rd",
    category = "datastore",
    category = "kubedb",
    category = "appscode",
    category = "all",
    namespaced,
    status = "DatabaseStatus",
    schema = "disabled",
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.version"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RedisSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `Standalone` (default), `Cluster` or `Sentinel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<RedisClusterSpec>,
    /// `Durable` (default) or `Ephemeral`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<PersistentVolumeClaimSpec>,
    /// Every field volops does not use, kept as it came.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `spec.cluster` of a Redis in Cluster mode (v1: `replicas` counts the primary).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedisClusterSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `spec` of a ZooKeeper (kubedb.com/v1alpha2). ZooKeeper has no `storageType`.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "kubedb.com",
    version = "v1alpha2",
    kind = "ZooKeeper",
    plural = "zookeepers",
    singular = "zookeeper",
    shortname = "zk",
    category = "datastore",
    category = "kubedb",
    category = "appscode",
    category = "all",
    namespaced,
    status = "DatabaseStatus",
    schema = "disabled",
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.version"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ZooKeeperSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<PersistentVolumeClaimSpec>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `status` of a KubeDB database.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseStatus {
    /// `Provisioning`, `DataRestoring`, `Ready`, `Critical`, `NotReady`, `Halted`, `Unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}
