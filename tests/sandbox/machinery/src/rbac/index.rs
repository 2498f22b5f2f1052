//! The RBAC authorizer over an index of bindings by subject, built once from the stored Roles,
//! ClusterRoles, RoleBindings and ClusterRoleBindings (and rebuilt when any of them changes), so
//! a decision costs a few hash lookups and the rules of the user's own bindings.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::rules::{PolicyRule, rules_from_json};
use crate::admission::UserInfo;
use crate::authz::{Authorizer, AuthzRequest, Decision};
use crate::error::go_quote;

/// The group whose members may do anything (kube's privileged-group authorizer, ahead of RBAC).
pub const MASTERS: &str = "system:masters";

/// The RBAC objects an index is built from.
#[derive(Debug, Default, Clone, Copy)]
pub struct RbacObjects<'a> {
    pub roles: &'a [&'a Value],
    pub cluster_roles: &'a [&'a Value],
    pub role_bindings: &'a [&'a Value],
    pub cluster_role_bindings: &'a [&'a Value],
}

/// One binding's rules (or why they cannot be resolved), shared by its subjects.
#[derive(Debug)]
struct BindingRules {
    /// `ClusterRoleBinding "b" of ClusterRole "r"` / `RoleBinding "b/ns" of Role "r"`.
    source: String,
    rules: Result<Arc<Vec<PolicyRule>>, String>,
}

/// A binding as one subject sees it.
#[derive(Debug, Clone)]
struct Grant {
    binding: Arc<BindingRules>,
    /// `User "alice"`, `ServiceAccount "sa/ns"`.
    subject: Arc<str>,
}

/// Bindings of one scope by the user name or group they name.
#[derive(Debug, Default)]
struct Subjects {
    users: HashMap<String, Vec<Grant>>,
    groups: HashMap<String, Vec<Grant>>,
}

impl Subjects {
    /// The grants that apply to `user`, the user's own first.
    fn grants<'a>(&'a self, user: &'a UserInfo) -> impl Iterator<Item = &'a Grant> + 'a {
        let own = self.users.get(&user.username).into_iter().flatten();
        let groups = user.groups.iter().filter_map(|g| self.groups.get(g)).flatten();
        own.chain(groups)
    }
}

/// The RBAC authorizer's view of the cluster.
#[derive(Debug, Default)]
pub struct RbacIndex {
    cluster: Subjects,
    namespaced: HashMap<String, Subjects>,
    roles: HashMap<(String, String), Arc<Vec<PolicyRule>>>,
    cluster_roles: HashMap<String, Arc<Vec<PolicyRule>>>,
}

fn meta<'a>(o: &'a Value, field: &str) -> &'a str {
    o["metadata"][field].as_str().unwrap_or_default()
}

/// `role.rbac.authorization.k8s.io "x" not found`, as kube's listers say.
fn role_not_found(kind: &str, name: &str) -> String {
    format!(
        "{}.rbac.authorization.k8s.io {} not found",
        kind.to_ascii_lowercase(),
        go_quote(name)
    )
}

impl RbacIndex {
    pub fn build(objects: RbacObjects<'_>) -> Self {
        let mut index = RbacIndex::default();
        for r in objects.roles {
            index.roles.insert(
                (meta(r, "namespace").to_owned(), meta(r, "name").to_owned()),
                Arc::new(rules_from_json(&r["rules"])),
            );
        }
        for r in objects.cluster_roles {
            index
                .cluster_roles
                .insert(meta(r, "name").to_owned(), Arc::new(rules_from_json(&r["rules"])));
        }
        for b in objects.cluster_role_bindings {
            let (kind, role) = role_ref(b);
            let rules = match kind {
                "ClusterRole" => index.role_reference_rules(kind, role, ""),
                _ => continue,
            };
            let binding = Arc::new(BindingRules {
                source: format!(
                    "ClusterRoleBinding {} of {kind} {}",
                    go_quote(meta(b, "name")),
                    go_quote(role)
                ),
                rules,
            });
            add_subjects(&mut index.cluster, b, &binding, "");
        }
        for b in objects.role_bindings {
            let ns = meta(b, "namespace");
            let (kind, role) = role_ref(b);
            if !matches!(kind, "Role" | "ClusterRole") {
                continue;
            }
            let binding = Arc::new(BindingRules {
                source: format!(
                    "RoleBinding {} of {kind} {}",
                    go_quote(&format!("{}/{ns}", meta(b, "name"))),
                    go_quote(role)
                ),
                rules: index.role_reference_rules(kind, role, ns),
            });
            let scope = index.namespaced.entry(ns.to_owned()).or_default();
            add_subjects(scope, b, &binding, ns);
        }
        index
    }

    /// kube's `GetRoleReferenceRules`: the rules of a Role in `namespace` or a ClusterRole.
    pub fn role_reference_rules(
        &self,
        kind: &str,
        name: &str,
        namespace: &str,
    ) -> Result<Arc<Vec<PolicyRule>>, String> {
        let found = match kind {
            "Role" => self.roles.get(&(namespace.to_owned(), name.to_owned())),
            "ClusterRole" => self.cluster_roles.get(name),
            other => return Err(format!("unsupported role reference kind: {}", go_quote(other))),
        };
        found.cloned().ok_or_else(|| role_not_found(kind, name))
    }

    /// The bindings that apply to `user` in `namespace` ("" for cluster scope only): the
    /// ClusterRoleBindings, then the namespace's RoleBindings.
    fn grants<'a>(&'a self, user: &'a UserInfo, namespace: &str) -> impl Iterator<Item = &'a Grant> + 'a {
        let local = (!namespace.is_empty())
            .then(|| self.namespaced.get(namespace))
            .flatten();
        self.cluster
            .grants(user)
            .chain(local.into_iter().flat_map(move |s| s.grants(user)))
    }

    /// kube's `RulesFor`: every rule the user holds in `namespace`, and the errors resolving
    /// bindings whose role is missing.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let mut seen: Vec<*const BindingRules> = vec![];
        let mut rules = vec![];
        let mut errors = vec![];
        for g in self.grants(user, namespace) {
            let id = Arc::as_ptr(&g.binding);
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            match &g.binding.rules {
                Ok(r) => rules.extend(r.iter().cloned()),
                Err(e) => errors.push(e.clone()),
            }
        }
        (rules, errors)
    }

    /// The RBAC decision with kube's reason (`RBAC: allowed by ...`, or the resolution errors).
    fn decide(&self, a: &AuthzRequest) -> (Decision, String) {
        if a.user.groups.iter().any(|g| g == MASTERS) {
            return (Decision::Allow, String::new());
        }
        let mut errors: Vec<&str> = vec![];
        for g in self.grants(&a.user, &a.namespace) {
            match &g.binding.rules {
                Ok(rules) if rules.iter().any(|r| r.allows(a)) => {
                    let reason = format!("RBAC: allowed by {} to {}", g.binding.source, g.subject);
                    return (Decision::Allow, reason);
                }
                Ok(_) => {}
                Err(e) => {
                    if !errors.contains(&e.as_str()) {
                        errors.push(e);
                    }
                }
            }
        }
        let reason = match errors.as_slice() {
            [] => String::new(),
            [one] => format!("RBAC: {one}"),
            many => format!("RBAC: [{}]", many.join(", ")),
        };
        (Decision::NoOpinion(reason.clone()), reason)
    }
}

impl Authorizer for RbacIndex {
    fn authorize(&self, request: &AuthzRequest) -> Decision {
        self.decide(request).0
    }

    fn authorize_with_reason(&self, request: &AuthzRequest) -> (Decision, String) {
        self.decide(request)
    }
}

/// (kind, name) of a binding's roleRef.
fn role_ref(b: &Value) -> (&str, &str) {
    let r = &b["roleRef"];
    (
        r["kind"].as_str().unwrap_or_default(),
        r["name"].as_str().unwrap_or_default(),
    )
}

/// Files `binding` under each of its subjects (kube's `appliesToUser`: a ServiceAccount subject
/// without a namespace means the binding's own).
fn add_subjects(scope: &mut Subjects, b: &Value, binding: &Arc<BindingRules>, binding_ns: &str) {
    for s in b["subjects"].as_array().into_iter().flatten() {
        let name = s["name"].as_str().unwrap_or_default();
        let grant = |subject: String| Grant {
            binding: binding.clone(),
            subject: subject.into(),
        };
        match s["kind"].as_str().unwrap_or_default() {
            "User" => scope
                .users
                .entry(name.to_owned())
                .or_default()
                .push(grant(format!("User {}", go_quote(name)))),
            "Group" => scope
                .groups
                .entry(name.to_owned())
                .or_default()
                .push(grant(format!("Group {}", go_quote(name)))),
            "ServiceAccount" => {
                let ns = match s["namespace"].as_str().unwrap_or_default() {
                    "" => binding_ns,
                    ns => ns,
                };
                if ns.is_empty() {
                    continue;
                }
                scope
                    .users
                    .entry(format!("system:serviceaccount:{ns}:{name}"))
                    .or_default()
                    .push(grant(format!(
                        "ServiceAccount {}",
                        go_quote(&format!("{name}/{ns}"))
                    )));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            username: name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn req(
        u: &UserInfo,
        verb: &str,
        group: &str,
        resource: &str,
        sub: &str,
        ns: &str,
        name: &str,
    ) -> AuthzRequest {
        AuthzRequest {
            user: u.clone(),
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

    fn path(u: &UserInfo, verb: &str, p: &str) -> AuthzRequest {
        AuthzRequest {
            user: u.clone(),
            verb: verb.into(),
            path: p.into(),
            ..Default::default()
        }
    }

    fn fixture() -> RbacIndex {
        let roles = [json!({
            "metadata": {"name": "cm-reader", "namespace": "demo"},
            "rules": [
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
                {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["app"], "verbs": ["get"]},
                {"apiGroups": ["apps"], "resources": ["statefulsets/status"], "verbs": ["patch"]}
            ]
        })];
        let cluster_roles = [
            json!({"metadata": {"name": "pvc-editor"}, "rules": [
                {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["*"]}
            ]}),
            json!({"metadata": {"name": "sc-reader"}, "rules": [
                {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get", "list", "watch"]},
                {"nonResourceURLs": ["/metrics", "/logs/*"], "verbs": ["get"]}
            ]}),
        ];
        let role_bindings = [
            json!({"metadata": {"name": "alice-cm", "namespace": "demo"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
                "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}]}),
            json!({"metadata": {"name": "tenants-pvc", "namespace": "demo"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pvc-editor"},
                "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "tenants"},
                             {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
                             {"kind": "ServiceAccount", "name": "ctl"}]}),
            json!({"metadata": {"name": "broken", "namespace": "demo"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gone"},
                "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"}]}),
        ];
        let cluster_role_bindings = [json!({"metadata": {"name": "sc"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "sc-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "ctl", "namespace": "ops"},
                         {"kind": "ServiceAccount", "name": "no-namespace"}]})];
        let (r, cr, rb, crb): (Vec<&Value>, Vec<&Value>, Vec<&Value>, Vec<&Value>) = (
            roles.iter().collect(),
            cluster_roles.iter().collect(),
            role_bindings.iter().collect(),
            cluster_role_bindings.iter().collect(),
        );
        RbacIndex::build(RbacObjects {
            roles: &r,
            cluster_roles: &cr,
            role_bindings: &rb,
            cluster_role_bindings: &crb,
        })
    }

    #[test]
    fn allow_and_deny_table() {
        let idx = fixture();
        let alice = user("alice", &["tenants", "system:authenticated"]);
        let carol = user("carol", &["tenants", "system:authenticated"]);
        let bob = user("bob", &["system:authenticated"]);
        let ctl = user(
            "system:serviceaccount:ops:ctl",
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:ops",
                "system:authenticated",
            ],
        );
        let demo_ctl = user("system:serviceaccount:demo:ctl", &["system:authenticated"]);
        let admin = user("admin", &["system:masters"]);
        let cases = [
            (req(&alice, "get", "", "configmaps", "", "demo", "c"), true),
            (req(&alice, "list", "", "configmaps", "", "demo", ""), true),
            (req(&alice, "delete", "", "configmaps", "", "demo", "c"), false),
            // A Role only applies in its namespace.
            (req(&alice, "get", "", "configmaps", "", "other", "c"), false),
            (req(&alice, "get", "", "secrets", "", "demo", "app"), true),
            (req(&alice, "get", "", "secrets", "", "demo", "db"), false),
            (req(&alice, "list", "", "secrets", "", "demo", ""), false),
            (
                req(&alice, "patch", "apps", "statefulsets", "status", "demo", "s"),
                true,
            ),
            (
                req(&alice, "patch", "apps", "statefulsets", "", "demo", "s"),
                false,
            ),
            // Group subjects and a ClusterRole through a RoleBinding.
            (
                req(&carol, "delete", "", "persistentvolumeclaims", "", "demo", "p"),
                true,
            ),
            (
                req(&carol, "delete", "", "persistentvolumeclaims", "", "other", "p"),
                false,
            ),
            (req(&carol, "get", "", "configmaps", "", "demo", "c"), false),
            // A ServiceAccount subject without namespace is the binding's namespace's.
            (
                req(&demo_ctl, "get", "", "persistentvolumeclaims", "", "demo", "p"),
                true,
            ),
            (
                req(&ctl, "get", "", "persistentvolumeclaims", "", "demo", "p"),
                false,
            ),
            (
                req(&ctl, "list", "storage.k8s.io", "storageclasses", "", "", ""),
                true,
            ),
            (
                req(&ctl, "create", "storage.k8s.io", "storageclasses", "", "", ""),
                false,
            ),
            (path(&ctl, "get", "/metrics"), true),
            (path(&ctl, "get", "/logs/kube.log"), true),
            (path(&ctl, "get", "/logs"), false),
            (path(&ctl, "post", "/metrics"), false),
            (path(&alice, "get", "/metrics"), false),
            (req(&bob, "get", "", "configmaps", "", "demo", "c"), false),
            (
                req(&admin, "delete", "", "namespaces", "", "", "kube-system"),
                true,
            ),
            (path(&admin, "put", "/anything"), true),
        ];
        for (i, (a, want)) in cases.iter().enumerate() {
            assert_eq!(idx.authorize(a).allowed(), *want, "case {i}: {a:?}");
        }
    }

    #[test]
    fn reasons_like_kube() {
        let idx = fixture();
        let alice = user("alice", &["tenants"]);
        let (d, reason) = idx.authorize_with_reason(&req(&alice, "get", "", "configmaps", "", "demo", "c"));
        assert_eq!(d, Decision::Allow);
        assert_eq!(
            reason,
            r#"RBAC: allowed by RoleBinding "alice-cm/demo" of Role "cm-reader" to User "alice""#
        );
        let ctl = user("system:serviceaccount:ops:ctl", &[]);
        let (_, reason) = idx.authorize_with_reason(&path(&ctl, "get", "/metrics"));
        assert_eq!(
            reason,
            r#"RBAC: allowed by ClusterRoleBinding "sc" of ClusterRole "sc-reader" to ServiceAccount "ctl/ops""#
        );
        let bob = user("bob", &[]);
        assert_eq!(
            idx.authorize(&req(&bob, "get", "", "configmaps", "", "demo", "c")),
            Decision::NoOpinion(r#"RBAC: role.rbac.authorization.k8s.io "gone" not found"#.into())
        );
        // Outside the broken binding's namespace there is nothing to report.
        assert_eq!(
            idx.authorize(&req(&bob, "get", "", "configmaps", "", "other", "c")),
            Decision::NoOpinion(String::new())
        );
    }

    #[test]
    fn rules_for_collects_each_binding_once() {
        let idx = fixture();
        // alice is named by one binding and in a group named by another.
        let alice = user("alice", &["tenants"]);
        let (rules, errors) = idx.rules_for(&alice, "demo");
        assert_eq!(rules.len(), 4);
        assert!(errors.is_empty());
        let (rules, _) = idx.rules_for(&alice, "");
        assert!(rules.is_empty());
        let (rules, errors) = idx.rules_for(&user("bob", &[]), "demo");
        assert!(rules.is_empty());
        assert_eq!(
            errors,
            vec![r#"role.rbac.authorization.k8s.io "gone" not found"#.to_owned()]
        );
    }
}
