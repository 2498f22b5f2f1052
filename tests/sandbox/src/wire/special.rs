//! The messages whose JSON form is not an object of their fields: Quantity, Time, MicroTime,
//! Duration, IntOrString, RawExtension, FieldsV1, apiextensions' JSON and JSONSchemaPropsOr*,
//! and the ExtraValue string lists.

use serde_json::Value;

use super::WireError;
use super::decode::{bytes_of, fields, string_of, varint_of};
use super::encode::{put_bytes, put_message, put_varint};
use super::schema::META;

const QUANTITY: &str = "apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "apimachinery.pkg.util.intstr.IntOrString";
const RAW_EXTENSION: &str = "apimachinery.pkg.runtime.RawExtension";
const APIEXT: &str = "apiextensions_apiserver.pkg.apis.apiextensions.v1";

enum Special {
    /// A message holding one string in field 1 (Quantity, Duration).
    Text,
    /// seconds + nanos, as RFC 3339 with whole seconds (Time) or microseconds (MicroTime).
    Time {
        micro: bool,
    },
    IntOrString,
    /// Embedded JSON bytes in field 1 (RawExtension, FieldsV1, apiextensions JSON).
    RawJson,
    /// A schema (field `schema_tag`) or an array (field `array_tag`) / bool (field 1).
    SchemaOrArray,
    SchemaOrBool,
    SchemaOrStrings,
    /// `repeated string items = 1` serialised as a plain array.
    StringList,
}

fn special(name: &str) -> Option<Special> {
    let (module, short) = name.rsplit_once('.')?;
    Some(match (module, short) {
        _ if name == QUANTITY => Special::Text,
        (m, "Duration") if m == META => Special::Text,
        (m, "Time") if m == META => Special::Time { micro: false },
        (m, "MicroTime") if m == META => Special::Time { micro: true },
        (m, "FieldsV1") if m == META => Special::RawJson,
        _ if name == INT_OR_STRING => Special::IntOrString,
        _ if name == RAW_EXTENSION => Special::RawJson,
        (m, "Json") if m == APIEXT => Special::RawJson,
        (m, "JsonSchemaPropsOrArray") if m == APIEXT => Special::SchemaOrArray,
        (m, "JsonSchemaPropsOrBool") if m == APIEXT => Special::SchemaOrBool,
        (m, "JsonSchemaPropsOrStringArray") if m == APIEXT => Special::SchemaOrStrings,
        (_, "ExtraValue") => Special::StringList,
        _ => return None,
    })
}

fn schema_props() -> String {
    format!("{APIEXT}.JsonSchemaProps")
}

/// The JSON form of a special message, or None for ordinary ones.
pub fn decode(name: &str, buf: &[u8]) -> Result<Option<Value>, WireError> {
    let Some(kind) = special(name) else {
        return Ok(None);
    };
    let fs = fields(buf)?;
    let field = |tag: u32| fs.iter().filter(move |(t, _)| *t == tag).map(|(_, r)| r);
    Ok(Some(match kind {
        Special::Text => match field(1).next_back() {
            Some(r) => Value::String(string_of(r)?),
            None => Value::String(String::new()),
        },
        Special::Time { micro } => {
            let secs = field(1).next_back().map(varint_of).transpose()?.unwrap_or(0) as i64;
            let nanos = field(2).next_back().map(varint_of).transpose()?.unwrap_or(0) as i64 as i32;
            if secs == 0 && nanos == 0 {
                Value::Null
            } else {
                Value::String(format_time(secs, nanos, micro)?)
            }
        }
        Special::IntOrString => {
            let ty = field(1).next_back().map(varint_of).transpose()?.unwrap_or(0);
            if ty == 1 {
                let s = field(3).next_back().map(string_of).transpose()?;
                Value::String(s.unwrap_or_default())
            } else {
                let n = field(2).next_back().map(varint_of).transpose()?.unwrap_or(0);
                Value::from(n as i64 as i32)
            }
        }
        Special::RawJson => match field(1).next_back() {
            None => Value::Null,
            Some(r) => raw_json(bytes_of(r)?)?,
        },
        Special::SchemaOrArray => match field(1).next_back() {
            Some(r) => super::decode::message(&schema_props(), bytes_of(r)?)?,
            None => Value::Array(
                field(2)
                    .map(|r| super::decode::message(&schema_props(), bytes_of(r)?))
                    .collect::<Result<_, _>>()?,
            ),
        },
        Special::SchemaOrBool => match field(2).next_back() {
            Some(r) => super::decode::message(&schema_props(), bytes_of(r)?)?,
            None => Value::Bool(field(1).next_back().map(varint_of).transpose()?.unwrap_or(0) != 0),
        },
        Special::SchemaOrStrings => match field(1).next_back() {
            Some(r) => super::decode::message(&schema_props(), bytes_of(r)?)?,
            None => Value::Array(
                field(2)
                    .map(|r| string_of(r).map(Value::String))
                    .collect::<Result<_, _>>()?,
            ),
        },
        Special::StringList => Value::Array(
            field(1)
                .map(|r| string_of(r).map(Value::String))
                .collect::<Result<_, _>>()?,
        ),
    }))
}

/// Embedded bytes: JSON, or a nested protobuf envelope.
fn raw_json(bytes: &[u8]) -> Result<Value, WireError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    if bytes.starts_with(&super::MAGIC) {
        return super::decode_object(bytes);
    }
    serde_json::from_slice(bytes).map_err(|e| WireError::Malformed(format!("embedded JSON: {e}")))
}

/// kube's `Time` (RFC 3339, seconds) and `MicroTime` (RFC 3339 with 6 fractional digits), UTC.
fn format_time(secs: i64, nanos: i32, micro: bool) -> Result<String, WireError> {
    let ts = jiff::Timestamp::new(secs, if micro { nanos } else { 0 })
        .map_err(|e| WireError::Malformed(format!("time out of range: {e}")))?;
    let base = ts.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    Ok(if micro {
        format!("{base}.{:06}Z", ts.subsec_nanosecond() / 1000)
    } else {
        format!("{base}Z")
    })
}

fn parse_time(s: &str) -> Result<(i64, i32), WireError> {
    let ts: jiff::Timestamp = s
        .parse()
        .map_err(|e| WireError::Malformed(format!("time {s:?}: {e}")))?;
    Ok((ts.as_second(), ts.subsec_nanosecond()))
}

/// Writes the body of a special message for `v`; false for ordinary messages.
pub fn encode(name: &str, v: &Value, out: &mut Vec<u8>) -> Result<bool, WireError> {
    let Some(kind) = special(name) else {
        return Ok(false);
    };
    match kind {
        Special::Text => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(WireError::Malformed(format!("{name} must be a string"))),
            };
            put_bytes(out, 1, s.as_bytes());
        }
        Special::Time { .. } => {
            if let Some(s) = v.as_str() {
                let (secs, nanos) = parse_time(s)?;
                put_varint(out, 1, secs as u64);
                put_varint(out, 2, nanos as i64 as u64);
            }
        }
        Special::IntOrString => match v {
            Value::Number(n) => {
                put_varint(out, 1, 0);
                put_varint(out, 2, n.as_i64().unwrap_or(0) as u64);
            }
            Value::String(s) => {
                put_varint(out, 1, 1);
                put_bytes(out, 3, s.as_bytes());
            }
            _ => {
                return Err(WireError::Malformed(
                    "IntOrString must be a number or a string".into(),
                ));
            }
        },
        Special::RawJson => {
            if !v.is_null() {
                let bytes = serde_json::to_vec(v).map_err(|e| WireError::Malformed(e.to_string()))?;
                put_bytes(out, 1, &bytes);
            }
        }
        Special::SchemaOrArray => match v {
            Value::Array(items) => {
                for i in items {
                    put_message(out, 2, &schema_props(), i)?;
                }
            }
            other => put_message(out, 1, &schema_props(), other)?,
        },
        Special::SchemaOrBool => match v {
            Value::Bool(b) => put_varint(out, 1, u64::from(*b)),
            other => {
                put_varint(out, 1, 1);
                put_message(out, 2, &schema_props(), other)?;
            }
        },
        Special::SchemaOrStrings => match v {
            Value::Array(items) => {
                for i in items {
                    put_bytes(out, 2, i.as_str().unwrap_or_default().as_bytes());
                }
            }
            other => put_message(out, 1, &schema_props(), other)?,
        },
        Special::StringList => {
            for i in v.as_array().into_iter().flatten() {
                put_bytes(out, 1, i.as_str().unwrap_or_default().as_bytes());
            }
        }
    }
    Ok(true)
}
