//! Kubernetes' protobuf wire format for built-in kinds (what kubectl and client-go's typed
//! clients send): the `k8s\0` envelope around `runtime.Unknown`, decoded into (and encoded from)
//! the same JSON objects the JSON API stores. See tests/sandbox/WIRE-FORMATS.md.

mod decode;
mod encode;
pub mod negotiate;
mod schema;
mod special;

use serde_json::Value;

/// `application/vnd.kubernetes.protobuf`
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// The 4 bytes before every protobuf-encoded object.
pub const MAGIC: [u8; 4] = *b"k8s\0";

const UNKNOWN: &str = "apimachinery.pkg.runtime.Unknown";

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Malformed(String),
    #[error("no protobuf serialization for {api_version}, Kind={kind}")]
    NotBuiltin { api_version: String, kind: String },
}

impl From<prost::DecodeError> for WireError {
    fn from(e: prost::DecodeError) -> Self {
        WireError::Malformed(e.to_string())
    }
}

/// Decodes an enveloped object into its JSON form, `apiVersion` and `kind` included.
pub fn decode_object(bytes: &[u8]) -> Result<Value, WireError> {
    let body = bytes.strip_prefix(&MAGIC).ok_or_else(|| {
        WireError::Malformed(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]".into(),
        )
    })?;
    let unknown = decode::message(UNKNOWN, body)?;
    let api_version = unknown["typeMeta"]["apiVersion"].as_str().unwrap_or_default();
    let kind = unknown["typeMeta"]["kind"].as_str().unwrap_or_default();
    let encoding = unknown["contentEncoding"].as_str().unwrap_or_default();
    if !encoding.is_empty() {
        return Err(WireError::Malformed(format!(
            "unsupported content encoding {encoding:?}"
        )));
    }
    let name = schema::schema()
        .message_for(api_version, kind)
        .ok_or_else(|| WireError::NotBuiltin {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        })?;
    let raw = match unknown.get("raw").and_then(Value::as_str) {
        Some(b64) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| WireError::Malformed(e.to_string()))?
        }
        None => vec![],
    };
    let decoded = decode::message(name, &raw)?;
    let mut out = serde_json::Map::new();
    out.insert("apiVersion".into(), Value::String(api_version.to_owned()));
    out.insert("kind".into(), Value::String(kind.to_owned()));
    if let Value::Object(m) = decoded {
        out.extend(m);
    }
    Ok(Value::Object(out))
}

/// Encodes a JSON object (with `apiVersion` and `kind`) into the protobuf envelope.
pub fn encode_object(obj: &Value) -> Result<Vec<u8>, WireError> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let name = schema::schema()
        .message_for(api_version, kind)
        .ok_or_else(|| WireError::NotBuiltin {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        })?;
    let mut raw = vec![];
    encode::message(name, obj, &mut raw)?;
    let mut type_meta = vec![];
    encode::put_bytes(&mut type_meta, 1, api_version.as_bytes());
    encode::put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = MAGIC.to_vec();
    encode::put_bytes(&mut out, 1, &type_meta);
    encode::put_bytes(&mut out, 2, &raw);
    encode::put_bytes(&mut out, 3, b"");
    encode::put_bytes(&mut out, 4, b"");
    Ok(out)
}

/// One frame of a protobuf watch stream: a 4-byte big-endian length, then a `metav1.WatchEvent`
/// (without envelope) whose `object.raw` is the enveloped object.
pub fn watch_frame(event_type: &str, obj: &Value) -> Result<Vec<u8>, WireError> {
    let object = encode_object(obj)?;
    let mut raw_ext = vec![];
    encode::put_bytes(&mut raw_ext, 1, &object);
    let mut event = vec![];
    encode::put_bytes(&mut event, 1, event_type.as_bytes());
    encode::put_bytes(&mut event, 2, &raw_ext);
    let len = u32::try_from(event.len()).map_err(|_| WireError::Malformed("watch event too large".into()))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend(event);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn special_types_round_trip() {
        let obj = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "creationTimestamp": "2024-05-06T07:08:09Z",
                "labels": {"a": "b"}, "managedFields": [{"manager": "m", "operation": "Apply",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"storage": "1Gi", "cpu": "100m"}},
                "ports": [{"containerPort": 80}],
                "livenessProbe": {"httpGet": {"port": "http", "path": "/"}, "periodSeconds": 0},
                "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]}],
                "securityContext": {"runAsUser": 0}}
        });
        let bytes = encode_object(&obj).unwrap();
        assert!(bytes.starts_with(&MAGIC));
        let back = decode_object(&bytes).unwrap();
        assert_eq!(back, obj);
    }

    #[test]
    fn micro_time_bytes_and_int_or_string() {
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e"}, "eventTime": "2024-05-06T07:08:09.123456Z",
            "regarding": {"kind": "Pod", "name": "p"}, "reason": "R"});
        assert_eq!(decode_object(&encode_object(&ev).unwrap()).unwrap(), ev);
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"k": "AAEC/w=="}, "type": "Opaque"});
        assert_eq!(decode_object(&encode_object(&secret).unwrap()).unwrap(), secret);
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 81, "targetPort": "web"}]}});
        assert_eq!(decode_object(&encode_object(&svc).unwrap()).unwrap(), svc);
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let mut schema = json!({"type": "string"});
        for _ in 0..150 {
            schema = json!({"type": "array", "items": schema});
        }
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "deep"}, "spec": {"versions": [{"name": "v1",
                "schema": {"openAPIV3Schema": schema}}]}});
        let bytes = encode_object(&crd).unwrap();
        let e = decode_object(&bytes).unwrap_err();
        assert!(e.to_string().contains("nested deeper than 100"), "{e}");
        // A realistic depth decodes, and the counter is back at zero afterwards.
        let mut shallow = json!({"type": "string"});
        for _ in 0..20 {
            shallow = json!({"type": "array", "items": shallow});
        }
        let mut ok = crd.clone();
        ok["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = shallow;
        assert_eq!(decode_object(&encode_object(&ok).unwrap()).unwrap(), ok);
    }

    #[test]
    fn custom_kinds_have_no_protobuf_form() {
        let e = encode_object(&json!({"apiVersion": "example.com/v1", "kind": "Widget"})).unwrap_err();
        assert!(matches!(e, WireError::NotBuiltin { .. }));
        assert!(decode_object(b"{}").is_err());
    }
}
