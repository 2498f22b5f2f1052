//! kube-apiserver's RBAC authorizer over Role, ClusterRole, RoleBinding and ClusterRoleBinding
//! (`rbac.authorization.k8s.io/v1`): rule matching, the binding index, escalation prevention on
//! RBAC writes, ClusterRole aggregation, the objects' validation and the bootstrap policy.

mod aggregation;
pub mod bootstrap;
mod escalation;
mod index;
mod rules;
mod validation;

pub use aggregation::aggregate;
pub use escalation::{check_write, confirm_no_escalation};
pub use index::{MASTERS, RbacIndex, RbacObjects};
pub use rules::{PolicyRule, covers, rules_from_json};
pub use validation::{GROUP, default_object, validate};

/// The four RBAC resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RbacKind {
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
}

impl RbacKind {
    /// The kind served as `plural` in the RBAC group, if it is one.
    pub fn from_plural(plural: &str) -> Option<Self> {
        Some(match plural {
            "roles" => RbacKind::Role,
            "clusterroles" => RbacKind::ClusterRole,
            "rolebindings" => RbacKind::RoleBinding,
            "clusterrolebindings" => RbacKind::ClusterRoleBinding,
            _ => return None,
        })
    }

    pub fn plural(self) -> &'static str {
        match self {
            RbacKind::Role => "roles",
            RbacKind::ClusterRole => "clusterroles",
            RbacKind::RoleBinding => "rolebindings",
            RbacKind::ClusterRoleBinding => "clusterrolebindings",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            RbacKind::Role => "Role",
            RbacKind::ClusterRole => "ClusterRole",
            RbacKind::RoleBinding => "RoleBinding",
            RbacKind::ClusterRoleBinding => "ClusterRoleBinding",
        }
    }

    pub fn is_binding(self) -> bool {
        matches!(self, RbacKind::RoleBinding | RbacKind::ClusterRoleBinding)
    }
}
