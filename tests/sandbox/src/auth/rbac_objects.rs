//! What the API server and controller manager do with RBAC objects besides authorizing: the
//! bootstrap policy at start, defaulting/escalation checks/validation on every write, and the
//! clusterrole-aggregation controller (run right after a ClusterRole write, so the next request
//! already sees an extended `edit`).

use serde_json::{Value, json};
use volops_sandbox_machinery::rbac::{self, GROUP, PolicyRule, RbacKind};

use crate::api::Api;
use crate::machinery::{ApiError, UserInfo};
use crate::meta;
use crate::route::Target;
use crate::store::{Store, WriteAction};

/// The RBAC kind a target addresses, if any.
fn rbac_kind(t: &Target) -> Option<RbacKind> {
    (t.info.group == GROUP)
        .then(|| RbacKind::from_plural(&t.info.plural))
        .flatten()
}

/// Creates the bootstrap ClusterRoles and ClusterRoleBindings that are missing (kube's
/// bootstrap-roles post-start hook), then aggregates.
pub fn seed(store: &Store) {
    let objects = rbac::bootstrap::cluster_roles()
        .into_iter()
        .map(|o| ("clusterroles", o))
        .chain(
            rbac::bootstrap::cluster_role_bindings()
                .into_iter()
                .map(|o| ("clusterrolebindings", o)),
        );
    for (plural, mut obj) in objects {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
        obj["metadata"]["creationTimestamp"] = json!(meta::now());
        let _ = store.write(&(GROUP.to_owned(), plural.to_owned()), "", &name, |old, _| {
            if old.is_some() {
                return Err(ApiError::already_exists(plural, &name));
            }
            Ok(WriteAction::Put(obj))
        });
    }
    aggregate(store);
}

/// The clusterrole-aggregation controller: writes the rules of every aggregated ClusterRole
/// that are out of date.
pub fn aggregate(store: &Store) {
    let key = (GROUP.to_owned(), "clusterroles".to_owned());
    let (roles, _) = store.list(&key, None, None);
    let refs: Vec<&Value> = roles.iter().map(|r| &**r).collect();
    for (name, rules) in rbac::aggregate(&refs) {
        let rules = Value::Array(rules.iter().map(PolicyRule::to_json).collect());
        let _ = store.write(&key, "", &name, |cur, _| {
            let Some(cur) = cur else {
                return Err(ApiError::not_found(
                    "clusterroles.rbac.authorization.k8s.io",
                    &name,
                ));
            };
            let mut obj = (**cur).clone();
            obj["rules"] = rules;
            Ok(WriteAction::Put(obj))
        });
    }
}

/// Runs after a successful verb: a ClusterRole change may change aggregated roles.
pub fn after_write(api: &Api, t: &Target, verb: &str) {
    let mutating = matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    );
    if mutating && rbac_kind(t) == Some(RbacKind::ClusterRole) {
        aggregate(&api.store);
    }
}

/// kube's handling of an RBAC object on create (`old` None) or update, before admission: v1
/// defaults, escalation prevention (403), then validation (422). Other resources pass.
pub fn check_write(
    api: &Api,
    t: &Target,
    user: &UserInfo,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let Some(kind) = rbac_kind(t) else {
        return Ok(());
    };
    rbac::default_object(kind, obj);
    let index = api.auth.rbac.index();
    rbac::check_write(&index, user, kind, t.ns_str(), obj, old)?;
    let causes = rbac::validate(kind, obj, old);
    if causes.is_empty() {
        return Ok(());
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    Err(ApiError::invalid(kind.kind(), GROUP, name, causes))
}
