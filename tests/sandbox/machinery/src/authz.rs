//! The authorizer interface of the sandbox API server: what kube-apiserver's
//! `authorizer.Attributes` carries, and a decision. The request path asks it before every verb;
//! admission's CEL `authorizer` variable asks it too.

use crate::admission::UserInfo;

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
}

/// Allows everything (the sandbox before RBAC, and unit tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _: &AuthzRequest) -> Decision {
        Decision::Allow
    }
}
