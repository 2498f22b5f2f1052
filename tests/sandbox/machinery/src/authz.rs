//! The authorizer interface of the sandbox API server: what kube-apiserver's
//! `authorizer.Attributes` carries, and a decision. The request path asks it before every verb;
//! admission's CEL `authorizer` variable asks it too. Also kube's Forbidden texts for a refusal.

use crate::admission::UserInfo;
use crate::error::{ApiError, go_quote};

/// `authorizer.Attributes`: who wants to do what (a resource request, or a non-resource URL).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthzRequest {
    pub user: UserInfo,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`,
    /// `impersonate`, `bind`, `escalate`, ... (non-resource: the lower-cased HTTP method verb).
    pub verb: String,
    /// True for `/api/...` and `/apis/...` resource paths.
    pub resource_request: bool,
    /// "" is the core group.
    pub api_group: String,
    pub api_version: String,
    /// Plural, e.g. `persistentvolumeclaims`.
    pub resource: String,
    /// "" or e.g. `status`.
    pub subresource: String,
    /// "" for cluster-scoped requests.
    pub namespace: String,
    /// "" for list/watch/create of a collection.
    pub name: String,
    /// The URL path of a non-resource request (`/healthz`, `/version`).
    pub path: String,
}

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Denied, with the reason kube appends to its Forbidden message ("" for none).
    Deny(String),
    /// No rule allows it (RBAC's answer when nothing matches), with the reason.
    NoOpinion(String),
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// Decides whether a request may proceed.
pub trait Authorizer: Send + Sync {
    fn authorize(&self, request: &AuthzRequest) -> Decision;

    /// The decision with the reason an access review reports (for an allow, e.g. RBAC's
    /// `RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to User "alice"`).
    fn authorize_with_reason(&self, request: &AuthzRequest) -> (Decision, String) {
        let decision = self.authorize(request);
        let reason = match &decision {
            Decision::Allow => String::new(),
            Decision::Deny(r) | Decision::NoOpinion(r) => r.clone(),
        };
        (decision, reason)
    }
}

/// kube's `forbiddenMessage`: `User "alice" cannot get resource "pods/log" in API group "" in
/// the namespace "demo"`, `... at the cluster scope`, or `User "x" cannot get path "/foo"`.
pub fn forbidden_message(a: &AuthzRequest) -> String {
    let user = go_quote(&a.user.username);
    if !a.resource_request {
        return format!("User {user} cannot {} path {}", a.verb, go_quote(&a.path));
    }
    let mut resource = a.resource.clone();
    if !a.subresource.is_empty() {
        resource = format!("{resource}/{}", a.subresource);
    }
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace {}", go_quote(&a.namespace))
    };
    format!(
        "User {user} cannot {} resource {} in API group {} {scope}",
        a.verb,
        go_quote(&resource),
        go_quote(&a.api_group)
    )
}

/// kube's `ForbiddenStatusError`: 403 for the resource (without subresource) and name of the
/// request, the reason appended after `: ` when there is one.
pub fn forbidden(a: &AuthzRequest, reason: &str) -> ApiError {
    let mut msg = forbidden_message(a);
    if !reason.is_empty() {
        msg = format!("{msg}: {reason}");
    }
    let group_resource = match (a.resource.as_str(), a.api_group.as_str()) {
        ("", _) => String::new(),
        (r, "") => r.to_owned(),
        (r, g) => format!("{r}.{g}"),
    };
    ApiError::forbidden(&group_resource, &a.name, &msg)
}

/// Allows everything (the sandbox before RBAC, and unit tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _: &AuthzRequest) -> Decision {
        Decision::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alice() -> UserInfo {
        UserInfo {
            username: "alice".into(),
            groups: vec!["tenants".into(), "system:authenticated".into()],
            ..Default::default()
        }
    }

    fn resource(verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> AuthzRequest {
        AuthzRequest {
            user: alice(),
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            api_version: "v1".into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            path: String::new(),
        }
    }

    #[test]
    fn forbidden_bodies_like_kube_apiserver() {
        let e = forbidden(&resource("get", "", "pods", "", "demo", "x"), "");
        assert_eq!(
            e.message,
            r#"pods "x" is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace "demo""#
        );
        assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
        assert_eq!(e.details, Some(json!({"name": "x", "kind": "pods"})));

        let e = forbidden(&resource("get", "", "pods", "log", "demo", "x"), "");
        assert!(
            e.message
                .ends_with(r#"cannot get resource "pods/log" in API group "" in the namespace "demo""#)
        );
        assert_eq!(e.details, Some(json!({"name": "x", "kind": "pods"})));

        let e = forbidden(
            &resource("list", "storage.k8s.io", "storageclasses", "", "", ""),
            "",
        );
        assert_eq!(
            e.message,
            r#"storageclasses.storage.k8s.io is forbidden: User "alice" cannot list resource "storageclasses" in API group "storage.k8s.io" at the cluster scope"#
        );
        assert_eq!(
            e.details,
            Some(json!({"group": "storage.k8s.io", "kind": "storageclasses"}))
        );

        let e = forbidden(
            &resource("get", "rbac.authorization.k8s.io", "roles", "", "demo", "r"),
            r#"RBAC: role.rbac.authorization.k8s.io "gone" not found"#,
        );
        assert!(
            e.message.ends_with(
                r#"in the namespace "demo": RBAC: role.rbac.authorization.k8s.io "gone" not found"#
            )
        );

        let path = AuthzRequest {
            user: alice(),
            verb: "get".into(),
            path: "/foo".into(),
            ..Default::default()
        };
        let e = forbidden(&path, "");
        assert_eq!(e.message, r#"forbidden: User "alice" cannot get path "/foo""#);
        assert_eq!(e.details, Some(json!({})));
    }
}
