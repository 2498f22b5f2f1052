//! Kubernetes label selectors: kube's [`Selector`] evaluates them; this file adds the checks
//! the API server makes before it evaluates one. kube's conversion from a `LabelSelector`
//! refuses only an unknown operator and `In`/`NotIn` without a list: it takes an invalid key or
//! value, `In: []` and `Exists` with values, and its error names no field. A policy with such a
//! selector must be refused at admission with what is wrong where (docs/ARCHITECTURE.md).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::Selector;

/// `selector` as kube's [`Selector`] when the API server would accept it; otherwise every
/// problem with it, each prefixed by `field` (e.g. `spec.namespaceSelector`).
pub fn parse(selector: &LabelSelector, field: &str) -> Result<Selector, Vec<String>> {
    let problems = problems(selector, field);
    if !problems.is_empty() {
        return Err(problems);
    }
    Selector::try_from(selector.clone()).map_err(|e| vec![format!("{field}: {e}")])
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
/// problem, e.g. `spec.namespaceSelector`); empty when it is valid.
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
    use kube::core::SelectorExt;
    use std::collections::BTreeMap;

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
        // Some(matches) for a valid selector, None for one the API server would refuse.
        let eval = |s: LabelSelector| parse(&s, "s").ok().map(|s| s.matches(&ns));
        assert_eq!(eval(LabelSelector::default()), Some(true));
        assert_eq!(eval(sel(&[("tenant", "a")], vec![])), Some(true));
        assert_eq!(eval(sel(&[("tenant", "b")], vec![])), Some(false));
        assert_eq!(
            eval(sel(&[], vec![expr("tier", "In", &["gold", "silver"])])),
            Some(true)
        );
        assert_eq!(eval(sel(&[], vec![expr("tier", "In", &["silver"])])), Some(false));
        assert_eq!(eval(sel(&[], vec![expr("absent", "In", &["x"])])), Some(false));
        assert_eq!(
            eval(sel(&[], vec![expr("tier", "NotIn", &["gold"])])),
            Some(false)
        );
        assert_eq!(eval(sel(&[], vec![expr("absent", "NotIn", &["x"])])), Some(true));
        assert_eq!(eval(sel(&[], vec![expr("tenant", "Exists", &[])])), Some(true));
        assert_eq!(eval(sel(&[], vec![expr("absent", "Exists", &[])])), Some(false));
        assert_eq!(
            eval(sel(&[], vec![expr("tenant", "DoesNotExist", &[])])),
            Some(false)
        );
        assert_eq!(
            eval(sel(&[], vec![expr("absent", "DoesNotExist", &[])])),
            Some(true)
        );
        // matchLabels and matchExpressions are ANDed.
        let both = sel(&[("tenant", "a")], vec![expr("tier", "NotIn", &["gold"])]);
        assert_eq!(eval(both), Some(false));
        // Refused, never evaluated: an unknown operator, and what kube's conversion would take.
        assert_eq!(eval(sel(&[], vec![expr("tenant", "Bogus", &[])])), None);
        assert_eq!(eval(sel(&[], vec![expr("tier", "In", &[])])), None);
        assert_eq!(eval(sel(&[], vec![expr("tenant", "Exists", &["a"])])), None);
        assert_eq!(eval(sel(&[("bad key", "a")], vec![])), None);
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
