//! Defaulting and validation of `rbac.authorization.k8s.io/v1` objects with kube's messages
//! (pkg/apis/rbac/v1/defaults.go and pkg/apis/rbac/validation).

use serde_json::{Value, json};

use super::RbacKind;
use super::rules::strings;
use crate::error::{FieldCause, go_quote};
use crate::objectmeta::subdomain_errors;

/// The API group of RBAC.
pub const GROUP: &str = "rbac.authorization.k8s.io";

/// kube's v1 defaults: a roleRef's and a User/Group subject's empty `apiGroup` is RBAC's.
pub fn default_object(kind: RbacKind, obj: &mut Value) {
    if !kind.is_binding() {
        return;
    }
    if let Some(r) = obj.get_mut("roleRef").and_then(Value::as_object_mut)
        && r.get("apiGroup")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
    {
        r.insert("apiGroup".into(), json!(GROUP));
    }
    for s in obj
        .get_mut("subjects")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let Some(s) = s.as_object_mut() else { continue };
        let group_empty = s
            .get("apiGroup")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty();
        if group_empty && matches!(s.get("kind").and_then(Value::as_str), Some("User" | "Group")) {
            s.insert("apiGroup".into(), json!(GROUP));
        }
    }
}

/// `path.ValidatePathSegmentName` (kube's `ValidateRBACName`).
fn path_segment_errors(name: &str) -> Vec<String> {
    let mut errs = vec![];
    if name == "." || name == ".." {
        errs.push(format!("may not be '{name}'"));
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

fn invalid_list(field: &str, v: &[String], detail: &str) -> FieldCause {
    let quoted: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    FieldCause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: []string{{{}}}: {detail}", quoted.join(", ")),
        field: field.into(),
    }
}

/// kube's `ValidatePolicyRule`.
fn validate_rule(rule: &Value, namespaced: bool, path: &str, out: &mut Vec<FieldCause>) {
    let (verbs, groups, resources, names, urls) = (
        strings(&rule["verbs"]),
        strings(&rule["apiGroups"]),
        strings(&rule["resources"]),
        strings(&rule["resourceNames"]),
        strings(&rule["nonResourceURLs"]),
    );
    if verbs.is_empty() {
        out.push(FieldCause::required(
            &format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    }
    if !urls.is_empty() {
        let field = format!("{path}.nonResourceURLs");
        if namespaced {
            out.push(invalid_list(
                &field,
                &urls,
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !groups.is_empty() || !resources.is_empty() || !names.is_empty() {
            out.push(invalid_list(
                &field,
                &urls,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return;
    }
    if groups.is_empty() {
        out.push(FieldCause::required(
            &format!("{path}.apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if resources.is_empty() {
        out.push(FieldCause::required(
            &format!("{path}.resources"),
            "resource rules must supply at least one resource",
        ));
    }
}

/// kube's `ValidateRoleBindingSubject`.
fn validate_subject(s: &Value, namespaced: bool, path: &str, out: &mut Vec<FieldCause>) {
    let name = s["name"].as_str().unwrap_or_default();
    let group = s["apiGroup"].as_str().unwrap_or_default();
    if name.is_empty() {
        out.push(FieldCause::required(&format!("{path}.name"), ""));
    }
    match s["kind"].as_str().unwrap_or_default() {
        "ServiceAccount" => {
            if !name.is_empty() {
                for msg in subdomain_errors(name) {
                    out.push(FieldCause::invalid(&format!("{path}.name"), &json!(name), &msg));
                }
            }
            if !group.is_empty() {
                out.push(FieldCause::not_supported(
                    &format!("{path}.apiGroup"),
                    &json!(group),
                    &[String::new()],
                ));
            }
            if !namespaced && s["namespace"].as_str().unwrap_or_default().is_empty() {
                out.push(FieldCause::required(&format!("{path}.namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != GROUP {
                out.push(FieldCause::not_supported(
                    &format!("{path}.apiGroup"),
                    &json!(group),
                    &[GROUP.to_owned()],
                ));
            }
        }
        other => out.push(FieldCause::not_supported(
            &format!("{path}.kind"),
            &json!(other),
            &["ServiceAccount".into(), "User".into(), "Group".into()],
        )),
    }
}

/// `rbac.RoleRef{APIGroup:"...", Kind:"...", Name:"..."}` as Go's `%#v` prints it.
fn go_role_ref(r: &Value) -> String {
    let f = |k: &str| go_quote(r[k].as_str().unwrap_or_default());
    format!(
        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
        f("apiGroup"),
        f("kind"),
        f("name")
    )
}

/// kube's create and update validation of an RBAC object (`old` for an update).
pub fn validate(kind: RbacKind, obj: &Value, old: Option<&Value>) -> Vec<FieldCause> {
    let mut out = vec![];
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    for msg in path_segment_errors(name) {
        out.push(FieldCause::invalid("metadata.name", &json!(name), &msg));
    }
    match kind {
        RbacKind::Role | RbacKind::ClusterRole => {
            for (i, rule) in obj["rules"].as_array().into_iter().flatten().enumerate() {
                validate_rule(rule, kind == RbacKind::Role, &format!("rules[{i}]"), &mut out);
            }
            let agg = &obj["aggregationRule"];
            if kind == RbacKind::ClusterRole
                && agg.is_object()
                && agg["clusterRoleSelectors"].as_array().is_none_or(Vec::is_empty)
            {
                out.push(FieldCause::required(
                    "aggregationRule.clusterRoleSelectors",
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                ));
            }
        }
        RbacKind::RoleBinding | RbacKind::ClusterRoleBinding => {
            let r = &obj["roleRef"];
            let group = r["apiGroup"].as_str().unwrap_or_default();
            if group != GROUP {
                out.push(FieldCause::not_supported(
                    "roleRef.apiGroup",
                    &json!(group),
                    &[GROUP.into()],
                ));
            }
            let allowed: &[&str] = if kind == RbacKind::RoleBinding {
                &["Role", "ClusterRole"]
            } else {
                &["ClusterRole"]
            };
            let rk = r["kind"].as_str().unwrap_or_default();
            if !allowed.contains(&rk) {
                let supported: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
                out.push(FieldCause::not_supported("roleRef.kind", &json!(rk), &supported));
            }
            let rn = r["name"].as_str().unwrap_or_default();
            if rn.is_empty() {
                out.push(FieldCause::required("roleRef.name", ""));
            }
            for msg in path_segment_errors(rn) {
                out.push(FieldCause::invalid("roleRef.name", &json!(rn), &msg));
            }
            for (i, s) in obj["subjects"].as_array().into_iter().flatten().enumerate() {
                validate_subject(
                    s,
                    kind == RbacKind::RoleBinding,
                    &format!("subjects[{i}]"),
                    &mut out,
                );
            }
            if let Some(old) = old
                && old["roleRef"] != obj["roleRef"]
            {
                out.push(FieldCause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: {}: cannot change roleRef", go_role_ref(r)),
                    field: "roleRef".into(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(kind: RbacKind, obj: Value, old: Option<Value>) -> Vec<String> {
        validate(kind, &obj, old.as_ref())
            .iter()
            .map(FieldCause::error_string)
            .collect()
    }

    #[test]
    fn rule_validation_messages() {
        let role = json!({"metadata": {"name": "r"}, "rules": [
            {"apiGroups": [""], "resources": ["pods"]},
            {"verbs": ["get"]},
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
            {"verbs": ["get"], "nonResourceURLs": ["/x"], "resources": ["pods"]}
        ]});
        assert_eq!(
            messages(RbacKind::Role, role.clone(), None),
            vec![
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[1].resources: Required value: resource rules must supply at least one resource",
                r#"rules[2].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource URLs"#,
                r#"rules[3].nonResourceURLs: Invalid value: []string{"/x"}: namespaced rules cannot apply to non-resource URLs"#,
                r#"rules[3].nonResourceURLs: Invalid value: []string{"/x"}: rules cannot apply to both regular resources and non-resource URLs"#,
            ]
        );
        // A ClusterRole may name URLs.
        let cr = json!({"metadata": {"name": "system:x"}, "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
        assert!(messages(RbacKind::ClusterRole, cr, None).is_empty());
        let bad_name = json!({"metadata": {"name": "a/b"}, "rules": []});
        assert_eq!(
            messages(RbacKind::ClusterRole, bad_name, None),
            vec![r#"metadata.name: Invalid value: "a/b": may not contain '/'"#]
        );
    }

    #[test]
    fn binding_defaults_and_validation() {
        let mut b = json!({"metadata": {"name": "b"},
            "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "ctl"},
                         {"kind": "Robot", "name": "r2"}, {"kind": "Group", "apiGroup": "x", "name": ""}]});
        default_object(RbacKind::ClusterRoleBinding, &mut b);
        assert_eq!(b["roleRef"]["apiGroup"], GROUP);
        assert_eq!(b["subjects"][0]["apiGroup"], GROUP);
        assert!(b["subjects"][1].get("apiGroup").is_none());
        assert_eq!(
            messages(RbacKind::ClusterRoleBinding, b.clone(), None),
            vec![
                "subjects[1].namespace: Required value",
                r#"subjects[2].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group""#,
                "subjects[3].name: Required value",
                r#"subjects[3].apiGroup: Unsupported value: "x": supported values: "rbac.authorization.k8s.io""#,
            ]
        );
        let role_in_crb = json!({"metadata": {"name": "b"},
            "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": ""}});
        assert_eq!(
            messages(RbacKind::ClusterRoleBinding, role_in_crb, None),
            vec![
                r#"roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole""#,
                "roleRef.name: Required value",
            ]
        );
        let old =
            json!({"metadata": {"name": "b"}, "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "a"}});
        let new =
            json!({"metadata": {"name": "b"}, "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "c"}});
        assert_eq!(
            messages(RbacKind::RoleBinding, new, Some(old)),
            vec![
                r#"roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"c"}: cannot change roleRef"#
            ]
        );
    }
}
