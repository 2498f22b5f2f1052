//! `metav1.LabelSelector` matching (matchLabels and matchExpressions).

use serde_json::{Map, Value};

/// Whether `labels` satisfy `selector`. An absent or empty selector matches everything; an
/// unknown operator is an error, as kube fails to convert such a selector.
pub fn matches(selector: Option<&Value>, labels: Option<&Map<String, Value>>) -> Result<bool, String> {
    let Some(sel) = selector.filter(|s| !s.is_null()) else {
        return Ok(true);
    };
    let empty = Map::new();
    let labels = labels.unwrap_or(&empty);
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            if label(k) != v.as_str() {
                return Ok(false);
            }
        }
    }
    for expr in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> = expr
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let op = expr.get("operator").and_then(Value::as_str).unwrap_or("");
        let ok = match op {
            "In" => label(key).is_some_and(|l| values.contains(&l)),
            "NotIn" => label(key).is_none_or(|l| !values.contains(&l)),
            "Exists" => labels.contains_key(key),
            "DoesNotExist" => !labels.contains_key(key),
            other => return Err(format!("{other:?} is not a valid label selector operator")),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(sel: Value, labels: Value) -> Result<bool, String> {
        matches(Some(&sel), labels.as_object())
    }

    #[test]
    fn all_operators() {
        let l = json!({"env": "prod", "tier": "db"});
        assert_eq!(m(json!({}), l.clone()), Ok(true));
        assert_eq!(m(json!({"matchLabels": {"env": "prod"}}), l.clone()), Ok(true));
        assert_eq!(m(json!({"matchLabels": {"env": "dev"}}), l.clone()), Ok(false));
        let e = |op: &str, vals: Value| json!({"matchExpressions": [{"key": "env", "operator": op, "values": vals}]});
        assert_eq!(m(e("In", json!(["prod", "x"])), l.clone()), Ok(true));
        assert_eq!(m(e("In", json!(["x"])), l.clone()), Ok(false));
        assert_eq!(m(e("NotIn", json!(["prod"])), l.clone()), Ok(false));
        assert_eq!(m(e("NotIn", json!(["prod"])), json!({})), Ok(true));
        assert_eq!(m(e("Exists", json!(null)), l.clone()), Ok(true));
        assert_eq!(m(e("DoesNotExist", json!(null)), l.clone()), Ok(false));
        assert!(m(e("Near", json!(null)), l).is_err());
        assert_eq!(matches(None, None), Ok(true));
    }
}
