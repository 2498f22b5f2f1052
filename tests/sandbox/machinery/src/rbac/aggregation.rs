//! kube-controller-manager's clusterrole-aggregation controller as a pure function: a ClusterRole
//! with an `aggregationRule` gets the rules of every ClusterRole its selectors match (in name
//! order, duplicates dropped), so a chart's role labelled `aggregate-to-edit` extends `edit`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::rules::{PolicyRule, rules_from_json};
use crate::admission::selector;

/// The ClusterRoles whose rules must change, as (name, new rules); aggregations of aggregated
/// roles (`admin` takes `edit` which takes `view`) are followed to the end.
pub fn aggregate(cluster_roles: &[&Value]) -> Vec<(String, Vec<PolicyRule>)> {
    let mut rules: BTreeMap<String, Vec<PolicyRule>> = BTreeMap::new();
    let mut labels: BTreeMap<String, Option<&serde_json::Map<String, Value>>> = BTreeMap::new();
    let mut selectors: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for r in cluster_roles {
        let name = r["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        rules.insert(name.clone(), rules_from_json(&r["rules"]));
        labels.insert(name.clone(), r["metadata"]["labels"].as_object());
        if let Some(sel) = r["aggregationRule"]["clusterRoleSelectors"].as_array() {
            selectors.insert(name, sel.iter().collect());
        }
    }
    let original = rules.clone();
    // Each pass settles one more level of nesting; a cycle stops after as many passes as roles.
    for _ in 0..=selectors.len() {
        let mut changed = false;
        for (name, sels) in &selectors {
            let mut merged: Vec<PolicyRule> = vec![];
            for (other, other_labels) in &labels {
                if other == name {
                    continue;
                }
                let matched = sels
                    .iter()
                    .any(|s| selector::matches(Some(s), *other_labels).unwrap_or(false));
                if !matched {
                    continue;
                }
                for r in rules.get(other).into_iter().flatten() {
                    if !merged.contains(r) {
                        merged.push(r.clone());
                    }
                }
            }
            if rules.get(name) != Some(&merged) {
                rules.insert(name.clone(), merged);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    rules
        .into_iter()
        .filter(|(name, r)| original.get(name) != Some(r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(name: &str, labels: Value, rules: Value, agg: Option<&str>) -> Value {
        let mut r = json!({"metadata": {"name": name, "labels": labels}, "rules": rules});
        if let Some(label) = agg {
            r["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]});
        }
        r
    }

    fn rule(resource: &str) -> Value {
        json!({"apiGroups": [""], "resources": [resource], "verbs": ["get"]})
    }

    #[test]
    fn nested_aggregation_reaches_a_fixpoint() {
        let roles = [
            role("admin", json!({}), json!([]), Some("to-admin")),
            role("edit", json!({"to-admin": "true"}), json!([]), Some("to-edit")),
            role("view", json!({"to-edit": "true"}), json!([]), Some("to-view")),
            role(
                "a-view-rules",
                json!({"to-view": "true"}),
                json!([rule("pods")]),
                None,
            ),
            role(
                "chart-edit",
                json!({"to-edit": "true"}),
                json!([rule("widgets"), rule("pods")]),
                None,
            ),
            role("unrelated", json!({"x": "y"}), json!([rule("secrets")]), None),
        ];
        let refs: Vec<&Value> = roles.iter().collect();
        let out: BTreeMap<String, Vec<PolicyRule>> = aggregate(&refs).into_iter().collect();
        let names =
            |rs: &Vec<PolicyRule>| -> Vec<String> { rs.iter().map(|r| r.resources[0].clone()).collect() };
        assert_eq!(names(&out["view"]), vec!["pods"]);
        // Name order; a rule already taken is not repeated.
        assert_eq!(names(&out["edit"]), vec!["widgets", "pods"]);
        assert_eq!(names(&out["admin"]), vec!["widgets", "pods"]);
        assert_eq!(out.len(), 3);
        // Once stored, nothing changes any more.
        let settled: Vec<Value> = roles
            .iter()
            .map(|r| {
                let mut r = r.clone();
                let name = r["metadata"]["name"].as_str().unwrap_or_default().to_owned();
                if let Some(rules) = out.get(&name) {
                    r["rules"] = Value::Array(rules.iter().map(PolicyRule::to_json).collect());
                }
                r
            })
            .collect();
        let refs: Vec<&Value> = settled.iter().collect();
        assert!(aggregate(&refs).is_empty());
    }

    #[test]
    fn removing_a_label_shrinks_the_aggregate() {
        let roles = [
            role(
                "view",
                json!({}),
                json!([rule("pods"), rule("secrets")]),
                Some("to-view"),
            ),
            role("pods", json!({"to-view": "true"}), json!([rule("pods")]), None),
            role("secrets", json!({}), json!([rule("secrets")]), None),
        ];
        let refs: Vec<&Value> = roles.iter().collect();
        let out = aggregate(&refs);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "view");
        assert_eq!(out[0].1, vec![PolicyRule::from_json(&rule("pods"))]);
    }
}
