//! Server-side apply field sets in the `FieldsV1` form kube writes into `managedFields`:
//! path elements `f:<field>`, `k:<json key object>`, `v:<json value>`, `i:<index>`, and `.`
//! marking a node that is itself a member when it also has children.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::smp::{Ctx, ListStrategy};

/// A path of `FieldsV1` elements, e.g. `["f:spec", "f:containers", "k:{\"name\":\"c\"}"]`.
pub type FieldPath = Vec<String>;

/// A set of owned field paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(pub BTreeSet<FieldPath>);

/// Metadata fields that apply never owns (fieldmanager's stripMeta).
const STRIPPED_META: [&str; 9] = [
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "generation",
    "managedFields",
    "resourceVersion",
    "deletionTimestamp",
];

#[derive(Default)]
struct Node {
    member: bool,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, c) in &self.children {
            m.insert(k.clone(), c.to_json());
        }
        Value::Object(m)
    }
}

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, p: &FieldPath) -> bool {
        self.0.contains(p)
    }

    /// True when no other member lies below `p`.
    pub fn is_leaf(&self, p: &FieldPath) -> bool {
        !self.0.iter().any(|q| q.len() > p.len() && q.starts_with(p))
    }

    /// True when `p` or anything below it is a member.
    pub fn owns_under(&self, p: &FieldPath) -> bool {
        self.0.iter().any(|q| q.starts_with(p))
    }

    /// Parses a `fieldsV1` object.
    pub fn from_fields_v1(v: &Value) -> Self {
        fn walk(v: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
            let Some(m) = v.as_object() else { return };
            for (k, child) in m {
                if k == "." {
                    out.insert(prefix.clone());
                    continue;
                }
                prefix.push(k.clone());
                if child.as_object().is_some_and(Map::is_empty) {
                    out.insert(prefix.clone());
                } else {
                    walk(child, prefix, out);
                }
                prefix.pop();
            }
        }
        let mut out = BTreeSet::new();
        walk(v, &mut Vec::new(), &mut out);
        Self(out)
    }

    /// Renders the set as a `fieldsV1` object.
    pub fn to_fields_v1(&self) -> Value {
        let mut root = Node::default();
        for p in &self.0 {
            let mut n = &mut root;
            for e in p {
                n = n.children.entry(e.clone()).or_default();
            }
            n.member = true;
        }
        root.to_json()
    }

    /// The fields an apply configuration sets (structured-merge-diff's `ToFieldSet`): scalars,
    /// atomic lists, empty maps and list items; `apiVersion`, `kind` and server-owned metadata
    /// are left out.
    pub(crate) fn from_applied(obj: &Value, ctx: Ctx<'_>) -> Self {
        let mut out = BTreeSet::new();
        if let Some(m) = obj.as_object() {
            for (k, v) in m {
                if k == "apiVersion" || k == "kind" {
                    continue;
                }
                if k == "metadata"
                    && let Some(meta) = v.as_object()
                {
                    let kept: Map<String, Value> = meta
                        .iter()
                        .filter(|(mk, _)| !STRIPPED_META.contains(&mk.as_str()))
                        .map(|(mk, mv)| (mk.clone(), mv.clone()))
                        .collect();
                    if !kept.is_empty() {
                        walk_map(ctx, &kept, &mut vec!["f:metadata".into()], &mut out);
                    }
                    continue;
                }
                walk_value(ctx, None, k, v, &mut Vec::new(), &mut out);
            }
        }
        Self(out)
    }
}

/// Walks an object's fields; the parent field name picks list strategies below it.
fn walk_map(ctx: Ctx<'_>, m: &Map<String, Value>, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    let field = prefix
        .last()
        .and_then(|e| e.strip_prefix("f:"))
        .map(str::to_string);
    for (k, v) in m {
        walk_value(ctx, field.as_deref(), k, v, prefix, out);
    }
}

fn walk_value(
    ctx: Ctx<'_>,
    parent: Option<&str>,
    key: &str,
    v: &Value,
    prefix: &mut FieldPath,
    out: &mut BTreeSet<FieldPath>,
) {
    prefix.push(format!("f:{key}"));
    match v {
        Value::Object(m) if !m.is_empty() => walk_map(ctx, m, prefix, out),
        Value::Array(items) if !items.is_empty() => match ctx.strategy(parent, key) {
            ListStrategy::Replace => {
                out.insert(prefix.clone());
            }
            ListStrategy::MergePrimitive => {
                for it in items {
                    let mut p = prefix.clone();
                    p.push(format!("v:{it}"));
                    out.insert(p);
                }
            }
            ListStrategy::MergeKey(k) => {
                for it in items {
                    match (it.get(k), it.as_object()) {
                        (Some(kv), Some(im)) => {
                            prefix.push(format!("k:{}", json!({ k: kv })));
                            out.insert(prefix.clone());
                            for (ik, iv) in im {
                                walk_value(ctx, Some(key), ik, iv, prefix, out);
                            }
                            prefix.pop();
                        }
                        // An item without its key cannot be tracked: own the list as a whole.
                        _ => {
                            out.insert(prefix.clone());
                        }
                    }
                }
            }
        },
        _ => {
            out.insert(prefix.clone());
        }
    }
    prefix.pop();
}

/// `.spec.containers[name="c"].image`, as structured-merge-diff prints a path.
pub fn path_string(p: &FieldPath) -> String {
    let mut s = String::new();
    for e in p {
        if let Some(f) = e.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = e.strip_prefix("k:") {
            let parsed: Value = serde_json::from_str(k).unwrap_or(Value::Null);
            let parts: Vec<String> = parsed
                .as_object()
                .map(|m| m.iter().map(|(n, v)| format!("{n}={v}")).collect())
                .unwrap_or_default();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = e.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        } else if let Some(i) = e.strip_prefix("i:") {
            s.push_str(&format!("[{i}]"));
        }
    }
    s
}

fn matches_element(e: &str, item: &Value) -> bool {
    if let Some(k) = e.strip_prefix("k:") {
        let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(k) else {
            return false;
        };
        keys.iter().all(|(n, v)| item.get(n) == Some(v))
    } else if let Some(v) = e.strip_prefix("v:") {
        serde_json::from_str::<Value>(v).is_ok_and(|v| &v == item)
    } else {
        false
    }
}

fn step<'a>(cur: &'a Value, e: &str) -> Option<&'a Value> {
    if let Some(f) = e.strip_prefix("f:") {
        return cur.get(f);
    }
    if let Some(i) = e.strip_prefix("i:") {
        return cur.get(i.parse::<usize>().ok()?);
    }
    cur.as_array()?.iter().find(|it| matches_element(e, it))
}

/// The value at a field path, if present.
pub fn get_path<'a>(obj: &'a Value, p: &[String]) -> Option<&'a Value> {
    p.iter().try_fold(obj, |cur, e| step(cur, e))
}

/// Removes the value at a field path; returns whether something was removed.
pub fn remove_path(obj: &mut Value, p: &[String]) -> bool {
    let Some((last, parent_path)) = p.split_last() else {
        return false;
    };
    let mut cur = obj;
    for e in parent_path {
        let next = if let Some(f) = e.strip_prefix("f:") {
            cur.get_mut(f)
        } else if let Some(i) = e.strip_prefix("i:") {
            i.parse::<usize>().ok().and_then(|i| cur.get_mut(i))
        } else {
            cur.as_array_mut()
                .and_then(|a| a.iter_mut().find(|it| matches_element(e, it)))
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        return cur.as_object_mut().and_then(|m| m.remove(f)).is_some();
    }
    match cur.as_array_mut() {
        Some(a) => {
            let before = a.len();
            a.retain(|it| !matches_element(last, it));
            a.len() != before
        }
        None => false,
    }
}
