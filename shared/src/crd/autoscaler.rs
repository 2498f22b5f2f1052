//! The schemas of KubeDB's storage autoscalers as volops serves them: KubeDB's fields with
//! KubeDB's types, enums and defaults, every object keeping the fields volops does not type
//! (`compute`, KubeDB's compute status), and volops's own status fields (docs/KUBEDB.md).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Value, json};

use super::{CrdError, with_schema};
use crate::api::{RedisAutoscaler, ZooKeeperAutoscaler};

/// KubeDB's quantity pattern (signed, as apimachinery's).
const QUANTITY_PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

fn int32() -> Value {
    json!({"type": "integer", "format": "int32"})
}

fn kept_object(properties: Value) -> Value {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": properties})
}

/// One `StorageAutoscalerSpec`.
fn storage_section() -> Value {
    let mut section = kept_object(json!({
        "trigger": {"type": "string"},
        "usageThreshold": int32(),
        "scalingThreshold": int32(),
        "scalingRules": {
            "type": "array",
            "items": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "required": ["appliesUpto", "threshold"],
                "properties": {"appliesUpto": {"type": "string"}, "threshold": {"type": "string"}}
            }
        },
        "upperBound": {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": true
        },
        "expansionMode": {"type": "string", "enum": ["Offline", "Online"]}
    }));
    section["required"] = json!(["expansionMode"]);
    section
}

fn spec_schema(storage_keys: &[&str]) -> Value {
    let storage: serde_json::Map<String, Value> = storage_keys
        .iter()
        .map(|k| ((*k).to_owned(), storage_section()))
        .collect();
    let mut database_ref = kept_object(json!({"name": {"type": "string", "default": ""}}));
    database_ref["x-kubernetes-map-type"] = json!("atomic");
    let mut spec = kept_object(json!({
        "databaseRef": database_ref,
        "opsRequestOptions": kept_object(json!({
            "timeout": {"type": "string"},
            "apply": {"type": "string", "enum": ["IfReady", "Always"], "default": "IfReady"},
            "maxRetries": {"type": "integer", "format": "int32", "default": 1}
        })),
        "storage": kept_object(Value::Object(storage)),
        "compute": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    }));
    spec["required"] = json!(["databaseRef"]);
    spec
}

fn status_schema() -> Value {
    let text = json!({"type": "string"});
    kept_object(json!({
        "phase": {"type": "string", "enum": ["InProgress", "Current", "Terminating", "Failed"]},
        "observedGeneration": {"type": "integer", "format": "int64"},
        "conditions": {
            "type": "array",
            "items": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "required": ["lastTransitionTime", "status", "type"],
                "properties": {
                    "type": text, "status": text, "reason": text, "message": text, "severity": text,
                    "observedGeneration": {"type": "integer", "format": "int64"},
                    "lastTransitionTime": {"type": "string", "format": "date-time"}
                }
            }
        },
        "lastRecommendation": kept_object(json!({
            "time": {"type": "string", "format": "date-time"},
            "usagePercent": int32(),
            "from": text, "target": text, "clampedBy": text, "message": text
        })),
        "lastRequest": kept_object(json!({
            "name": text, "phase": text,
            "created": {"type": "string", "format": "date-time"},
            "finished": {"type": "string", "format": "date-time"},
            "consecutiveFailures": int32()
        }))
    }))
}

fn schema(storage_keys: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema(storage_keys),
            "status": status_schema()
        }
    })
}

/// `redisautoscalers.autoscaling.kubedb.com`.
pub(super) fn redis() -> Result<CustomResourceDefinition, CrdError> {
    with_schema(
        RedisAutoscaler::crd(),
        schema(crate::api::autoscaler::storage_keys(crate::DatabaseKind::Redis)),
    )
}

/// `zookeeperautoscalers.autoscaling.kubedb.com`, with the `spec.storage.zookeeper` KubeDB
/// served until 2026-05.
pub(super) fn zookeeper() -> Result<CustomResourceDefinition, CrdError> {
    with_schema(
        ZooKeeperAutoscaler::crd(),
        schema(crate::api::autoscaler::storage_keys(
            crate::DatabaseKind::ZooKeeper,
        )),
    )
}
