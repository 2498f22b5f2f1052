//! `VolumeExpansionPolicy` (volops.dev/v1alpha1, cluster-scoped): limits a platform team sets
//! on volume expansion in the namespaces it selects.

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

fn max_increase_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "description": "Largest growth allowed in one request: a quantity (10Gi) or a percent of the current size (50%).",
        "pattern": "^([0-9]+%|[+]?[0-9.]+([eEinumkKMGTP]*[-+]?[0-9]*))$"
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
    pub namespace_selector: Option<LabelSelector>,
    /// Largest size a volume may be grown to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
}
