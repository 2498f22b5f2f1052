//! `as=Table` responses: built-in columns and CRD additionalPrinterColumns.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::api::Req;
use crate::registry::ResourceInfo;

#[path = "table_nodes.rs"]
mod nodes;

/// Table options from the query (`includeObject`).
pub struct TableOpts {
    include: String,
}

impl TableOpts {
    pub fn from_query(q: &HashMap<String, String>) -> Self {
        TableOpts {
            include: q
                .get("includeObject")
                .cloned()
                .unwrap_or_else(|| "Metadata".into()),
        }
    }
}

pub fn table(info: &ResourceInfo, objs: &[Arc<Value>], rv: &str, req: &Req) -> Value {
    table_with(info, objs, rv, &TableOpts::from_query(&req.query))
}

struct Col {
    name: String,
    ty: String,
    format: String,
    priority: i64,
    description: String,
    cell: Box<dyn Fn(&Value) -> Value>,
}

fn col(name: &str, ty: &str, cell: impl Fn(&Value) -> Value + 'static) -> Col {
    Col {
        name: name.into(),
        ty: ty.into(),
        format: if name == "Name" {
            "name".into()
        } else {
            String::new()
        },
        priority: 0,
        description: String::new(),
        cell: Box::new(cell),
    }
}

fn s(v: &Value) -> Value {
    match v {
        Value::Null => json!("<none>"),
        Value::String(_) => v.clone(),
        other => json!(other.to_string()),
    }
}

/// kube's age of a timestamp (`translateTimestampSince`, `duration.HumanDuration`).
pub fn age(ts: &str) -> String {
    let Ok(t) = ts.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    human_duration(jiff::Timestamp::now().as_second() - t.as_second())
}

/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration` for whole seconds.
fn human_duration(secs: i64) -> String {
    let with = |big: i64, unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{unit}")
        } else {
            format!("{big}{unit}{small}{small_unit}")
        }
    };
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        return with(minutes, "m", secs % 60, "s");
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        return with(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return with(hours / 24, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return with(hours / 24 / 365, "y", (hours / 24) % 365, "d");
    }
    format!("{}y", hours / 24 / 365)
}

/// kube's Event columns (both Event APIs print the stored core form).
fn event_columns() -> Vec<Col> {
    let seen = |o: &Value| -> Value {
        let ts = [
            &o["series"]["lastObservedTime"],
            &o["lastTimestamp"],
            &o["eventTime"],
        ]
        .into_iter()
        .find_map(Value::as_str)
        .unwrap_or("");
        if ts.is_empty() {
            json!("<unknown>")
        } else {
            json!(age(ts))
        }
    };
    let mut cols = vec![
        col("Last Seen", "string", seen),
        col("Type", "string", |o| json!(o["type"].as_str().unwrap_or(""))),
        col("Reason", "string", |o| json!(o["reason"].as_str().unwrap_or(""))),
        col("Object", "string", |o| {
            let r = &o["involvedObject"];
            json!(format!(
                "{}/{}",
                r["kind"].as_str().unwrap_or("").to_lowercase(),
                r["name"].as_str().unwrap_or("")
            ))
        }),
        col("Message", "string", |o| {
            json!(o["message"].as_str().unwrap_or(""))
        }),
    ];
    let mut name = col("Name", "string", |o| s(&o["metadata"]["name"]));
    name.priority = 1;
    cols.push(name);
    cols
}

fn builtin_columns(info: &ResourceInfo) -> Vec<Col> {
    if info.plural == "events" && (info.group.is_empty() || info.group == "events.k8s.io") {
        return event_columns();
    }
    if info.group.is_empty() && info.plural == "nodes" {
        return nodes::node_columns();
    }
    let mut cols = vec![col("Name", "string", |o| s(&o["metadata"]["name"]))];
    let entries = |v: &Value| v.as_object().map_or(0, |m| m.len());
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "configmaps") => {
            cols.push(col("Data", "integer", move |o| {
                json!(entries(&o["data"]) + entries(&o["binaryData"]))
            }));
        }
        ("", "secrets") => {
            cols.push(col("Type", "string", |o| json!(o["type"].as_str().unwrap_or(""))));
            cols.push(col("Data", "integer", move |o| json!(entries(&o["data"]))));
        }
        ("", "pods") => {
            cols.push(col("Ready", "string", |o| {
                let cs = o["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let total = o["spec"]["containers"].as_array().map(Vec::len).unwrap_or(0);
                let ready = cs.iter().filter(|c| c["ready"] == json!(true)).count();
                json!(format!("{ready}/{total}"))
            }));
            cols.push(col("Status", "string", |o| {
                if !o["metadata"]["deletionTimestamp"].is_null() {
                    return json!("Terminating");
                }
                s(&o["status"]["phase"])
            }));
            cols.push(col("Restarts", "integer", |o| {
                let n: i64 = o["status"]["containerStatuses"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|c| c["restartCount"].as_i64()).sum())
                    .unwrap_or(0);
                json!(n)
            }));
        }
        ("", "persistentvolumeclaims") => {
            cols.push(col("Status", "string", |o| s(&o["status"]["phase"])));
            cols.push(col("Volume", "string", |o| {
                match o["spec"]["volumeName"].as_str() {
                    Some(v) => json!(v),
                    None => json!(""),
                }
            }));
            cols.push(col(
                "Capacity",
                "string",
                |o| match o["status"]["capacity"]["storage"].as_str() {
                    Some(v) => json!(v),
                    None => json!(""),
                },
            ));
            cols.push(col("Access Modes", "string", |o| {
                let modes: Vec<&str> = o["status"]["accessModes"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).map(short_mode).collect())
                    .unwrap_or_default();
                json!(modes.join(","))
            }));
            cols.push(col("StorageClass", "string", |o| {
                s(&o["spec"]["storageClassName"])
            }));
        }
        ("", "persistentvolumes") => {
            cols.push(col("Capacity", "string", |o| {
                s(&o["spec"]["capacity"]["storage"])
            }));
            cols.push(col("Status", "string", |o| s(&o["status"]["phase"])));
            cols.push(col("Claim", "string", |o| {
                let r = &o["spec"]["claimRef"];
                match (r["namespace"].as_str(), r["name"].as_str()) {
                    (Some(n), Some(c)) => json!(format!("{n}/{c}")),
                    _ => json!(""),
                }
            }));
            cols.push(col("StorageClass", "string", |o| {
                s(&o["spec"]["storageClassName"])
            }));
        }
        ("apps", "statefulsets") => {
            cols.push(col("Ready", "string", |o| {
                json!(format!(
                    "{}/{}",
                    o["status"]["readyReplicas"].as_i64().unwrap_or(0),
                    o["spec"]["replicas"].as_i64().unwrap_or(1)
                ))
            }));
        }
        ("", "namespaces") => cols.push(col("Status", "string", |o| s(&o["status"]["phase"]))),
        ("storage.k8s.io", "storageclasses") => {
            cols.push(col("Provisioner", "string", |o| s(&o["provisioner"])));
            cols.push(col("AllowVolumeExpansion", "string", |o| {
                json!(o["allowVolumeExpansion"].as_bool().unwrap_or(false).to_string())
            }));
        }
        _ => {}
    }
    cols.push(col("Age", "string", |o| {
        json!(age(o["metadata"]["creationTimestamp"].as_str().unwrap_or("")))
    }));
    cols
}

fn age_column() -> Col {
    col("Age", "string", |o| {
        json!(age(o["metadata"]["creationTimestamp"].as_str().unwrap_or("")))
    })
}

fn short_mode(m: &str) -> &str {
    match m {
        "ReadWriteOnce" => "RWO",
        "ReadOnlyMany" => "ROX",
        "ReadWriteMany" => "RWX",
        "ReadWriteOncePod" => "RWOP",
        other => other,
    }
}

fn crd_columns(info: &ResourceInfo) -> Vec<Col> {
    let mut cols = vec![col("Name", "string", |o| s(&o["metadata"]["name"]))];
    if info.printer_columns.is_empty() {
        cols.push(col("Age", "date", |o| {
            json!(age(o["metadata"]["creationTimestamp"].as_str().unwrap_or("")))
        }));
        return cols;
    }
    for pc in &info.printer_columns {
        let path = pc["jsonPath"].as_str().unwrap_or("").to_string();
        let ty = pc["type"].as_str().unwrap_or("string").to_string();
        let date = ty == "date";
        let mut c = col(pc["name"].as_str().unwrap_or(""), &ty, move |o| {
            let v = match jsonpath(o, &path) {
                Value::Array(a) if a.len() == 1 => a[0].clone(),
                other => other,
            };
            // kube-apiserver prints date columns as ages (ConvertToHumanReadableDateType).
            match v {
                Value::String(ts) if date => json!(age(&ts)),
                other => other,
            }
        });
        c.format = pc["format"].as_str().unwrap_or("").into();
        c.priority = pc["priority"].as_i64().unwrap_or(0);
        c.description = pc["description"].as_str().unwrap_or("").into();
        cols.push(c);
    }
    cols
}

/// A small JSONPath subset: `.a.b`, `.a[0]`, `.a[*].b`, `.a[?(@.k=="v")].b`.
pub fn jsonpath(obj: &Value, path: &str) -> Value {
    let p = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    let mut cur = vec![obj.clone()];
    let mut rest = p;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            cur = cur.iter().filter_map(|v| v.get(key).cloned()).collect();
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return Value::Null;
            };
            let inner = &r[..end];
            rest = &r[end + 1..];
            let items: Vec<Value> = cur
                .iter()
                .filter_map(|v| v.as_array().cloned())
                .flatten()
                .collect();
            cur = if inner == "*" {
                items
            } else if let Ok(i) = inner.parse::<usize>() {
                cur.iter().filter_map(|v| v.get(i).cloned()).collect()
            } else if let Some(f) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (k, want) = f.split_once("==").unwrap_or((f, ""));
                let want = want.trim().trim_matches(|c| c == '"' || c == '\'');
                items
                    .into_iter()
                    .filter(|it| {
                        let mut x = it;
                        for seg in k.trim().split('.') {
                            x = &x[seg];
                        }
                        x.as_str().map(String::from).unwrap_or_else(|| x.to_string()) == want
                    })
                    .collect()
            } else {
                return Value::Null;
            };
        } else {
            return Value::Null;
        }
    }
    match cur.len() {
        0 => Value::Null,
        1 => cur.swap_remove(0),
        _ => Value::Array(cur),
    }
}

pub fn table_with(info: &ResourceInfo, objs: &[Arc<Value>], rv: &str, opts: &TableOpts) -> Value {
    let cols = if info.custom {
        crd_columns(info)
    } else {
        builtin_columns(info)
    };
    let defs: Vec<Value> = cols
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.ty, "format": c.format,
                "description": c.description, "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let cells: Vec<Value> = cols.iter().map(|c| (c.cell)(o)).collect();
            let object = match opts.include.as_str() {
                "None" => Value::Null,
                "Object" => crate::meta::for_output(info, o),
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"].clone()}),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": defs, "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectls() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 7200, "3d2h"),
            (400 * 86400, "400d"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn jsonpath_subset() {
        let o = json!({"spec": {"a": [1, 2]}, "status": {"conditions": [
            {"type": "Ready", "status": "True"}, {"type": "Other", "status": "False"}]}});
        assert_eq!(jsonpath(&o, ".spec.a[1]"), json!(2));
        assert_eq!(
            jsonpath(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            json!("True")
        );
        assert_eq!(
            jsonpath(&o, ".status.conditions[*].type"),
            json!(["Ready", "Other"])
        );
        assert_eq!(jsonpath(&o, ".spec.missing"), Value::Null);
    }
}
