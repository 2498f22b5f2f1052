//! `VolumeExpansionPolicy` (volops.dev/v1alpha1, cluster-scoped): limits a platform team sets
//! on volume expansion in the namespaces it selects, and on the autoscaler there (docs/ARCHITECTURE.md).

use k8s_openapi::apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ops::VolumeExpansionMode;

/// What a violated policy does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Enforcement {
    /// Reject the ops request.
    #[default]
    Deny,
    /// Admit it with an admission warning.
    Warn,
}

/// A Kubernetes quantity without a sign (KubeDB's and apimachinery's pattern, positive only).
const QUANTITY: &str = r"(\+)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?";

fn max_size_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "nullable": true,
        "x-kubernetes-int-or-string": true,
        "pattern": format!("^{QUANTITY}$")
    })
}

fn max_increase_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "description": "Largest growth allowed in one request: a quantity (10Gi) or a percent of the current size (50%).",
        "pattern": format!("^([0-9]{{1,9}}%|{QUANTITY})$")
    })
}

fn interval_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "description": "Shortest time between two expansions of one volume, a Go duration such as 6h."
    })
}

/// A list keyed by StorageClass: the API server refuses two entries for one class.
fn class_intervals_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let item = generator.subschema_for::<StorageClassInterval>();
    schemars::json_schema!({
        "description": "The minimum interval of the volumes of each StorageClass listed (provider rate limits).",
        "type": "array",
        "items": item,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["storageClassName"]
    })
}

fn emergency_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "integer",
        "format": "int32",
        "minimum": 1,
        "maximum": 100,
        "description": "Usage percent above which the autoscaler's requests run with apply: Always."
    })
}

/// The minimum interval between expansions of the volumes of one StorageClass.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageClassInterval {
    pub storage_class_name: String,
    #[schemars(schema_with = "interval_schema")]
    pub min_expansion_interval: String,
}

/// `metav1.LabelSelector` with its operators as an enum: a typo such as `exists` is refused
/// when the policy is written instead of selecting nothing.
fn namespace_selector_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Namespaces the policy applies to; absent or empty selects every namespace.",
        "nullable": true,
        "type": "object",
        "properties": {
            "matchLabels": {
                "description": "Labels a namespace must carry, each with the value given.",
                "type": "object",
                "additionalProperties": {"type": "string"}
            },
            "matchExpressions": {
                "description": "Requirements a namespace's labels must meet; all of them (ANDed).",
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": {"type": "string", "description": "The label key the requirement applies to."},
                        "operator": {
                            "type": "string",
                            "enum": crate::selector::OPERATORS,
                            "description": "In and NotIn need values; Exists and DoesNotExist take none."
                        },
                        "values": {"type": "array", "items": {"type": "string"}}
                    }
                }
            }
        }
    })
}

/// `spec` of a VolumeExpansionPolicy. Empty lists mean "no limit".
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "volops.dev",
    version = "v1alpha1",
    kind = "VolumeExpansionPolicy",
    plural = "volumeexpansionpolicies",
    singular = "volumeexpansionpolicy",
    shortname = "vep",
    category = "volops",
    printcolumn = r#"{"name":"Enforcement","type":"string","jsonPath":".spec.enforcement"}"#,
    printcolumn = r#"{"name":"Max Size","type":"string","jsonPath":".spec.maxSize"}"#,
    printcolumn = r#"{"name":"Max Increase","type":"string","jsonPath":".spec.maxIncrease"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeExpansionPolicySpec {
    /// Namespaces the policy applies to; absent or empty selects every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "namespace_selector_schema")]
    pub namespace_selector: Option<LabelSelector>,
    /// Largest size a volume may be grown to (a number is read as bytes, as Kubernetes does).
    #[serde(
        default,
        deserialize_with = "super::quantity_field::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "max_size_schema")]
    pub max_size: Option<Quantity>,
    /// Largest growth in one request, a quantity or a percent of the current size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "max_increase_schema")]
    pub max_increase: Option<String>,
    /// StorageClasses whose volumes may be grown; empty allows all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_storage_classes: Vec<String>,
    /// Expansion modes allowed; empty allows both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_modes: Vec<VolumeExpansionMode>,
    /// `Deny` (default) rejects a violating request; `Warn` admits it with a warning.
    #[serde(default)]
    pub enforcement: Enforcement,
    /// Shortest time between two expansions of one volume by the autoscaler, for every
    /// StorageClass without an entry in `storageClassIntervals`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "interval_schema")]
    pub min_expansion_interval: Option<String>,
    /// The minimum interval per StorageClass (e.g. 6h where the provider allows one change of
    /// a volume every 6 hours).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "class_intervals_schema")]
    pub storage_class_intervals: Vec<StorageClassInterval>,
    /// Usage percent of a volume above which the autoscaler's requests run with
    /// `apply: Always` (a full database is often NotReady).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "emergency_schema")]
    pub emergency_usage_threshold: Option<i32>,
}
