//! [`OpsRequestView`] straight from JSON text, without building a `serde_json::Value` of the
//! whole object: the admission hot path reads only eight fields of it.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::OpsRequestView;
use crate::descriptor::DatabaseKind;

/// A field as `facts::text` reads it: a string, or a number as its decimal text; anything else
/// (null, bool, array, object) reads as absent.
#[derive(Default)]
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<Text, E> {
        Ok(Text(Some(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Text, E> {
        Ok(Text(Some(v)))
    }
    // Numbers are written the way serde_json writes a `Value::Number`.
    fn visit_u64<E>(self, v: u64) -> Result<Text, E> {
        Ok(Text(Some(serde_json::Number::from(v).to_string())))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Text, E> {
        Ok(Text(Some(serde_json::Number::from(v).to_string())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Text, E> {
        Ok(Text(serde_json::Number::from_f64(v).map(|n| n.to_string())))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Text, E> {
        Ok(Text(None))
    }
    fn visit_unit<E>(self) -> Result<Text, E> {
        Ok(Text(None))
    }
    fn visit_none<E>(self) -> Result<Text, E> {
        Ok(Text(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Text(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text(None))
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Meta {
    name: Text,
    namespace: Text,
    creation_timestamp: Text,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Named {
    name: Text,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Expansion {
    mode: Text,
    redis: Text,
    node: Text,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Spec {
    #[serde(rename = "type")]
    type_: Text,
    database_ref: Option<Named>,
    volume_expansion: Option<Expansion>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    phase: Text,
}

#[derive(Deserialize)]
struct Object {
    #[serde(default)]
    metadata: Option<Meta>,
    #[serde(default)]
    spec: Option<Spec>,
    #[serde(default)]
    status: Option<Status>,
}

impl OpsRequestView {
    /// The same view as [`OpsRequestView::from_json`] of the parsed `json`, or `None` when the
    /// text does not have the plain shape (then parse it and use `from_json`).
    pub fn from_json_text(kind: DatabaseKind, json: &str) -> Option<Self> {
        let o: Object = serde_json::from_str(json).ok()?;
        let meta = o.metadata.unwrap_or_default();
        let spec = o.spec.unwrap_or_default();
        let expansion = spec.volume_expansion.unwrap_or_default();
        let size = match kind {
            DatabaseKind::Redis => expansion.redis,
            DatabaseKind::ZooKeeper => expansion.node,
        };
        Some(Self {
            namespace: meta.namespace.0.unwrap_or_default(),
            name: meta.name.0.unwrap_or_default(),
            type_: spec.type_.0,
            database: spec.database_ref.and_then(|r| r.name.0),
            mode: expansion.mode.0,
            size: size.0,
            phase: o.status.and_then(|s| s.phase.0).filter(|p| !p.is_empty()),
            created: meta.creation_timestamp.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// Whenever the text path answers, it answers what `from_json` answers.
    fn same(kind: DatabaseKind, v: &Value) -> bool {
        let text = v.to_string();
        let fast = OpsRequestView::from_json_text(kind, &text);
        if let Some(fast) = &fast {
            assert_eq!(*fast, OpsRequestView::from_json(kind, v), "{text}");
        }
        fast.is_some()
    }

    #[test]
    fn reads_what_from_json_reads() {
        let full = json!({"metadata": {"name": "g", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z",
                                       "labels": {"a": "b"}},
                          "spec": {"type": "VolumeExpansion", "databaseRef": {"name": "rd"},
                                   "volumeExpansion": {"mode": "Online", "redis": "2Gi", "node": "3Gi"},
                                   "apply": "IfReady"},
                          "status": {"phase": "Pending", "conditions": [{"type": "x"}]}});
        let v = OpsRequestView::from_json_text(DatabaseKind::Redis, &full.to_string()).unwrap();
        assert_eq!(
            (v.size.as_deref(), v.database.as_deref()),
            (Some("2Gi"), Some("rd"))
        );
        let z = OpsRequestView::from_json_text(DatabaseKind::ZooKeeper, &full.to_string()).unwrap();
        assert_eq!(z.size.as_deref(), Some("3Gi"));
        for kind in [DatabaseKind::Redis, DatabaseKind::ZooKeeper] {
            assert!(same(kind, &full));
            for (pointer, odd, plain) in [
                ("/spec/volumeExpansion/redis", json!(2), true),
                ("/spec/volumeExpansion/redis", json!(-2), true),
                ("/spec/volumeExpansion/redis", json!(2.5), true),
                ("/spec/volumeExpansion/redis", json!(1e21), true),
                ("/spec/volumeExpansion/node", json!(18446744073709551615u64), true),
                ("/spec/volumeExpansion/redis", json!(null), true),
                ("/spec/volumeExpansion/redis", json!(true), true),
                ("/spec/volumeExpansion/redis", json!(["2Gi"]), true),
                ("/spec/volumeExpansion/redis", json!({"a": 1}), true),
                ("/spec/volumeExpansion", json!(null), true),
                ("/spec/databaseRef", json!(null), true),
                ("/spec/databaseRef/name", json!(7), true),
                ("/spec/type", json!(null), true),
                ("/spec", json!(null), true),
                ("/metadata/name", json!({"x": 1}), true),
                ("/metadata/namespace", json!(null), true),
                ("/metadata", json!(null), true),
                ("/status/phase", json!(""), true),
                ("/status", json!(null), true),
                // Shapes a struct cannot take: the caller falls back to `from_json`.
                ("/spec/volumeExpansion", json!("Online"), false),
                ("/spec", json!([1, 2]), false),
                ("/status", json!("Pending"), false),
            ] {
                let mut v = full.clone();
                if let Some(slot) = v.pointer_mut(pointer) {
                    *slot = odd.clone();
                }
                assert_eq!(same(kind, &v), plain, "{pointer} = {odd}");
            }
            assert!(same(kind, &json!({})));
            assert!(same(kind, &json!({"spec": {"volumeExpansion": {"mode": 1.0}}})));
        }
        assert!(OpsRequestView::from_json_text(DatabaseKind::Redis, "[1]").is_none());
        let dup = r#"{"spec": {"type": "A", "type": "B"}}"#;
        assert!(OpsRequestView::from_json_text(DatabaseKind::Redis, dup).is_none());
    }
}
