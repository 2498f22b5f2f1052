//! Server-side apply with field ownership, and `managedFields` bookkeeping for other writes.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::fieldset::{FieldPath, FieldSet, get_path, path_string, remove_path};
use crate::smp::{Ctx, is_builtin_group, merge};

/// One `managedFields` entry with its parsed set.
struct Entry {
    meta: Value,
    set: FieldSet,
}

impl Entry {
    fn manager(&self) -> &str {
        self.meta.get("manager").and_then(Value::as_str).unwrap_or("")
    }
    fn operation(&self) -> &str {
        self.meta.get("operation").and_then(Value::as_str).unwrap_or("")
    }
    fn subresource(&self) -> &str {
        self.meta.get("subresource").and_then(Value::as_str).unwrap_or("")
    }
    fn is(&self, manager: &str, operation: &str) -> bool {
        self.manager() == manager && self.operation() == operation && self.subresource().is_empty()
    }

    /// fieldmanager's printManager.
    fn describe(&self) -> String {
        let mut s = crate::error::go_quote(self.manager());
        if !self.subresource().is_empty() {
            s.push_str(&format!(
                " with subresource {}",
                crate::error::go_quote(self.subresource())
            ));
        }
        if self.operation() == "Update" {
            let api = self.meta.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            s.push_str(&format!(" using {api}"));
            if let Some(t) = self.meta.get("time").and_then(Value::as_str) {
                s.push_str(&format!(" at {t}"));
            }
        }
        s
    }

    fn into_value(mut self) -> Value {
        if let Some(m) = self.meta.as_object_mut() {
            m.insert("fieldsType".into(), json!("FieldsV1"));
            m.insert("fieldsV1".into(), self.set.to_fields_v1());
        }
        self.meta
    }
}

fn entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    meta: e.clone(),
                    set: FieldSet::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null)),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn new_entry(manager: &str, operation: &str, api_version: &str, now: &str, set: FieldSet) -> Entry {
    Entry {
        meta: json!({"manager": manager, "operation": operation, "apiVersion": api_version, "time": now}),
        set,
    }
}

fn set_managed_fields(obj: &mut Value, list: Vec<Entry>) {
    let list: Vec<Value> = list
        .into_iter()
        .filter(|e| !e.set.is_empty())
        .map(Entry::into_value)
        .collect();
    if let Some(m) = obj.as_object_mut() {
        let meta = m.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            if list.is_empty() {
                meta.remove("managedFields");
            } else {
                meta.insert("managedFields".into(), Value::Array(list));
            }
        }
    }
}

fn conflict_error(conflicts: &[(String, FieldPath)]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": path_string(p)}))
        .collect();
    let message = if let [(m, p)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {m}: {}",
            path_string(p)
        )
    } else {
        let mut managers: Vec<&String> = conflicts.iter().map(|(m, _)| m).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for (_, p) in conflicts.iter().filter(|(cm, _)| cm == m) {
                lines.push(format!("- {}", path_string(p)));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let mut e = ApiError::new(409, "Conflict", message);
    e.details = Some(json!({"causes": causes}));
    e
}

/// Applies an apply configuration (YAML or JSON) for `manager`. `live` is the stored object
/// (None on create). Fields owned by another manager with a different value are a 409
/// conflict unless `force`, which takes them over. Fields this manager applied before and no
/// longer applies are removed unless another manager owns them.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &[u8],
    manager: &str,
    force: bool,
    group: &str,
    kind: &str,
    now_rfc3339: &str,
) -> Result<Value, ApiError> {
    let applied: Value = serde_yaml::from_slice(applied)
        .map_err(|e| ApiError::bad_request(&format!("error decoding YAML: {e}")))?;
    if !applied.is_object() {
        return Err(ApiError::bad_request("apply configuration must be an object"));
    }
    if manager.is_empty() {
        return Err(ApiError::bad_request(
            "PATCH, application/apply-patch+yaml requests must have fieldManager set",
        ));
    }
    let ctx = Ctx {
        kind,
        builtin: is_builtin_group(group),
    };
    let applied_set = FieldSet::from_applied(&applied, ctx);
    let api_version = applied
        .get("apiVersion")
        .or_else(|| live.and_then(|l| l.get("apiVersion")))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut all = live.map(entries).unwrap_or_default();
    let prev = all
        .iter()
        .position(|e| e.is(manager, "Apply"))
        .map(|i| all.remove(i).set);

    let mut conflicts: Vec<(String, FieldPath)> = Vec::new();
    let mut taken: Vec<(usize, FieldPath)> = Vec::new();
    if let Some(live) = live {
        for (i, other) in all.iter().enumerate() {
            for p in applied_set.0.intersection(&other.set.0) {
                if !applied_set.is_leaf(p) {
                    continue;
                }
                let (old, new) = (get_path(live, p), get_path(&applied, p));
                if old.is_some() && old != new {
                    conflicts.push((other.describe(), p.clone()));
                    taken.push((i, p.clone()));
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&conflicts));
    }
    for (i, p) in taken {
        if let Some(e) = all.get_mut(i) {
            e.set.0.remove(&p);
        }
    }

    let mut result = live.cloned().unwrap_or_else(|| json!({}));
    if let Some(prev) = prev {
        let others = FieldSet(all.iter().flat_map(|e| e.set.0.iter().cloned()).collect());
        // Shallow paths first: a whole list item goes before its key field could vanish.
        for p in prev.0.difference(&applied_set.0) {
            if !others.owns_under(p) {
                remove_path(&mut result, p);
            }
        }
    }
    let mut body = applied.clone();
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        if live.is_some() {
            for k in ["uid", "resourceVersion", "creationTimestamp", "generation"] {
                meta.remove(k);
            }
        }
    }
    merge(ctx, &mut result, &body);
    all.push(new_entry(
        manager,
        "Apply",
        &api_version,
        now_rfc3339,
        applied_set,
    ));
    set_managed_fields(&mut result, all);
    Ok(result)
}

/// All fields of an object, as an Update manager would own them.
fn object_fields(obj: &Value, ctx: Ctx<'_>) -> FieldSet {
    FieldSet::from_applied(obj, ctx)
}

/// Records a non-apply write (create, update, patch) by `manager` in `obj`'s `managedFields`:
/// the fields it added or changed become its `Update` entry and leave other managers' sets.
pub fn record_update_manager(obj: &mut Value, old: Option<&Value>, manager: &str, now_rfc3339: &str) {
    if manager.is_empty() {
        return;
    }
    // Built-in list keys are the better guess for ownership paths; CRs get atomic lists.
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
    let group = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|a| a.rsplit_once('/').map(|(g, _)| g.to_string()))
        .unwrap_or_default();
    let ctx = Ctx {
        kind: &kind,
        builtin: is_builtin_group(&group),
    };
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let new_fields = object_fields(obj, ctx);
    let changed: FieldSet = match old {
        None => new_fields.clone(),
        Some(old) => FieldSet(
            new_fields
                .0
                .iter()
                .filter(|p| new_fields.is_leaf(p) && get_path(old, p) != get_path(obj, p))
                .cloned()
                .collect(),
        ),
    };
    let mut all = old.map(entries).unwrap_or_else(|| entries(obj));
    for e in &mut all {
        // Fields that no longer exist are owned by nobody.
        let mine = e.manager() == manager;
        e.set
            .0
            .retain(|p| new_fields.contains(p) && (mine || !changed.contains(p)));
    }
    match all.iter_mut().find(|e| e.is(manager, "Update")) {
        Some(e) => {
            e.set.0.extend(changed.0);
            if let Some(m) = e.meta.as_object_mut() {
                m.insert("time".into(), json!(now_rfc3339));
                m.insert("apiVersion".into(), json!(api_version));
            }
        }
        None => all.push(new_entry(manager, "Update", &api_version, now_rfc3339, changed)),
    }
    set_managed_fields(obj, all);
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: &str = "2026-01-01T00:00:00Z";
    const T1: &str = "2026-01-01T00:01:00Z";

    fn sts(replicas: i64, labels: Value, containers: Value) -> Vec<u8> {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "ns", "labels": labels},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": containers}}}})
        .to_string()
        .into_bytes()
    }

    fn apply(live: Option<&Value>, body: &[u8], mgr: &str, force: bool) -> Result<Value, ApiError> {
        server_side_apply(live, body, mgr, force, "apps", "StatefulSet", T1)
    }

    fn ok(r: Result<Value, ApiError>) -> Value {
        r.unwrap_or_else(|e| panic!("{}", e.message))
    }

    fn entry<'a>(obj: &'a Value, mgr: &str) -> Option<&'a Value> {
        obj.pointer("/metadata/managedFields")?
            .as_array()?
            .iter()
            .find(|e| e["manager"] == mgr)
    }

    #[test]
    fn create_records_apply_entry_in_fieldsv1_shape() {
        let obj = ok(apply(
            None,
            &sts(3, json!({"app": "db"}), json!([{"name": "db", "image": "r:7"}])),
            "ops",
            false,
        ));
        assert_eq!(obj["spec"]["replicas"], 3);
        let e = entry(&obj, "ops").cloned().unwrap_or_default();
        assert_eq!(e["operation"], "Apply");
        assert_eq!(e["apiVersion"], "apps/v1");
        assert_eq!(e["fieldsType"], "FieldsV1");
        assert_eq!(e["time"], T1);
        assert_eq!(
            e["fieldsV1"],
            json!({"f:metadata": {"f:labels": {"f:app": {}}},
                   "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers":
                       {"k:{\"name\":\"db\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
        );
    }

    fn live_with_editor() -> Value {
        let mut obj = ok(apply(
            None,
            &sts(3, json!({"app": "db"}), json!([{"name": "db", "image": "r:7"}])),
            "ops",
            false,
        ));
        let old = obj.clone();
        obj["spec"]["replicas"] = json!(4);
        record_update_manager(&mut obj, Some(&old), "kubectl-edit", T0);
        obj
    }

    #[test]
    fn update_manager_takes_changed_fields() {
        let obj = live_with_editor();
        let e = entry(&obj, "kubectl-edit").cloned().unwrap_or_default();
        assert_eq!(e["operation"], "Update");
        assert_eq!(e["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
        let ops = entry(&obj, "ops").cloned().unwrap_or_default();
        assert!(ops["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    }

    #[test]
    fn conflict_unless_force() {
        let live = live_with_editor();
        let body = sts(5, json!({"app": "db"}), json!([{"name": "db", "image": "r:7"}]));
        let err = apply(Some(&live), &body, "ops", false)
            .err()
            .unwrap_or_else(|| ApiError::bad_request("no error"));
        assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
        assert_eq!(
            err.message,
            format!(
                "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1 at {T0}: .spec.replicas"
            )
        );
        assert_eq!(
            err.details.as_ref().map(|d| d["causes"][0]["field"].clone()),
            Some(json!(".spec.replicas"))
        );
        let forced = ok(apply(Some(&live), &body, "ops", true));
        assert_eq!(forced["spec"]["replicas"], 5);
        assert!(
            entry(&forced, "kubectl-edit").is_none(),
            "editor lost its only field"
        );
        // Applying the value the other manager set is no conflict; both share it.
        let same = sts(4, json!({"app": "db"}), json!([{"name": "db", "image": "r:7"}]));
        let shared = ok(apply(Some(&live), &same, "ops", false));
        assert!(entry(&shared, "kubectl-edit").is_some());
    }

    #[test]
    fn many_conflicts_are_listed_per_manager() {
        let mut live = live_with_editor();
        let old = live.clone();
        live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("r:8");
        record_update_manager(&mut live, Some(&old), "hpa", T0);
        let body = sts(5, json!({"app": "db"}), json!([{"name": "db", "image": "r:9"}]));
        let err = apply(Some(&live), &body, "ops", false)
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert_eq!(
            err,
            format!(
                "Apply failed with 2 conflicts: conflicts with \"hpa\" using apps/v1 at {T0}:\n- .spec.template.spec.containers[name=\"db\"].image\nconflicts with \"kubectl-edit\" using apps/v1 at {T0}:\n- .spec.replicas"
            )
        );
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_owned_elsewhere() {
        let first = sts(
            3,
            json!({"app": "db", "tier": "x", "keep": "y"}),
            json!([{"name": "db", "image": "r:7"}, {"name": "side", "image": "s:1"}]),
        );
        let mut live = ok(apply(None, &first, "ops", false));
        let old = live.clone();
        live["metadata"]["labels"]["keep"] = json!("z");
        record_update_manager(&mut live, Some(&old), "other", T0);
        let second = sts(3, json!({"app": "db"}), json!([{"name": "db", "image": "r:7"}]));
        let out = ok(apply(Some(&live), &second, "ops", false));
        assert_eq!(out["metadata"]["labels"], json!({"app": "db", "keep": "z"}));
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "db", "image": "r:7"}])
        );
    }

    #[test]
    fn yaml_body_and_custom_resource_lists_are_atomic() {
        let yaml = b"apiVersion: kubedb.com/v1\nkind: Redis\nmetadata:\n  name: r\nspec:\n  args: [a, b]\n";
        let obj = server_side_apply(None, yaml, "ops", false, "kubedb.com", "Redis", T0)
            .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(obj["spec"]["args"], json!(["a", "b"]));
        assert_eq!(
            entry(&obj, "ops").map(|e| e["fieldsV1"].clone()),
            Some(json!({"f:spec": {"f:args": {}}}))
        );
        let bad = server_side_apply(None, b"- a\n", "ops", false, "kubedb.com", "Redis", T0);
        assert_eq!(bad.map_err(|e| e.code), Err(400));
    }

    #[test]
    fn finalizers_are_a_set() {
        let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","finalizers":["a/b"]}}"#;
        let obj = server_side_apply(None, body, "ops", false, "", "ConfigMap", T0)
            .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(
            entry(&obj, "ops").map(|e| e["fieldsV1"].clone()),
            Some(json!({"f:metadata": {"f:finalizers": {"v:\"a/b\"": {}}}}))
        );
    }
}
