//! RBAC escalation prevention (kube's policy-based Role/Binding storage): a user may create or
//! update a Role/ClusterRole only with permissions it already holds (or `escalate` on it), and a
//! binding only to a role whose permissions it holds (or `bind` on the role).

use serde_json::Value;

use super::RbacKind;
use super::index::{MASTERS, RbacIndex};
use super::rules::{PolicyRule, compact, covers, go_quote_list, rules_from_json};
use super::validation::GROUP;
use crate::admission::UserInfo;
use crate::authz::{Authorizer, AuthzRequest};
use crate::error::ApiError;

/// `*` on everything: what setting an `aggregationRule` needs.
fn full_authority() -> Vec<PolicyRule> {
    let all = vec!["*".to_owned()];
    vec![
        PolicyRule {
            verbs: all.clone(),
            api_groups: all.clone(),
            resources: all.clone(),
            ..Default::default()
        },
        PolicyRule {
            verbs: all.clone(),
            non_resource_urls: all,
            ..Default::default()
        },
    ]
}

/// kube's `ConfirmNoEscalation`: the user's rules in `namespace` cover `rules`, or the message
/// listing what it lacks.
pub fn confirm_no_escalation(
    index: &RbacIndex,
    user: &UserInfo,
    namespace: &str,
    rules: &[PolicyRule],
) -> Result<(), String> {
    let (owner, errors) = index.rules_for(user, namespace);
    let (ok, missing) = covers(&owner, rules);
    if ok {
        return Ok(());
    }
    let mut lines: Vec<String> = compact(missing).iter().map(PolicyRule::compact_string).collect();
    lines.sort();
    lines.dedup();
    let mut msg = format!(
        "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        crate::error::go_quote(&user.username),
        go_quote_list(&user.groups),
        lines.join("\n")
    );
    if !errors.is_empty() {
        msg.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
    }
    Err(msg)
}

/// Whether only the fields the garbage collector touches differ (kube lets such updates by).
fn only_gc_fields_changed(new: &Value, old: &Value) -> bool {
    const IGNORED: &[&str] = &[
        "ownerReferences",
        "finalizers",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "resourceVersion",
        "managedFields",
        "generation",
    ];
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.retain(|k, _| !IGNORED.contains(&k.as_str()));
        }
        v
    };
    strip(new) == strip(old)
}

/// Asks the authorizer for `verb` on an RBAC resource.
fn allowed(
    index: &RbacIndex,
    user: &UserInfo,
    verb: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> bool {
    index
        .authorize(&AuthzRequest {
            user: user.clone(),
            verb: verb.into(),
            resource_request: true,
            api_group: GROUP.into(),
            api_version: "*".into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Default::default()
        })
        .allowed()
}

/// The escalation check of a create (`old` None) or update of an RBAC object by `user` in
/// `namespace` ("" for the cluster-scoped kinds); a refusal is kube's 403.
pub fn check_write(
    index: &RbacIndex,
    user: &UserInfo,
    kind: RbacKind,
    namespace: &str,
    new: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if user.groups.iter().any(|g| g == MASTERS) {
        return Ok(());
    }
    if old.is_some_and(|o| only_gc_fields_changed(new, o)) {
        return Ok(());
    }
    let name = new["metadata"]["name"].as_str().unwrap_or_default();
    let group_resource = format!("{}.{GROUP}", kind.plural());
    let forbid = |msg: &str| ApiError::forbidden(&group_resource, name, msg);
    match kind {
        RbacKind::Role | RbacKind::ClusterRole => {
            // The name is the request's: empty on create, as kube asks.
            let request_name = if old.is_some() { name } else { "" };
            if allowed(index, user, "escalate", kind.plural(), namespace, request_name) {
                return Ok(());
            }
            confirm_no_escalation(index, user, namespace, &rules_from_json(&new["rules"]))
                .map_err(|m| forbid(&m))?;
            let aggregates = |o: &Value| o.get("aggregationRule").is_some_and(|a| !a.is_null());
            if kind == RbacKind::ClusterRole
                && (aggregates(new) || old.is_some_and(aggregates))
                && confirm_no_escalation(index, user, namespace, &full_authority()).is_err()
            {
                return Err(forbid(
                    "must have cluster-admin privileges to use the aggregationRule",
                ));
            }
            Ok(())
        }
        RbacKind::RoleBinding | RbacKind::ClusterRoleBinding => {
            let role_kind = new["roleRef"]["kind"].as_str().unwrap_or_default();
            let role_name = new["roleRef"]["name"].as_str().unwrap_or_default();
            let resource = match role_kind {
                "ClusterRole" => "clusterroles",
                "Role" => "roles",
                _ => "",
            };
            if !resource.is_empty() && allowed(index, user, "bind", resource, namespace, role_name) {
                return Ok(());
            }
            let rules = index
                .role_reference_rules(role_kind, role_name, namespace)
                .map_err(|m| forbid(&m))?;
            confirm_no_escalation(index, user, namespace, &rules).map_err(|m| forbid(&m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::RbacObjects;
    use serde_json::json;

    fn alice() -> UserInfo {
        UserInfo {
            username: "alice".into(),
            groups: vec!["tenants".into(), "system:authenticated".into()],
            ..Default::default()
        }
    }

    fn index() -> RbacIndex {
        let roles = [json!({"metadata": {"name": "secret-admin", "namespace": "demo"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]})];
        let cluster_roles = [
            json!({"metadata": {"name": "tenant"}, "rules": [
                {"apiGroups": [""], "resources": ["configmaps", "pods"], "verbs": ["get", "list"]},
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create", "update"]}
            ]}),
            json!({"metadata": {"name": "binder"}, "rules": [
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "resourceNames": ["secret-admin"], "verbs": ["bind"]}
            ]}),
        ];
        let role_bindings = [json!({"metadata": {"name": "t", "namespace": "demo"},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "tenant"},
            "subjects": [{"kind": "Group", "apiGroup": GROUP, "name": "tenants"}]})];
        let (r, cr, rb): (Vec<&Value>, Vec<&Value>, Vec<&Value>) = (
            roles.iter().collect(),
            cluster_roles.iter().collect(),
            role_bindings.iter().collect(),
        );
        RbacIndex::build(RbacObjects {
            roles: &r,
            cluster_roles: &cr,
            role_bindings: &rb,
            cluster_role_bindings: &[],
        })
    }

    fn role(rules: Value) -> Value {
        json!({"metadata": {"name": "r", "namespace": "demo"}, "rules": rules})
    }

    #[test]
    fn role_needs_the_permissions_it_grants() {
        let idx = index();
        let held = role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]));
        assert_eq!(
            check_write(&idx, &alice(), RbacKind::Role, "demo", &held, None),
            Ok(())
        );
        let more =
            role(json!([{"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get", "delete"]}]));
        let err = check_write(&idx, &alice(), RbacKind::Role, "demo", &more, None).unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
        assert_eq!(
            err.message,
            "roles.rbac.authorization.k8s.io \"r\" is forbidden: user \"alice\" (groups=[\"tenants\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"delete\"]}"
        );
        // Held only in the namespace: a ClusterRole with the same rules is an escalation.
        let cluster = json!({"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
        assert!(check_write(&idx, &alice(), RbacKind::ClusterRole, "", &cluster, None).is_err());
        // Masters may do anything; a GC-only update is let by.
        let admin = UserInfo {
            username: "admin".into(),
            groups: vec![MASTERS.into()],
            ..Default::default()
        };
        assert_eq!(
            check_write(&idx, &admin, RbacKind::Role, "demo", &more, None),
            Ok(())
        );
        let mut finalized = more.clone();
        finalized["metadata"]["finalizers"] = json!(["x"]);
        assert_eq!(
            check_write(&idx, &alice(), RbacKind::Role, "demo", &finalized, Some(&more)),
            Ok(())
        );
    }

    #[test]
    fn binding_needs_bind_or_the_role_permissions() {
        let idx = index();
        let binding = |kind: &str, name: &str| {
            json!({"metadata": {"name": "b", "namespace": "demo"},
                "roleRef": {"apiGroup": GROUP, "kind": kind, "name": name},
                "subjects": [{"kind": "User", "apiGroup": GROUP, "name": "bob"}]})
        };
        // Holds bind on it? No: binder is not bound to alice. Holds the rules: tenant yes.
        assert_eq!(
            check_write(
                &idx,
                &alice(),
                RbacKind::RoleBinding,
                "demo",
                &binding("ClusterRole", "tenant"),
                None
            ),
            Ok(())
        );
        let err = check_write(
            &idx,
            &alice(),
            RbacKind::RoleBinding,
            "demo",
            &binding("Role", "secret-admin"),
            None,
        )
        .unwrap_err();
        assert!(err.message.starts_with(
            "rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: user \"alice\" (groups=[\"tenants\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"*\"]}"
        ), "{}", err.message);
        let err = check_write(
            &idx,
            &alice(),
            RbacKind::RoleBinding,
            "demo",
            &binding("Role", "missing"),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            r#"rolebindings.rbac.authorization.k8s.io "b" is forbidden: role.rbac.authorization.k8s.io "missing" not found"#
        );
        // `bind` on the role is enough.
        let bob = UserInfo {
            username: "bob".into(),
            ..Default::default()
        };
        let cluster_roles = [json!({"metadata": {"name": "binder"}, "rules": [
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "resourceNames": ["secret-admin"], "verbs": ["bind"]}]})];
        let crbs = [json!({"metadata": {"name": "bob-binds"},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "binder"},
            "subjects": [{"kind": "User", "apiGroup": GROUP, "name": "bob"}]})];
        let roles = [json!({"metadata": {"name": "secret-admin", "namespace": "demo"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]})];
        let (r, cr, crb): (Vec<&Value>, Vec<&Value>, Vec<&Value>) = (
            roles.iter().collect(),
            cluster_roles.iter().collect(),
            crbs.iter().collect(),
        );
        let idx = RbacIndex::build(RbacObjects {
            roles: &r,
            cluster_roles: &cr,
            role_bindings: &[],
            cluster_role_bindings: &crb,
        });
        assert_eq!(
            check_write(
                &idx,
                &bob,
                RbacKind::RoleBinding,
                "demo",
                &binding("Role", "secret-admin"),
                None
            ),
            Ok(())
        );
    }

    #[test]
    fn aggregation_rule_needs_cluster_admin() {
        let idx = index();
        let agg = json!({"metadata": {"name": "agg"}, "rules": [],
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}});
        let err = check_write(&idx, &alice(), RbacKind::ClusterRole, "", &agg, None).unwrap_err();
        assert_eq!(
            err.message,
            r#"clusterroles.rbac.authorization.k8s.io "agg" is forbidden: must have cluster-admin privileges to use the aggregationRule"#
        );
    }
}
