//! The CustomResourceDefinitions volops serves, as `volops-crdgen` writes them.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceValidation, JSONSchemaProps,
};
use kube::CustomResourceExt;
use serde_json::{Value, json};

use crate::api::{Redis, RedisOpsRequest, VolumeExpansionPolicy, ZooKeeper, ZooKeeperOpsRequest};

/// Errors building the CRDs (only a bug in the schemas below can cause one).
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("schema of {crd} is not a valid JSONSchemaProps: {source}")]
    Schema { crd: String, source: serde_json::Error },
    #[error("cannot write {crd} as YAML: {source}")]
    Yaml { crd: String, source: serde_yaml::Error },
}

fn int_or_string() -> Value {
    json!({"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": true})
}

/// The subset of KubeDB's `PersistentVolumeClaimSpec` schema volops relies on; the rest is kept.
fn storage_schema() -> Value {
    json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "storageClassName": {"type": "string"},
            "accessModes": {"type": "array", "items": {"type": "string"}},
            "resources": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {
                    "requests": {"type": "object", "additionalProperties": int_or_string()},
                    "limits": {"type": "object", "additionalProperties": int_or_string()}
                }
            }
        }
    })
}

fn status_schema() -> Value {
    json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "phase": {"type": "string"},
            "observedGeneration": {"type": "integer", "format": "int64"},
            "conditions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "required": ["type", "status"],
                    "properties": {
                        "type": {"type": "string"},
                        "status": {"type": "string"},
                        "reason": {"type": "string"},
                        "message": {"type": "string"},
                        "observedGeneration": {"type": "integer", "format": "int64"},
                        "lastTransitionTime": {"type": "string", "format": "date-time"},
                        "severity": {"type": "string"}
                    }
                }
            }
        }
    })
}

fn database_schema(spec_properties: Value) -> Value {
    json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": spec_properties},
            "status": status_schema()
        }
    })
}

fn with_schema(
    mut crd: CustomResourceDefinition,
    schema: Value,
) -> Result<CustomResourceDefinition, CrdError> {
    let name = crd.metadata.name.clone().unwrap_or_default();
    let props: JSONSchemaProps = serde_json::from_value(schema).map_err(|source| CrdError::Schema {
        crd: name.clone(),
        source,
    })?;
    for version in &mut crd.spec.versions {
        version.schema = Some(CustomResourceValidation {
            open_api_v3_schema: Some(props.clone()),
        });
    }
    Ok(crd)
}

/// Every CRD volops serves, in a stable order.
pub fn all() -> Result<Vec<CustomResourceDefinition>, CrdError> {
    let replicas = json!({"type": "integer", "format": "int32"});
    let redis = with_schema(
        Redis::crd(),
        database_schema(json!({
            "version": {"type": "string"},
            "mode": {"type": "string", "enum": ["Standalone", "Cluster", "Sentinel"]},
            "replicas": replicas,
            "cluster": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"shards": replicas, "replicas": replicas}
            },
            "storageType": {"type": "string", "enum": ["Durable", "Ephemeral"]},
            "storage": storage_schema()
        })),
    )?;
    let zookeeper = with_schema(
        ZooKeeper::crd(),
        database_schema(json!({
            "version": {"type": "string"},
            "replicas": replicas,
            "storage": storage_schema()
        })),
    )?;
    Ok(vec![
        redis,
        zookeeper,
        RedisOpsRequest::crd(),
        ZooKeeperOpsRequest::crd(),
        VolumeExpansionPolicy::crd(),
    ])
}

/// A CRD as the YAML document committed under `charts/volops/crds/`.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, CrdError> {
    let name = crd.metadata.name.clone().unwrap_or_default();
    let body = serde_yaml::to_string(crd).map_err(|source| CrdError::Yaml { crd: name, source })?;
    Ok(format!("# Generated by volops-crdgen; do not edit.\n{body}"))
}

/// The file name a CRD is written to.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}
