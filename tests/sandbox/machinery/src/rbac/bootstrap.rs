//! The part of kube-apiserver's bootstrap RBAC policy (plugin/pkg/auth/authorizer/rbac/
//! bootstrappolicy) a volops cluster meets: `cluster-admin`, the aggregated user-facing roles
//! `admin`/`edit`/`view` with their `system:aggregate-to-*` parts, discovery, basic-user,
//! public-info-viewer and auth-delegator, and their ClusterRoleBindings.

use serde_json::{Value, json};

use super::validation::GROUP;

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

fn rule(verbs: &[&str], group: &str, resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": [group], "resources": resources})
}

fn urls(verbs: &[&str], urls: &[&str]) -> Value {
    json!({"verbs": verbs, "nonResourceURLs": urls})
}

/// Metadata of a bootstrap object: kube's label and auto-update annotation, plus `labels`.
fn metadata(name: &str, labels: &[(&str, &str)]) -> Value {
    let mut l = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    for (k, v) in labels {
        l[*k] = json!(v);
    }
    json!({
        "name": name,
        "labels": l,
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

fn cluster_role(name: &str, labels: &[(&str, &str)], rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": format!("{GROUP}/v1"), "kind": "ClusterRole",
        "metadata": metadata(name, labels), "rules": rules,
    })
}

fn aggregated(name: &str, labels: &[(&str, &str)], aggregate_label: &str) -> Value {
    let mut r = cluster_role(name, labels, vec![]);
    r["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {aggregate_label: "true"}}]});
    r
}

const TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

/// The bootstrap ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    vec![
        cluster_role(
            "cluster-admin",
            &[],
            vec![rule(&["*"], "*", &["*"]), urls(&["*"], &["*"])],
        ),
        cluster_role(
            "system:discovery",
            &[],
            vec![urls(
                &["get"],
                &[
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/version",
                    "/version/",
                    "/openapi",
                    "/openapi/*",
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["create"],
                    "authorization.k8s.io",
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(&["create"], "authentication.k8s.io", &["selfsubjectreviews"]),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            vec![urls(
                &["get"],
                &["/livez", "/readyz", "/healthz", "/version", "/version/"],
            )],
        ),
        cluster_role(
            "system:auth-delegator",
            &[],
            vec![
                rule(&["create"], "authentication.k8s.io", &["tokenreviews"]),
                rule(&["create"], "authorization.k8s.io", &["subjectaccessreviews"]),
            ],
        ),
        aggregated("admin", &[], TO_ADMIN),
        aggregated("edit", &[(TO_ADMIN, "true")], TO_EDIT),
        aggregated("view", &[(TO_EDIT, "true")], TO_VIEW),
        cluster_role(
            "system:aggregate-to-admin",
            &[(TO_ADMIN, "true")],
            vec![
                rule(
                    &["create"],
                    "authorization.k8s.io",
                    &["localsubjectaccessreviews"],
                ),
                rule(READ_WRITE, GROUP, &["roles", "rolebindings"]),
            ],
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[(TO_EDIT, "true")],
            aggregate_to_edit(),
        ),
        cluster_role(
            "system:aggregate-to-view",
            &[(TO_VIEW, "true")],
            aggregate_to_view(),
        ),
    ]
}

fn aggregate_to_edit() -> Vec<Value> {
    vec![
        rule(
            READ,
            "",
            &[
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
                "secrets",
                "services/proxy",
            ],
        ),
        rule(&["impersonate"], "", &["serviceaccounts"]),
        rule(
            WRITE,
            "",
            &[
                "pods",
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
            ],
        ),
        rule(&["create"], "", &["pods/eviction"]),
        rule(
            WRITE,
            "",
            &[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
                "events",
            ],
        ),
        rule(&["create"], "", &["serviceaccounts/token"]),
        rule(
            WRITE,
            "apps",
            &[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ],
        ),
        rule(WRITE, "autoscaling", &["horizontalpodautoscalers"]),
        rule(WRITE, "batch", &["jobs", "cronjobs"]),
        rule(WRITE, "policy", &["poddisruptionbudgets"]),
        rule(WRITE, "networking.k8s.io", &["networkpolicies", "ingresses"]),
        rule(READ_WRITE, "coordination.k8s.io", &["leases"]),
    ]
}

fn aggregate_to_view() -> Vec<Value> {
    vec![
        rule(
            READ,
            "",
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ],
        ),
        rule(
            READ,
            "",
            &[
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ],
        ),
        rule(READ, "", &["namespaces"]),
        rule(READ, "discovery.k8s.io", &["endpointslices"]),
        rule(
            READ,
            "apps",
            &[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/status",
                "statefulsets/scale",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/status",
                "deployments/scale",
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
            ],
        ),
        rule(
            READ,
            "autoscaling",
            &["horizontalpodautoscalers", "horizontalpodautoscalers/status"],
        ),
        rule(
            READ,
            "batch",
            &["jobs", "cronjobs", "cronjobs/status", "jobs/status"],
        ),
        rule(
            READ,
            "policy",
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            "networking.k8s.io",
            &["networkpolicies", "ingresses", "ingresses/status"],
        ),
    ]
}

fn binding(role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"kind": "Group", "apiGroup": GROUP, "name": g}))
        .collect();
    json!({
        "apiVersion": format!("{GROUP}/v1"), "kind": "ClusterRoleBinding",
        "metadata": metadata(role, &[]),
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

/// The bootstrap ClusterRoleBindings.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", &["system:masters"]),
        binding("system:discovery", &["system:authenticated"]),
        binding("system:basic-user", &["system:authenticated"]),
        binding(
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::UserInfo;
    use crate::authz::{Authorizer, AuthzRequest};
    use crate::rbac::{PolicyRule, RbacIndex, RbacObjects, aggregate};

    /// The bootstrap policy after the aggregation controller ran.
    fn settled() -> RbacIndex {
        let mut roles = cluster_roles();
        let refs: Vec<&Value> = roles.iter().collect();
        let changes = aggregate(&refs);
        for (name, rules) in changes {
            if let Some(r) = roles.iter_mut().find(|r| r["metadata"]["name"] == name.as_str()) {
                r["rules"] = Value::Array(rules.iter().map(PolicyRule::to_json).collect());
            }
        }
        let bindings = cluster_role_bindings();
        let (cr, crb): (Vec<&Value>, Vec<&Value>) = (roles.iter().collect(), bindings.iter().collect());
        RbacIndex::build(RbacObjects {
            cluster_roles: &cr,
            cluster_role_bindings: &crb,
            ..Default::default()
        })
    }

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            username: name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn path(u: &UserInfo, p: &str) -> AuthzRequest {
        AuthzRequest {
            user: u.clone(),
            verb: "get".into(),
            path: p.into(),
            ..Default::default()
        }
    }

    #[test]
    fn authenticated_users_discover_anonymous_only_read_public_info() {
        let idx = settled();
        let alice = user("alice", &["system:authenticated"]);
        let anon = user("system:anonymous", &["system:unauthenticated"]);
        for p in ["/api", "/apis/apps/v1", "/openapi/v2", "/version", "/healthz"] {
            assert!(idx.authorize(&path(&alice, p)).allowed(), "{p}");
        }
        for p in ["/version", "/healthz", "/readyz"] {
            assert!(idx.authorize(&path(&anon, p)).allowed(), "{p}");
        }
        for p in ["/api", "/apis", "/openapi/v2", "/metrics"] {
            assert!(!idx.authorize(&path(&anon, p)).allowed(), "{p}");
        }
        let ssar = AuthzRequest {
            user: alice.clone(),
            verb: "create".into(),
            resource_request: true,
            api_group: "authorization.k8s.io".into(),
            resource: "selfsubjectaccessreviews".into(),
            ..Default::default()
        };
        assert!(idx.authorize(&ssar).allowed());
        assert!(!idx.authorize(&AuthzRequest { user: anon, ..ssar }).allowed());
    }

    #[test]
    fn admin_holds_edit_holds_view() {
        let mut roles = cluster_roles();
        let refs: Vec<&Value> = roles.iter().collect();
        for (name, rules) in aggregate(&refs) {
            if let Some(r) = roles.iter_mut().find(|r| r["metadata"]["name"] == name.as_str()) {
                r["rules"] = Value::Array(rules.iter().map(PolicyRule::to_json).collect());
            }
        }
        let rules_of = |n: &str| {
            crate::rbac::rules_from_json(
                &roles
                    .iter()
                    .find(|r| r["metadata"]["name"] == n)
                    .map(|r| r["rules"].clone())
                    .unwrap_or_default(),
            )
        };
        let (view, edit, admin) = (rules_of("view"), rules_of("edit"), rules_of("admin"));
        assert!(!view.is_empty());
        assert!(crate::rbac::covers(&edit, &view).0);
        assert!(crate::rbac::covers(&admin, &edit).0);
        assert!(!crate::rbac::covers(&view, &edit).0);
        assert!(!crate::rbac::covers(&edit, &admin).0);
    }
}
