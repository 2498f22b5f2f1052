//! Protobuf bytes of a built-in kind -> the JSON object the JSON API would store.
//!
//! Go's protobuf marshaller writes every non-pointer field, zero or not, and the apiserver then
//! stores what `encoding/json` makes of the decoded struct (`omitempty` drops zero values). The
//! wire cannot tell a non-pointer zero from a pointer set to zero, so only empty strings and
//! empty objects are dropped (unless the JSON form always carries the field): a number or bool
//! that is on the wire is kept, because for a pointer field (`replicas: 0`) the zero means
//! something, while for a non-pointer one it reads the same as absent.

use base64::Engine;
use prost::bytes::Buf;
use serde_json::{Map, Value};

use super::WireError;
use super::schema::{Field, Label, Ty, schema};
use super::special;

/// A raw field value read off the wire.
pub(super) enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Bytes(&'a [u8]),
}

fn read_field<'a>(buf: &mut &'a [u8]) -> Result<(u32, Raw<'a>), WireError> {
    let key = prost::encoding::decode_varint(buf)?;
    let tag = u32::try_from(key >> 3).map_err(|_| WireError::Malformed("field tag out of range".into()))?;
    let raw = match key & 7 {
        0 => Raw::Varint(prost::encoding::decode_varint(buf)?),
        1 => {
            if buf.remaining() < 8 {
                return Err(WireError::Malformed("truncated fixed64".into()));
            }
            Raw::Fixed64(buf.get_u64_le())
        }
        2 => {
            let len = usize::try_from(prost::encoding::decode_varint(buf)?)
                .map_err(|_| WireError::Malformed("length out of range".into()))?;
            if buf.len() < len {
                return Err(WireError::Malformed("truncated length-delimited field".into()));
            }
            let (head, tail) = buf.split_at(len);
            *buf = tail;
            Raw::Bytes(head)
        }
        5 => {
            if buf.remaining() < 4 {
                return Err(WireError::Malformed("truncated fixed32".into()));
            }
            buf.advance(4);
            Raw::Fixed32
        }
        w => return Err(WireError::Malformed(format!("unsupported wire type {w}"))),
    };
    Ok((tag, raw))
}

/// Every field of a message as (tag, raw value), in wire order.
pub(super) fn fields(mut buf: &[u8]) -> Result<Vec<(u32, Raw<'_>)>, WireError> {
    let mut out = vec![];
    while !buf.is_empty() {
        out.push(read_field(&mut buf)?);
    }
    Ok(out)
}

/// The string in a length-delimited field.
pub(super) fn string_of(raw: &Raw<'_>) -> Result<String, WireError> {
    match raw {
        Raw::Bytes(b) => String::from_utf8(b.to_vec())
            .map_err(|_| WireError::Malformed("string field is not UTF-8".into())),
        _ => Err(WireError::Malformed("expected a length-delimited string".into())),
    }
}

pub(super) fn bytes_of<'a>(raw: &Raw<'a>) -> Result<&'a [u8], WireError> {
    match raw {
        Raw::Bytes(b) => Ok(b),
        _ => Err(WireError::Malformed("expected a length-delimited field".into())),
    }
}

pub(super) fn varint_of(raw: &Raw<'_>) -> Result<u64, WireError> {
    match raw {
        Raw::Varint(v) => Ok(*v),
        _ => Err(WireError::Malformed("expected a varint".into())),
    }
}

/// One scalar (or message) value of type `ty`.
fn scalar(f: &Field, raw: &Raw<'_>) -> Result<Value, WireError> {
    Ok(match f.ty {
        Ty::String => Value::String(string_of(raw)?),
        Ty::Bytes => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes_of(raw)?)),
        // Negative int32s travel as 64-bit two's complement varints.
        Ty::Int32 => Value::from(varint_of(raw)? as i64 as i32),
        Ty::Int64 => Value::from(varint_of(raw)? as i64),
        Ty::Bool => Value::Bool(varint_of(raw)? != 0),
        Ty::Double => match raw {
            Raw::Fixed64(v) => serde_json::Number::from_f64(f64::from_bits(*v))
                .map(Value::Number)
                .unwrap_or(Value::Null),
            _ => return Err(WireError::Malformed("expected a double".into())),
        },
        Ty::Message => message(f.message, bytes_of(raw)?)?,
    })
}

/// Repeated numeric fields may come packed into one length-delimited field.
fn packed(f: &Field, raw: &Raw<'_>) -> Result<Option<Vec<Value>>, WireError> {
    let numeric = matches!(f.ty, Ty::Int32 | Ty::Int64 | Ty::Bool | Ty::Double);
    let &Raw::Bytes(mut b) = raw else {
        return Ok(None);
    };
    if !numeric {
        return Ok(None);
    }
    let mut out = vec![];
    while !b.is_empty() {
        let item = if f.ty == Ty::Double {
            if b.len() < 8 {
                return Err(WireError::Malformed("truncated packed double".into()));
            }
            Raw::Fixed64(b.get_u64_le())
        } else {
            Raw::Varint(prost::encoding::decode_varint(&mut b)?)
        };
        out.push(scalar(f, &item)?);
    }
    Ok(Some(out))
}

/// An empty string, object or time: what `omitempty` drops and the wire cannot tell from absent.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Deepest nesting a body may have (kube's JSON decoder stops deep input too): recursive
/// messages (JSONSchemaProps, nested envelopes) must not exhaust the stack.
const MAX_DEPTH: u32 = 100;

thread_local! {
    static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// One level of nesting while it lives (decoding is synchronous, so a thread-local counts it).
struct Nesting;

impl Nesting {
    fn enter() -> Result<Self, WireError> {
        DEPTH.with(|d| {
            if d.get() >= MAX_DEPTH {
                return Err(WireError::Malformed(format!(
                    "object nested deeper than {MAX_DEPTH} levels"
                )));
            }
            d.set(d.get() + 1);
            Ok(Nesting)
        })
    }
}

impl Drop for Nesting {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Decodes the message `name` from `buf` into its JSON form.
pub fn message(name: &str, buf: &[u8]) -> Result<Value, WireError> {
    let _nesting = Nesting::enter()?;
    if let Some(v) = special::decode(name, buf)? {
        return Ok(v);
    }
    let msg = schema()
        .message(name)
        .ok_or_else(|| WireError::Malformed(format!("no schema for message {name}")))?;
    let mut out = Map::new();
    for (tag, raw) in fields(buf)? {
        // Fields this schema does not know (newer clients) are skipped, as Go's decoder does.
        let Some(f) = msg.field(tag) else { continue };
        match f.label {
            Label::One => {
                let v = scalar(f, &raw)?;
                out.insert(f.json.to_owned(), v);
            }
            Label::Inline => {
                if let Value::Object(m) = scalar(f, &raw)? {
                    out.extend(m);
                }
            }
            Label::List => {
                let items = match packed(f, &raw)? {
                    Some(items) => items,
                    None => vec![scalar(f, &raw)?],
                };
                if let Value::Array(a) = out
                    .entry(f.json.to_owned())
                    .or_insert_with(|| Value::Array(vec![]))
                {
                    a.extend(items);
                }
            }
            Label::Map => {
                let mut key = String::new();
                let mut value = None;
                for (t, r) in fields(bytes_of(&raw)?)? {
                    match t {
                        1 => key = string_of(&r)?,
                        2 => value = Some(scalar(f, &r)?),
                        _ => {}
                    }
                }
                let value = match (value, f.ty) {
                    (Some(v), _) => v,
                    (None, Ty::Message) => message(f.message, &[])?,
                    (None, Ty::Bytes | Ty::String) => Value::String(String::new()),
                    (None, _) => Value::from(0),
                };
                if let Value::Object(m) = out
                    .entry(f.json.to_owned())
                    .or_insert_with(|| Value::Object(Map::new()))
                {
                    m.insert(key, value);
                }
            }
        }
    }
    for f in &msg.fields {
        if f.label == Label::One && !f.required && out.get(f.json).is_some_and(is_empty) {
            out.remove(f.json);
        }
    }
    Ok(Value::Object(out))
}
