//! Thin adapter over the pure API machinery (package volops-sandbox-machinery).

use serde_json::Value;

pub use volops_sandbox_machinery::admission::webhook::Dispatcher;
pub use volops_sandbox_machinery::{
    AdmissionAttributes, ApiError, Authorizer, AuthzRequest, Decision, FieldCause, ObjectLookup, Operation,
    UserInfo, apply_json_patch, apply_merge_patch, apply_strategic_merge_patch, forbidden,
    record_update_manager, server_side_apply, validate_labels_and_annotations,
};

use crate::store::Store;

/// A one-cause 422 Invalid.
pub fn invalid_simple(kind: &str, group: &str, name: &str, field: &str, msg: &str) -> ApiError {
    let cause = FieldCause {
        reason: "FieldValueInvalid".into(),
        message: msg.into(),
        field: field.into(),
    };
    ApiError::invalid(kind, group, name, vec![cause])
}

/// Applies a CRD version's structural schema; a failure is kube's 422 Invalid.
pub fn apply_schema(
    schema: &Value,
    obj: &mut Value,
    kind: &str,
    group: &str,
    name: &str,
) -> Result<(), ApiError> {
    volops_sandbox_machinery::apply_structural_schema(schema, obj)
        .map_err(|causes| ApiError::invalid(kind, group, name, causes))
}

impl ObjectLookup for Store {
    fn get(&self, group: &str, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        Store::get(
            self,
            &(group.into(), resource.into()),
            namespace.unwrap_or(""),
            name,
        )
        .map(|v| (*v).clone())
    }

    fn list(&self, group: &str, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        Store::list(self, &(group.into(), resource.into()), namespace, None)
            .0
            .into_iter()
            .map(|v| (*v).clone())
            .collect()
    }
}
