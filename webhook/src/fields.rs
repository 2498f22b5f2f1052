//! The few fields some rules read straight from an object's JSON text: an ops request's
//! annotations and `spec.timeout` on the admission hot path (CREATE), without building a
//! `serde_json::Value` of the whole object. Odd shapes fall back to a parse into a Value.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

#[derive(Deserialize, Default)]
struct Meta<'a> {
    #[serde(borrow, default)]
    annotations: Option<BTreeMap<Cow<'a, str>, Cow<'a, str>>>,
}

#[derive(Deserialize, Default)]
struct Spec<'a> {
    #[serde(borrow, default)]
    timeout: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct Object<'a> {
    #[serde(borrow, default)]
    metadata: Option<Meta<'a>>,
    #[serde(borrow, default)]
    spec: Option<Spec<'a>>,
}

/// An ops request's annotations and `spec.timeout` (a number reads as its text, as the rules'
/// views read numbers; anything else that is not a string as absent-but-invalid text).
#[derive(Debug, Default, PartialEq)]
pub struct OpsFields {
    pub annotations: Vec<(String, String)>,
    pub timeout: Option<String>,
}

impl OpsFields {
    /// The annotations as the shared rule takes them.
    pub fn annotation_pairs(&self) -> Vec<(&str, &str)> {
        self.annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads [`OpsFields`] from an object's text (absent object: nothing).
pub fn ops_fields(raw: Option<&RawValue>) -> OpsFields {
    let Some(raw) = raw else {
        return OpsFields::default();
    };
    match serde_json::from_str::<Object<'_>>(raw.get()) {
        Ok(o) => OpsFields {
            annotations: o
                .metadata
                .and_then(|m| m.annotations)
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            timeout: o
                .spec
                .and_then(|s| s.timeout)
                .and_then(|t| serde_json::from_str::<Value>(t.get()).ok())
                .filter(|t| !t.is_null())
                .map(|t| text_of(&t)),
        },
        Err(_) => from_value(&serde_json::from_str(raw.get()).unwrap_or(Value::Null)),
    }
}

fn from_value(obj: &Value) -> OpsFields {
    let annotations = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), text_of(v)))
        .collect();
    OpsFields {
        annotations,
        timeout: obj.pointer("/spec/timeout").filter(|t| !t.is_null()).map(text_of),
    }
}

/// `spec.resources.requests.storage` of a PVC, as written.
pub fn pvc_request(obj: &Value) -> Option<String> {
    obj.pointer("/spec/resources/requests/storage").map(text_of)
}

/// `spec.storage.resources.requests.storage` of a database, as written.
pub fn database_storage(obj: &Value) -> Option<String> {
    obj.pointer("/spec/storage/resources/requests/storage")
        .map(text_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn reads_annotations_and_timeout_in_every_shape() {
        let o = raw(
            r#"{"metadata":{"name":"x","annotations":{"volops.dev/a":"1","b\"q":"2"}},"spec":{"timeout":"300"}}"#,
        );
        assert_eq!(
            ops_fields(Some(&o)),
            OpsFields {
                annotations: vec![("b\"q".into(), "2".into()), ("volops.dev/a".into(), "1".into())],
                timeout: Some("300".into()),
            }
        );
        let n = raw(r#"{"spec":{"timeout":300}}"#);
        assert_eq!(ops_fields(Some(&n)).timeout.as_deref(), Some("300"));
        let none = raw(r#"{"spec":{"timeout":null},"metadata":{}}"#);
        assert_eq!(ops_fields(Some(&none)), OpsFields::default());
        // Not what the API server would send (a number as an annotation): still read.
        let odd = raw(r#"{"metadata":{"annotations":{"volops.dev/a":1}},"spec":{"timeout":true}}"#);
        assert_eq!(
            ops_fields(Some(&odd)),
            OpsFields {
                annotations: vec![("volops.dev/a".into(), "1".into())],
                timeout: Some("true".into()),
            }
        );
        assert_eq!(ops_fields(None), OpsFields::default());
    }
}
