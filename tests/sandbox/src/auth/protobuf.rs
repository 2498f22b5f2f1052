//! kubectl sends the bodies of `auth can-i`, `auth can-i --list`, `auth whoami` and
//! `create token` as `application/vnd.kubernetes.protobuf`. This reads exactly those kinds
//! (the `k8s\0` envelope and the fields the endpoints use) into the JSON the handlers take.

use serde_json::{Map, Value, json};

use crate::machinery::ApiError;

/// The envelope's magic prefix.
const MAGIC: &[u8] = b"k8s\0";

/// How one field of a message is read.
enum Field {
    Str(&'static str),
    Strs(&'static str),
    Int(&'static str),
    Msg(&'static str, &'static [(u64, Field)]),
}

const RESOURCE_ATTRIBUTES: &[(u64, Field)] = &[
    (1, Field::Str("namespace")),
    (2, Field::Str("verb")),
    (3, Field::Str("group")),
    (4, Field::Str("version")),
    (5, Field::Str("resource")),
    (6, Field::Str("subresource")),
    (7, Field::Str("name")),
];
const NON_RESOURCE_ATTRIBUTES: &[(u64, Field)] = &[(1, Field::Str("path")), (2, Field::Str("verb"))];
const ACCESS_REVIEW_SPEC: &[(u64, Field)] = &[
    (1, Field::Msg("resourceAttributes", RESOURCE_ATTRIBUTES)),
    (2, Field::Msg("nonResourceAttributes", NON_RESOURCE_ATTRIBUTES)),
    (3, Field::Str("user")),
    (4, Field::Strs("groups")),
    (6, Field::Str("uid")),
];
const OBJECT_META: &[(u64, Field)] = &[(1, Field::Str("name")), (3, Field::Str("namespace"))];
const ACCESS_REVIEW: &[(u64, Field)] = &[
    (1, Field::Msg("metadata", OBJECT_META)),
    (2, Field::Msg("spec", ACCESS_REVIEW_SPEC)),
];
const RULES_REVIEW: &[(u64, Field)] = &[
    (1, Field::Msg("metadata", OBJECT_META)),
    (2, Field::Msg("spec", &[(1, Field::Str("namespace"))])),
];
const BOUND_OBJECT: &[(u64, Field)] = &[
    (1, Field::Str("kind")),
    (2, Field::Str("apiVersion")),
    (3, Field::Str("name")),
    (4, Field::Str("uid")),
];
const TOKEN_REQUEST: &[(u64, Field)] = &[
    (1, Field::Msg("metadata", OBJECT_META)),
    (
        2,
        Field::Msg(
            "spec",
            &[
                (1, Field::Strs("audiences")),
                (3, Field::Msg("boundObjectRef", BOUND_OBJECT)),
                (4, Field::Int("expirationSeconds")),
            ],
        ),
    ),
];
const TOKEN_REVIEW: &[(u64, Field)] = &[
    (1, Field::Msg("metadata", OBJECT_META)),
    (
        2,
        Field::Msg("spec", &[(1, Field::Str("token")), (2, Field::Strs("audiences"))]),
    ),
];
const SELF_SUBJECT_REVIEW: &[(u64, Field)] = &[(1, Field::Msg("metadata", OBJECT_META))];

/// A protobuf varint at `*pos`.
fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// A field's value on the wire.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// (field number, value) pairs of a message (fixed-width fields are skipped).
fn fields(b: &[u8]) -> Option<Vec<(u64, Wire<'_>)>> {
    let mut out = vec![];
    let mut pos = 0;
    while pos < b.len() {
        let key = varint(b, &mut pos)?;
        let value = match key & 7 {
            0 => Wire::Varint(varint(b, &mut pos)?),
            2 => {
                let len = usize::try_from(varint(b, &mut pos)?).ok()?;
                let end = pos.checked_add(len).filter(|e| *e <= b.len())?;
                let v = &b[pos..end];
                pos = end;
                Wire::Bytes(v)
            }
            1 => {
                pos = pos.checked_add(8).filter(|e| *e <= b.len())?;
                continue;
            }
            5 => {
                pos = pos.checked_add(4).filter(|e| *e <= b.len())?;
                continue;
            }
            _ => return None,
        };
        out.push((key >> 3, value));
    }
    Some(out)
}

fn message(b: &[u8], schema: &[(u64, Field)]) -> Option<Value> {
    let mut m = Map::new();
    for (num, value) in fields(b)? {
        let Some((_, field)) = schema.iter().find(|(n, _)| *n == num) else {
            continue;
        };
        let text = |v: &[u8]| String::from_utf8(v.to_vec()).ok();
        match (field, value) {
            (Field::Str(k), Wire::Bytes(v)) => {
                m.insert((*k).into(), json!(text(v)?));
            }
            (Field::Strs(k), Wire::Bytes(v)) => {
                let list = m.entry(*k).or_insert_with(|| json!([]));
                if let Value::Array(a) = list {
                    a.push(json!(text(v)?));
                }
            }
            (Field::Int(k), Wire::Varint(n)) => {
                m.insert((*k).into(), json!(n as i64));
            }
            (Field::Msg(k, inner), Wire::Bytes(v)) => {
                m.insert((*k).into(), message(v, inner)?);
            }
            _ => return None,
        }
    }
    Some(Value::Object(m))
}

/// The JSON of a protobuf-encoded review or token request body.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )
    };
    let unknown = body.strip_prefix(MAGIC).ok_or_else(bad)?;
    let mut type_meta = (String::new(), String::new());
    let mut raw: &[u8] = &[];
    for (num, value) in fields(unknown).ok_or_else(bad)? {
        match (num, value) {
            (1, Wire::Bytes(tm)) => {
                let tm =
                    message(tm, &[(1, Field::Str("apiVersion")), (2, Field::Str("kind"))]).ok_or_else(bad)?;
                type_meta = (
                    tm["apiVersion"].as_str().unwrap_or_default().to_owned(),
                    tm["kind"].as_str().unwrap_or_default().to_owned(),
                );
            }
            (2, Wire::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    let schema = match type_meta.1.as_str() {
        "SelfSubjectAccessReview" | "SubjectAccessReview" | "LocalSubjectAccessReview" => ACCESS_REVIEW,
        "SelfSubjectRulesReview" => RULES_REVIEW,
        "TokenRequest" => TOKEN_REQUEST,
        "TokenReview" => TOKEN_REVIEW,
        "SelfSubjectReview" => SELF_SUBJECT_REVIEW,
        _ => return Err(bad()),
    };
    let mut obj = message(raw, schema).ok_or_else(bad)?;
    obj["apiVersion"] = json!(type_meta.0);
    obj["kind"] = json!(type_meta.1);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(num: u64, bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![((num << 3) | 2) as u8, bytes.len() as u8];
        v.extend_from_slice(bytes);
        v
    }

    #[test]
    fn reads_a_self_subject_access_review() {
        let attrs = [ld(1, b"demo"), ld(2, b"get"), ld(5, b"pods"), ld(6, b"log")].concat();
        let spec = ld(1, &attrs);
        let raw = [ld(1, &[]), ld(2, &spec), ld(3, &[])].concat();
        let tm = [
            ld(1, b"authorization.k8s.io/v1"),
            ld(2, b"SelfSubjectAccessReview"),
        ]
        .concat();
        let body = [MAGIC.to_vec(), ld(1, &tm), ld(2, &raw)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(v["kind"], "SelfSubjectAccessReview");
        assert_eq!(
            v["spec"]["resourceAttributes"],
            json!({"namespace": "demo", "verb": "get", "resource": "pods", "subresource": "log"})
        );
        assert_eq!(decode(b"{}").unwrap_err().code, 400);
        assert_eq!(decode(&[MAGIC, &[0x0a, 0x40]].concat()).unwrap_err().code, 400);
    }

    #[test]
    fn reads_a_token_request() {
        let spec = [ld(1, b"api"), ld(1, b"vault"), vec![4 << 3, 0xe8, 0x07]].concat();
        let raw = [ld(1, &[]), ld(2, &spec)].concat();
        let tm = [ld(1, b"authentication.k8s.io/v1"), ld(2, b"TokenRequest")].concat();
        let v = decode(&[MAGIC.to_vec(), ld(1, &tm), ld(2, &raw)].concat()).unwrap();
        assert_eq!(
            v["spec"],
            json!({"audiences": ["api", "vault"], "expirationSeconds": 1000})
        );
    }
}
