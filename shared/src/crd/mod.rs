//! The CustomResourceDefinitions volops serves, as `volops-crdgen` writes them.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceValidation, JSONSchemaProps,
};
use kube::CustomResourceExt;
use serde_json::{Value, json};

use crate::api::{Redis, RedisOpsRequest, VolumeExpansionPolicy, ZooKeeper, ZooKeeperOpsRequest};

mod autoscaler;

/// Errors building the CRDs (only a bug in the schemas below can cause one).
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("schema of {crd} is not a valid JSONSchemaProps: {source}")]
    Schema { crd: String, source: serde_json::Error },
    #[error("cannot write {crd} as YAML: {source}")]
    Yaml { crd: String, source: serde_yaml::Error },
    #[error("{crd} contains template delimiters and cannot be a chart template")]
    Template { crd: String },
}

pub(crate) fn int_or_string() -> Value {
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

pub(crate) fn status_schema() -> Value {
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

pub(crate) fn with_schema(
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

/// Every CRD volops serves, in a stable order: KubeDB's kinds ([`kubedb`]) then volops's own
/// ([`own`]).
pub fn all() -> Result<Vec<CustomResourceDefinition>, CrdError> {
    let mut crds = kubedb()?;
    crds.extend(own());
    Ok(crds)
}

/// volops's own CRDs: what the chart's `crds/` installs (docs/KUBEDB.md).
pub fn own() -> Vec<CustomResourceDefinition> {
    vec![VolumeExpansionPolicy::crd()]
}

/// A version of a KubeDB kind: its name, and whether it is the storage version.
struct KubeDbVersion {
    name: &'static str,
    storage: bool,
}

/// Redis is served as `kubedb.com/v1` (stored) and `v1alpha2`, as KubeDB's own CRD does.
const REDIS_VERSIONS: &[KubeDbVersion] = &[
    KubeDbVersion {
        name: "v1",
        storage: true,
    },
    KubeDbVersion {
        name: "v1alpha2",
        storage: false,
    },
];

/// KubeDB's kinds as volops knows them, a superset of KubeDB's own CRDs (docs/KUBEDB.md):
/// every version KubeDB serves with its storage version, KubeDB's names, and every object
/// volops types keeps the fields it does not model. No conversion webhook, as KubeDB's CRDs
/// declare none: the apiserver only rewrites `apiVersion` between versions.
/// The chart renders these only with `kubedbCRDs.install=true`.
pub fn kubedb() -> Result<Vec<CustomResourceDefinition>, CrdError> {
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
    let redis = with_versions(redis, REDIS_VERSIONS);
    let zookeeper = with_schema(
        ZooKeeper::crd(),
        database_schema(json!({
            "version": {"type": "string"},
            "replicas": replicas,
            "storage": storage_schema()
        })),
    )?;
    let crds = vec![
        redis,
        zookeeper,
        keep_unknown_fields(RedisOpsRequest::crd())?,
        keep_unknown_fields(ZooKeeperOpsRequest::crd())?,
        autoscaler::redis()?,
        autoscaler::zookeeper()?,
    ];
    Ok(crds.into_iter().map(with_list_kind).collect())
}

/// Serves the CRD's (single) version under every name of `versions`.
fn with_versions(mut crd: CustomResourceDefinition, versions: &[KubeDbVersion]) -> CustomResourceDefinition {
    if let Some(template) = crd.spec.versions.first().cloned() {
        crd.spec.versions = versions
            .iter()
            .map(|v| {
                let mut version = template.clone();
                version.name = v.name.to_owned();
                version.served = true;
                version.storage = v.storage;
                version
            })
            .collect();
    }
    crd
}

/// KubeDB names its list kinds `<Kind>List`; the apiserver defaults the same, said explicitly.
fn with_list_kind(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    if crd.spec.names.list_kind.is_none() {
        crd.spec.names.list_kind = Some(format!("{}List", crd.spec.names.kind));
    }
    crd
}

/// The derived schema with every object keeping the fields volops does not model
/// (`verticalScaling`, `tls`, ...), and `databaseRef.name` optional, as in KubeDB's schema.
fn keep_unknown_fields(mut crd: CustomResourceDefinition) -> Result<CustomResourceDefinition, CrdError> {
    let name = crd.metadata.name.clone().unwrap_or_default();
    for version in &mut crd.spec.versions {
        let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        let mut value = serde_json::to_value(&*schema).map_err(|source| CrdError::Schema {
            crd: name.clone(),
            source,
        })?;
        preserve_objects(&mut value, true);
        if let Some(map) = value
            .pointer_mut("/properties/spec/properties/databaseRef")
            .and_then(Value::as_object_mut)
        {
            map.remove("required");
        }
        *schema = serde_json::from_value(value).map_err(|source| CrdError::Schema {
            crd: name.clone(),
            source,
        })?;
    }
    Ok(crd)
}

/// Marks every typed object below the root as keeping unknown fields (the root has only
/// apiVersion/kind/metadata/spec/status, as KubeDB's).
fn preserve_objects(schema: &mut Value, root: bool) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    if !root && map.contains_key("properties") {
        map.insert("x-kubernetes-preserve-unknown-fields".into(), Value::Bool(true));
    }
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        for prop in props.values_mut() {
            preserve_objects(prop, false);
        }
    }
    if let Some(items) = map.get_mut("items") {
        preserve_objects(items, false);
    }
}

/// A CRD as the YAML document committed under `charts/volops/crds/`.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, CrdError> {
    let name = crd.metadata.name.clone().unwrap_or_default();
    let body = serde_yaml::to_string(crd).map_err(|source| CrdError::Yaml { crd: name, source })?;
    Ok(format!("# Generated by volops-crdgen; do not edit.\n{body}"))
}

/// Where the chart renders [`kubedb`] from, relative to the chart.
pub const KUBEDB_TEMPLATE: &str = "templates/kubedb-crds.yaml";

/// The chart template of KubeDB's kinds: rendered only with `kubedbCRDs.install=true`, and kept
/// by `helm uninstall` (`helm.sh/resource-policy: keep`) so that KubeDB's objects survive it.
pub fn kubedb_template() -> Result<String, CrdError> {
    let mut out = String::from(
        "{{- /* Generated by volops-crdgen; do not edit. KubeDB's kinds, docs/KUBEDB.md. */}}\n\
         {{- if .Values.kubedbCRDs.install }}\n",
    );
    for mut crd in kubedb()? {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crd.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert("helm.sh/resource-policy".into(), "keep".into());
        let body = serde_yaml::to_string(&crd).map_err(|source| CrdError::Yaml {
            crd: name.clone(),
            source,
        })?;
        if body.contains("{{") || body.contains("}}") {
            return Err(CrdError::Template { crd: name });
        }
        out.push_str("---\n");
        out.push_str(&body);
    }
    out.push_str("{{- end }}\n");
    Ok(out)
}

/// The file name a CRD is written to.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}
