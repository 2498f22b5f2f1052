//! Kubernetes label-selector matching (matchLabels and matchExpressions).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `labels` satisfy `selector`. An empty selector matches everything; an unknown
/// operator matches nothing (fail closed, as the API server would reject it anyway).
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let exact = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    exact
        && selector.match_expressions.iter().flatten().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn selector_table() {
        let ns = labels(&[("tenant", "a"), ("tier", "gold")]);
        let sel = |ml: &[(&str, &str)], ex: Vec<LabelSelectorRequirement>| LabelSelector {
            match_labels: Some(labels(ml)),
            match_expressions: Some(ex),
        };
        assert!(matches(&LabelSelector::default(), &ns));
        assert!(matches(&sel(&[("tenant", "a")], vec![]), &ns));
        assert!(!matches(&sel(&[("tenant", "b")], vec![]), &ns));
        assert!(matches(
            &sel(&[], vec![expr("tier", "In", &["gold", "silver"])]),
            &ns
        ));
        assert!(!matches(&sel(&[], vec![expr("tier", "NotIn", &["gold"])]), &ns));
        assert!(matches(&sel(&[], vec![expr("absent", "NotIn", &["x"])]), &ns));
        assert!(matches(&sel(&[], vec![expr("tenant", "Exists", &[])]), &ns));
        assert!(!matches(
            &sel(&[], vec![expr("tenant", "DoesNotExist", &[])]),
            &ns
        ));
        assert!(!matches(&sel(&[], vec![expr("tenant", "Bogus", &[])]), &ns));
    }
}
