//! Events are one store, as in kube-apiserver: `events.k8s.io/v1` Events are stored as core `v1`
//! Events and converted on the way in and out with kube's field mapping (note<->message,
//! regarding<->involvedObject, reportingController<->reportingComponent,
//! deprecatedSource/FirstTimestamp/LastTimestamp/Count<->source/firstTimestamp/lastTimestamp/count);
//! field selectors follow kube's `ToSelectableFields` and events.k8s.io's label conversions; and
//! Events expire `--event-ttl` after their last write.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::machinery::ApiError;
use crate::registry::ResourceInfo;
use crate::selectors::FieldSelector;
use crate::store::{BucketKey, Store};

/// Where both Event APIs keep their objects.
pub fn store_key() -> BucketKey {
    (String::new(), "events".into())
}

fn is_core(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "events"
}

pub fn is_events_v1(info: &ResourceInfo) -> bool {
    info.group == "events.k8s.io" && info.plural == "events"
}

/// Field pairs (core v1 name, events.k8s.io/v1 name) that only differ in name.
const RENAMED: &[(&str, &str)] = &[
    ("message", "note"),
    ("involvedObject", "regarding"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// A field and the value it has when absent.
type Always = (&'static str, fn() -> Value);

/// Fields Go's `encoding/json` always writes (no `omitempty`, or a struct): how kube-apiserver
/// answers, and what k8s-openapi's types require.
const CORE_ALWAYS: &[Always] = &[
    ("involvedObject", || json!({})),
    ("source", || json!({})),
    ("firstTimestamp", || Value::Null),
    ("lastTimestamp", || Value::Null),
    ("eventTime", || Value::Null),
    ("reportingComponent", || json!("")),
    ("reportingInstance", || json!("")),
];
const V1_ALWAYS: &[Always] = &[
    ("regarding", || json!({})),
    ("deprecatedSource", || json!({})),
    ("deprecatedFirstTimestamp", || Value::Null),
    ("deprecatedLastTimestamp", || Value::Null),
    ("eventTime", || Value::Null),
];

/// Renames fields from one form to the other; `forward` is core -> events.k8s.io.
fn convert(obj: &Value, forward: bool, always: &[Always]) -> Value {
    let Some(src) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for (k, v) in src {
        let renamed = RENAMED
            .iter()
            .find(|(core, v1)| if forward { core == k } else { v1 == k })
            .map(|(core, v1)| if forward { *v1 } else { *core });
        // A name of the other form only (e.g. `note` sent to core v1) is an unknown field.
        let foreign = RENAMED
            .iter()
            .any(|(core, v1)| if forward { v1 == k } else { core == k });
        match renamed {
            Some(name) => {
                out.insert(name.to_owned(), v.clone());
            }
            None if !foreign => {
                out.insert(k.clone(), v.clone());
            }
            None => {}
        }
    }
    // `reportingController`, `reportingInstance` and `deprecatedCount` are omitempty in v1.
    if forward {
        for k in ["reportingController", "reportingInstance"] {
            if out.get(k).is_some_and(|v| v.as_str() == Some("")) {
                out.remove(k);
            }
        }
        if out.get("deprecatedCount").is_some_and(|v| v.as_i64() == Some(0)) {
            out.remove("deprecatedCount");
        }
    }
    for (k, default) in always {
        if !out.contains_key(*k) {
            out.insert((*k).to_owned(), default());
        }
    }
    Value::Object(out)
}

/// The object as the store keeps it (events.k8s.io Events become core v1 Events).
pub fn to_storage(info: &ResourceInfo, obj: Value) -> Value {
    if !is_events_v1(info) {
        return obj;
    }
    let mut core = convert(&obj, false, CORE_ALWAYS);
    core["apiVersion"] = json!("v1");
    core["kind"] = json!("Event");
    core
}

/// The stored object in the form `info` serves (None: served as stored).
pub fn to_served(info: &ResourceInfo, stored: &Value) -> Option<Value> {
    if !is_events_v1(info) || stored["apiVersion"] == "events.k8s.io/v1" {
        return None;
    }
    Some(convert(stored, true, V1_ALWAYS))
}

/// Field labels each Event API accepts, and the core field set name each maps to
/// (kube's `AddFieldLabelConversionsForEvent` and core's Event field label conversion).
fn field_label(info: &ResourceInfo, label: &str) -> Option<&'static str> {
    const CORE: &[&str] = &[
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
        "metadata.namespace",
        "metadata.name",
    ];
    if is_core(info) {
        return CORE.iter().copied().find(|l| *l == label);
    }
    if let Some(rest) = label.strip_prefix("regarding.") {
        let core = format!("involvedObject.{rest}");
        return CORE.iter().copied().find(|l| *l == core);
    }
    match label {
        "reportingController" => Some("reportingComponent"),
        "reason" | "source" | "type" | "metadata.namespace" | "metadata.name" => {
            CORE.iter().copied().find(|l| *l == label)
        }
        _ => None,
    }
}

/// kube's `ToSelectableFields` for a stored (core v1) Event.
fn selectable_field(obj: &Value, label: &str) -> String {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    match label {
        "source" => {
            let component = text(&obj["source"]["component"]);
            if component.is_empty() {
                text(&obj["reportingComponent"])
            } else {
                component
            }
        }
        _ => {
            let mut cur = obj;
            for seg in label.split('.') {
                cur = &cur[seg];
            }
            text(cur)
        }
    }
}

/// Checks and maps an Event list/watch's field selector (400 for labels kube does not support).
pub fn field_selector(info: &ResourceInfo, sel: FieldSelector) -> Result<FieldSelector, ApiError> {
    if !is_core(info) && !is_events_v1(info) {
        return Ok(sel);
    }
    sel.map_labels(|label| {
        field_label(info, label)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::bad_request(&format!("field label not supported: {label}")))
    })
    .map(|s| s.with_resolver(selectable_field))
}

/// How often expired Events are deleted and old watch history is dropped.
pub fn reap_interval(ttl: Duration, history_age: Duration) -> Duration {
    (ttl.min(history_age) / 10).clamp(Duration::from_millis(100), Duration::from_secs(30))
}

/// Deletes expired Events and trims watch history until shutdown.
pub async fn reap(store: Arc<Store>, every: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => store.expire(std::time::Instant::now()),
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn both_forms_convert_with_kubes_field_mapping() {
        let reg = Registry::builtin();
        let v1 = reg.get("events.k8s.io", "v1", "events").unwrap();
        let written = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "ns"},
            "eventTime": "2024-01-02T03:04:05.000006Z", "action": "Resize", "reason": "Grown",
            "type": "Normal", "note": "grew", "reportingController": "volops",
            "reportingInstance": "volops-0", "regarding": {"kind": "Pod", "name": "p", "uid": "u"},
            "related": {"kind": "Node", "name": "n"}, "series": {"count": 2,
                "lastObservedTime": "2024-01-02T03:04:06.000000Z"},
            "deprecatedSource": {"component": "c"}, "deprecatedCount": 3,
        });
        let core = to_storage(v1, written.clone());
        assert_eq!(core["message"], "grew");
        assert_eq!(core["involvedObject"]["uid"], "u");
        assert_eq!(core["reportingComponent"], "volops");
        assert_eq!(core["source"]["component"], "c");
        assert_eq!(core["count"], 3);
        assert_eq!(core["firstTimestamp"], Value::Null);
        assert!(core.get("note").is_none() && core.get("regarding").is_none());
        let mut back = to_served(v1, &core).unwrap();
        back["apiVersion"] = json!("events.k8s.io/v1");
        let mut expected = written;
        expected["deprecatedFirstTimestamp"] = Value::Null;
        expected["deprecatedLastTimestamp"] = Value::Null;
        assert_eq!(back, expected);
    }

    #[test]
    fn field_labels_follow_kube() {
        let reg = Registry::builtin();
        let v1 = reg.get("events.k8s.io", "v1", "events").unwrap();
        let core = reg.get("", "v1", "events").unwrap();
        let ev = json!({"involvedObject": {"name": "p", "uid": "u"}, "reportingComponent": "rc",
            "source": {}, "reason": "R", "metadata": {"name": "e"}});
        let check =
            |info, s: &str| field_selector(info, FieldSelector::parse(s).unwrap()).map(|f| f.matches(&ev));
        assert!(check(v1, "regarding.name=p,reportingController=rc").unwrap());
        assert!(!check(v1, "regarding.uid=x").unwrap());
        assert!(check(core, "involvedObject.uid=u,source=rc,reason=R").unwrap());
        let e = check(core, "regarding.name=p").unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "field label not supported: regarding.name")
        );
        assert!(check(v1, "note=x").is_err());
    }
}
