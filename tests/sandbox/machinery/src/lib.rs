//! Pure API machinery of the volops sandbox API server: kube-apiserver compatible errors,
//! CRD structural schemas, patches (JSON, merge, strategic merge, server-side apply),
//! admission (built-in plugins volops must cope with, HTTPS admission webhooks with CEL
//! `matchConditions` and reinvocation, and webhook configurations validated on write), and
//! authorization (request attributes, the RBAC authorizer, escalation checks).
//!
//! Nothing here knows about HTTP serving or storage; the `volops-sandbox` package calls it.
//!
//! Left out on purpose (volops does not meet them): CEL in CRDs (`x-kubernetes-validations`),
//! CEL timestamps/durations, optional values and kube's CEL extension libraries other than
//! strings and the authorizer (see `cel`), `allOf`/`anyOf`/`oneOf`/`not` in CRD schemas,
//! list-type uniqueness, request conversion under `matchPolicy: Equivalent` (one version is
//! served per resource), quota scopes, and the object diff kube appends to the PVC
//! "spec is immutable" message.

pub mod admission;
pub mod authz;
pub mod cel;
mod error;
pub mod fieldset;
pub mod objectmeta;
pub mod patch;
pub mod quantity;
pub mod rbac;
pub mod requestinfo;
pub mod schema;
mod smp;
mod ssa;

pub use admission::builtin::{quota_usage, quota_used, validate};
pub use admission::webhook::Dispatcher;
pub use admission::{AdmissionAttributes, ObjectLookup, Operation, UserInfo};
pub use authz::{AllowAll, Authorizer, AuthzRequest, Decision, forbidden, forbidden_message};
pub use error::{ApiError, FieldCause};
pub use objectmeta::validate_labels_and_annotations;
pub use patch::{
    apply_json_patch, apply_merge_patch, apply_strategic_merge_patch, record_update_manager,
    server_side_apply,
};
pub use quantity::Quantity;
pub use schema::apply_structural_schema;
