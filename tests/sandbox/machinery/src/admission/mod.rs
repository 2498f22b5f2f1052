//! Admission: the request attributes, read access to stored objects, kube's built-in
//! admission rules volops must cope with, and calls to admission webhooks.

use serde::Serialize;
use serde_json::Value;

pub mod builtin;
mod match_conditions;
mod matching;
mod quota;
pub mod selector;
pub mod webhook;
pub mod webhook_config;

pub use quota::{quota_usage, quota_used};

/// Read access to the store, for admission that looks at other objects.
pub trait ObjectLookup: Send + Sync {
    /// One object; `group` "" is core, `resource` the plural (e.g. "storageclasses").
    fn get(&self, group: &str, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value>;
    /// All objects of a resource (in one namespace, or cluster-wide when None).
    fn list(&self, group: &str, resource: &str, namespace: Option<&str>) -> Vec<Value>;
}

/// The admission operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    /// The wire form (`CREATE`, ...), as in AdmissionReview and webhook rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
        }
    }
}

/// `authentication.k8s.io/v1 UserInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UserInfo {
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// Everything admission needs to know about one request.
#[derive(Debug, Clone)]
pub struct AdmissionAttributes {
    pub operation: Operation,
    pub group: String,
    pub version: String,
    pub kind: String,
    /// Plural resource name, e.g. `persistentvolumeclaims`.
    pub resource: String,
    /// "" or e.g. `status`.
    pub subresource: String,
    pub name: String,
    pub namespace: Option<String>,
    /// The new object (None on DELETE).
    pub object: Option<Value>,
    /// The stored object (None on CREATE).
    pub old_object: Option<Value>,
    pub dry_run: bool,
    pub user: UserInfo,
    /// CreateOptions / UpdateOptions / DeleteOptions.
    pub options: Option<Value>,
}

impl AdmissionAttributes {
    /// `resource.group` as kube prints it in errors (`persistentvolumeclaims`, `statefulsets.apps`).
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}
