//! Label and field selectors as the list/watch query parameters give them.

use serde_json::Value;

use crate::machinery::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector (all requirements must hold).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Req>);

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn bad(sel: &str) -> ApiError {
    ApiError::bad_request(&format!("unable to parse requirement: invalid selector: {sel:?}"))
}

fn set_values(rest: &str, whole: &str) -> Result<Vec<String>, ApiError> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| bad(whole))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = vec![];
        for part in split_top(s) {
            let p = part.trim();
            if p.is_empty() {
                continue;
            }
            if let Some(k) = p.strip_prefix('!') {
                reqs.push(Req::NotExists(k.trim().to_string()));
            } else if let Some((k, v)) = p.split_once("!=") {
                reqs.push(Req::NotEq(k.trim().into(), v.trim().into()));
            } else if let Some((k, v)) = p.split_once("==") {
                reqs.push(Req::Eq(k.trim().into(), v.trim().into()));
            } else if let Some((k, v)) = p.split_once('=') {
                reqs.push(Req::Eq(k.trim().into(), v.trim().into()));
            } else if let Some((k, rest)) = p.split_once(" notin ") {
                reqs.push(Req::NotIn(k.trim().into(), set_values(rest, p)?));
            } else if let Some((k, rest)) = p.split_once(" in ") {
                reqs.push(Req::In(k.trim().into(), set_values(rest, p)?));
            } else if p.contains(['(', ')', ' ', '<', '>']) {
                return Err(bad(p));
            } else {
                reqs.push(Req::Exists(p.to_string()));
            }
        }
        Ok(LabelSelector(reqs))
    }

    /// Does an object's metadata.labels satisfy the selector?
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::NotEq(k, v) => get(k) != Some(v.as_str()),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A parsed field selector: `path=value`, `path==value`, `path!=value`, comma separated.
/// By default any dotted path is looked up in the object (kube allows a fixed set per kind);
/// kinds with their own field set (Events) map and check labels and bring a resolver.
#[derive(Debug, Clone)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
    resolve: fn(&Value, &str) -> String,
}

impl Default for FieldSelector {
    fn default() -> Self {
        FieldSelector {
            reqs: vec![],
            resolve: json_path,
        }
    }
}

/// The value at a dotted JSON path, as the selector compares it.
fn json_path(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for seg in path.split('.') {
        cur = &cur[seg];
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = vec![];
        for part in s.split(',') {
            let p = part.trim();
            if p.is_empty() {
                continue;
            }
            let (k, eq, v) = if let Some((k, v)) = p.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = p.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = p.split_once('=') {
                (k, true, v)
            } else {
                return Err(ApiError::bad_request(&format!(
                    "invalid field selector: {p:?}: field selectors need an operator"
                )));
            };
            reqs.push((k.trim().to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector {
            reqs,
            resolve: json_path,
        })
    }

    /// Renames every label (kube's field label conversion); the first error wins.
    pub fn map_labels(
        mut self,
        mut f: impl FnMut(&str) -> Result<String, ApiError>,
    ) -> Result<Self, ApiError> {
        for (label, _, _) in &mut self.reqs {
            *label = f(label)?;
        }
        Ok(self)
    }

    /// Looks labels up with `resolve` instead of as JSON paths.
    pub fn with_resolver(mut self, resolve: fn(&Value, &str) -> String) -> Self {
        self.resolve = resolve;
        self
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs
            .iter()
            .all(|(path, eq, want)| ((self.resolve)(obj, path) == *want) == *eq)
    }
}

/// Both selectors of a list/watch request.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}, "status": {"phase": "Running"}})
    }

    #[test]
    fn every_label_operator() {
        let o = obj(json!({"app": "web", "tier": "db"}));
        let yes = [
            "app=web",
            "app==web",
            "app!=api",
            "app in (web, api)",
            "app notin (api)",
            "tier",
            "!missing",
            "app=web,tier in (db)",
            "missing notin (x)",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&o), "{s}");
        }
        let no = [
            "app=api",
            "app!=web",
            "app in (api)",
            "app notin (web)",
            "missing",
            "!tier",
            "missing in (x)",
        ];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&o), "{s}");
        }
    }

    #[test]
    fn bad_label_selectors_are_rejected() {
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("a b").is_err());
    }

    #[test]
    fn field_selectors() {
        let o = obj(json!({}));
        assert!(
            FieldSelector::parse("metadata.name=a,metadata.namespace=ns")
                .unwrap()
                .matches(&o)
        );
        assert!(FieldSelector::parse("status.phase!=Pending").unwrap().matches(&o));
        assert!(!FieldSelector::parse("status.phase=Pending").unwrap().matches(&o));
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
