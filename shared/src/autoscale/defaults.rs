//! An autoscaler's defaults as KubeDB's webhook sets them (docs/KUBEDB.md, "Storage
//! autoscalers"): `opsRequestOptions.apply: IfReady` and `maxRetries: 1` (a 0 too), and in every
//! storage section present `trigger: Off`, `usageThreshold: 80`, `scalingThreshold: 50`,
//! `scalingRules` of one open rule at `scalingThreshold` percent, the rules sorted by
//! `appliesUpto` with the open ones last. `compute` and every other field are left as they are.
//! Worked on the JSON, so a field no type knows is never touched.

use json_patch::{AddOperation, Patch, PatchOperation, jsonptr::PointerBuf};
use serde_json::{Map, Value, json};

use super::growth::{DEFAULT_SCALING_THRESHOLD, DEFAULT_USAGE_THRESHOLD, parse_applies_upto};
use crate::api::autoscaler::{TRIGGER_OFF, storage_keys};
use crate::descriptor::DatabaseKind;

fn is_unset(v: Option<&Value>) -> bool {
    v.is_none_or(Value::is_null)
}

fn set_if_unset(map: &mut Map<String, Value>, key: &str, value: Value) {
    if is_unset(map.get(key)) {
        map.insert(key.to_owned(), value);
    }
}

/// The rules sorted as KubeDB's webhook sorts them, or as they are when one does not parse
/// (the validating webhook refuses it).
fn sorted_rules(rules: &[Value]) -> Vec<Value> {
    let mut bounded = Vec::new();
    let mut open = Vec::new();
    for rule in rules {
        let upto = rule
            .get("appliesUpto")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match parse_applies_upto(upto) {
            Ok(Some(bytes)) => bounded.push((bytes, rule.clone())),
            Ok(None) => open.push(rule.clone()),
            Err(_) => return rules.to_vec(),
        }
    }
    // A stable sort keeps equal sizes in their order, as KubeDB's sort.Slice need not.
    bounded.sort_by_key(|(bytes, _)| *bytes);
    bounded.into_iter().map(|(_, r)| r).chain(open).collect()
}

fn default_section(section: &mut Map<String, Value>) {
    set_if_unset(section, "trigger", json!(TRIGGER_OFF));
    set_if_unset(section, "usageThreshold", json!(DEFAULT_USAGE_THRESHOLD));
    set_if_unset(section, "scalingThreshold", json!(DEFAULT_SCALING_THRESHOLD));
    if is_unset(section.get("scalingRules")) {
        let percent = section
            .get("scalingThreshold")
            .and_then(Value::as_i64)
            .unwrap_or(i64::from(DEFAULT_SCALING_THRESHOLD));
        section.insert(
            "scalingRules".into(),
            json!([{"appliesUpto": "", "threshold": format!("{percent}pc")}]),
        );
    } else if let Some(Value::Array(rules)) = section.get_mut("scalingRules") {
        *rules = sorted_rules(rules);
    }
}

fn default_options(spec: &mut Map<String, Value>) {
    if !matches!(spec.get("opsRequestOptions"), Some(Value::Object(_))) {
        spec.insert("opsRequestOptions".into(), json!({}));
    }
    if let Some(Value::Object(options)) = spec.get_mut("opsRequestOptions") {
        set_if_unset(options, "apply", json!("IfReady"));
        if is_unset(options.get("maxRetries")) || options.get("maxRetries") == Some(&json!(0)) {
            options.insert("maxRetries".into(), json!(1));
        }
    }
}

/// The autoscaler `obj` of `kind` with KubeDB's defaults filled in.
pub fn defaulted(kind: DatabaseKind, obj: &Value) -> Value {
    let mut obj = obj.clone();
    let Some(Value::Object(spec)) = obj.get_mut("spec") else {
        return obj;
    };
    default_options(spec);
    if let Some(Value::Object(storage)) = spec.get_mut("storage") {
        for key in storage_keys(kind) {
            if let Some(Value::Object(section)) = storage.get_mut(*key) {
                default_section(section);
            }
        }
    }
    obj
}

/// The JSON patch from `obj` to [`defaulted`]`(obj)`: an `add` for each member set (an `add`
/// replaces a member that is there, as a null or a reordered `scalingRules`).
pub fn defaults_patch(kind: DatabaseKind, obj: &Value) -> Patch {
    let full = defaulted(kind, obj);
    let mut ops = Vec::new();
    changes(obj, &full, &mut Vec::new(), &mut ops);
    Patch(ops)
}

fn changes(obj: &Value, full: &Value, path: &mut Vec<String>, ops: &mut Vec<PatchOperation>) {
    let Value::Object(full) = full else { return };
    for (key, value) in full {
        path.push(key.clone());
        match obj.get(key) {
            Some(there @ Value::Object(_)) if value.is_object() => changes(there, value, path, ops),
            Some(there) if there == value => {}
            _ => ops.push(PatchOperation::Add(AddOperation {
                path: PointerBuf::from_tokens(path.iter()),
                value: value.clone(),
            })),
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code
    use super::*;

    fn patched(kind: DatabaseKind, mut obj: Value) -> (Value, Value) {
        let patch = defaults_patch(kind, &obj);
        let as_json = serde_json::to_value(&patch).unwrap();
        json_patch::patch(&mut obj, &patch).unwrap();
        (obj, as_json)
    }

    #[test]
    fn kubedbs_docs_autoscaler_gets_only_additions() {
        let (obj, patch) = patched(
            DatabaseKind::Redis,
            json!({"spec": {"databaseRef": {"name": "rd-standalone"},
                   "storage": {"standalone": {"expansionMode": "Online", "trigger": "On",
                                              "usageThreshold": 60, "scalingThreshold": 50}}}}),
        );
        assert_eq!(
            patch,
            json!([
                {"op": "add", "path": "/spec/opsRequestOptions", "value": {"apply": "IfReady", "maxRetries": 1}},
                {"op": "add", "path": "/spec/storage/standalone/scalingRules",
                 "value": [{"appliesUpto": "", "threshold": "50pc"}]}
            ])
        );
        assert_eq!(obj["spec"]["storage"]["standalone"]["usageThreshold"], 60);
    }

    #[test]
    fn fills_sections_and_options_sorts_rules_and_leaves_the_rest() {
        let (obj, patch) = patched(
            DatabaseKind::Redis,
            json!({"spec": {"databaseRef": {"name": "rd"}, "opsRequestOptions": {"maxRetries": 0, "timeout": "5m"},
                   "compute": {"cluster": {"trigger": "On"}},
                   "storage": {"cluster": {"expansionMode": "Offline", "trigger": null, "scalingThreshold": 20,
                               "scalingRules": [{"appliesUpto": "", "threshold": "5Gi"}, {"appliesUpto": "1Ti", "threshold": "10pc"},
                                                {"appliesUpto": "100Gi", "threshold": "30pc"}]},
                               "unknown": {"trigger": "On"}}}}),
        );
        let cluster = &obj["spec"]["storage"]["cluster"];
        assert_eq!(
            (&cluster["trigger"], &cluster["usageThreshold"]),
            (&json!("Off"), &json!(80))
        );
        assert_eq!(cluster["scalingThreshold"], 20);
        let order: Vec<&str> = cluster["scalingRules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["appliesUpto"].as_str().unwrap())
            .collect();
        assert_eq!(order, ["100Gi", "1Ti", ""]);
        assert_eq!(
            obj["spec"]["opsRequestOptions"],
            json!({"maxRetries": 1, "timeout": "5m", "apply": "IfReady"})
        );
        assert_eq!(obj["spec"]["compute"], json!({"cluster": {"trigger": "On"}}));
        assert_eq!(obj["spec"]["storage"]["unknown"], json!({"trigger": "On"}));
        assert_eq!(patch.as_array().unwrap().len(), 5, "{patch}");
        // Defaulting again changes nothing.
        assert_eq!(defaults_patch(DatabaseKind::Redis, &obj).0.len(), 0);
    }

    #[test]
    fn zookeeper_section_and_rules_that_do_not_parse() {
        let (obj, _) = patched(
            DatabaseKind::ZooKeeper,
            json!({"spec": {"databaseRef": {"name": "zk"},
                   "storage": {"zookeeper": {"expansionMode": "Online", "scalingThreshold": 30,
                               "scalingRules": [{"appliesUpto": "soon", "threshold": "1Gi"}, {"appliesUpto": "", "threshold": "5pc"}]}}}}),
        );
        let zk = &obj["spec"]["storage"]["zookeeper"];
        assert_eq!(
            zk["scalingRules"][0]["appliesUpto"], "soon",
            "left for the validator to refuse"
        );
        let (obj, _) = patched(
            DatabaseKind::ZooKeeper,
            json!({"spec": {"databaseRef": {"name": "zk"}, "storage": {"zookeeper": {"scalingThreshold": 30}}}}),
        );
        assert_eq!(
            obj["spec"]["storage"]["zookeeper"]["scalingRules"],
            json!([{"appliesUpto": "", "threshold": "30pc"}])
        );
        // No spec: nothing to default.
        assert!(
            defaults_patch(DatabaseKind::ZooKeeper, &json!({"metadata": {}}))
                .0
                .is_empty()
        );
    }
}
