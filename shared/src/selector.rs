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

/// The operators a label selector may use.
pub const OPERATORS: [&str; 4] = ["In", "NotIn", "Exists", "DoesNotExist"];

/// A label name or value part: at most 63 characters, alphanumerics at both ends, `-_.` between.
fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A DNS-1123 subdomain (a label key's prefix).
fn is_subdomain(s: &str) -> bool {
    let label = |l: &str| {
        let b = l.as_bytes();
        let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        b.first().is_some_and(edge) && b.last().is_some_and(edge) && b.iter().all(|c| edge(c) || *c == b'-')
    };
    s.len() <= 253 && s.split('.').all(label)
}

/// Whether `key` is a valid label key (`[prefix/]name`).
pub fn is_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_subdomain(prefix) && is_name(name),
        None => is_name(key),
    }
}

/// Whether `value` is a valid label value (empty is).
pub fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_name(value)
}

/// What makes `selector` one the API server would refuse to evaluate (`field` prefixes each
/// problem, e.g. `spec.namespaceSelector`); empty when it is valid. [`matches`] evaluates an
/// invalid selector as matching nothing, so a caller that must not fail open checks this first.
pub fn problems(selector: &LabelSelector, field: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in selector.match_labels.iter().flatten() {
        if !is_label_key(k) {
            out.push(format!("{field}.matchLabels key {k:?} is not a valid label key"));
        }
        if !is_label_value(v) {
            out.push(format!(
                "{field}.matchLabels[{k:?}] value {v:?} is not a valid label value"
            ));
        }
    }
    for (i, e) in selector.match_expressions.iter().flatten().enumerate() {
        let at = format!("{field}.matchExpressions[{i}]");
        if !is_label_key(&e.key) {
            out.push(format!("{at}.key {:?} is not a valid label key", e.key));
        }
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => out.push(format!(
                "{at}.values must not be empty for operator {}",
                e.operator
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                out.push(format!("{at}.values must be empty for operator {}", e.operator))
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => out.push(format!(
                "{at}.operator {other:?} is not one of {}",
                OPERATORS.join(", ")
            )),
        }
        for v in values.iter().filter(|v| !is_label_value(v)) {
            out.push(format!("{at}.values entry {v:?} is not a valid label value"));
        }
    }
    out
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

    #[test]
    fn problems_name_every_invalid_part() {
        let sel = |ml: &[(&str, &str)], ex: Vec<LabelSelectorRequirement>| LabelSelector {
            match_labels: Some(labels(ml)),
            match_expressions: Some(ex),
        };
        let valid = sel(
            &[("tenant", "a"), ("example.com/tier", ""), ("a.b_c-d", "x.y")],
            vec![
                expr("tier", "In", &["gold"]),
                expr("kubernetes.io/metadata.name", "NotIn", &["kube-system"]),
                expr("tenant", "Exists", &[]),
                expr("gone", "DoesNotExist", &[]),
            ],
        );
        assert_eq!(problems(&valid, "spec.namespaceSelector"), Vec::<String>::new());
        let bad = sel(
            &[("tenant ", "a"), ("ok", "-bad"), ("Bad_Prefix.com/x", "v")],
            vec![
                expr("tenant", "exists", &[]),
                expr("tier", "In", &[]),
                expr("tier", "Exists", &["gold"]),
                expr("t", "NotIn", &["no way"]),
            ],
        );
        assert_eq!(
            problems(&bad, "s"),
            [
                "s.matchLabels key \"Bad_Prefix.com/x\" is not a valid label key",
                "s.matchLabels[\"ok\"] value \"-bad\" is not a valid label value",
                "s.matchLabels key \"tenant \" is not a valid label key",
                "s.matchExpressions[0].operator \"exists\" is not one of In, NotIn, Exists, DoesNotExist",
                "s.matchExpressions[1].values must not be empty for operator In",
                "s.matchExpressions[2].values must be empty for operator Exists",
                "s.matchExpressions[3].values entry \"no way\" is not a valid label value",
            ]
        );
        assert!(is_label_key(&"a".repeat(63)) && !is_label_key(&"a".repeat(64)));
    }
}
