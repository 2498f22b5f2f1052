//! The JSON form of a built-in kind -> its protobuf bytes (for clients that accept only
//! `application/vnd.kubernetes.protobuf`).

use base64::Engine;
use prost::encoding::{WireType, encode_key, encode_varint};
use serde_json::Value;

use super::WireError;
use super::schema::{Field, Label, Ty, schema};
use super::special;

pub(super) fn put_varint(out: &mut Vec<u8>, tag: u32, v: u64) {
    encode_key(tag, WireType::Varint, out);
    encode_varint(v, out);
}

pub(super) fn put_bytes(out: &mut Vec<u8>, tag: u32, b: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

pub(super) fn put_message(out: &mut Vec<u8>, tag: u32, name: &str, v: &Value) -> Result<(), WireError> {
    let mut body = vec![];
    message(name, v, &mut body)?;
    put_bytes(out, tag, &body);
    Ok(())
}

fn mismatch(f: &Field, v: &Value) -> WireError {
    WireError::Malformed(format!("field {} cannot hold {v}", f.json))
}

fn scalar(out: &mut Vec<u8>, f: &Field, tag: u32, v: &Value) -> Result<(), WireError> {
    match f.ty {
        Ty::String => put_bytes(out, tag, v.as_str().ok_or_else(|| mismatch(f, v))?.as_bytes()),
        Ty::Bytes => {
            let text = v.as_str().ok_or_else(|| mismatch(f, v))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| mismatch(f, v))?;
            put_bytes(out, tag, &bytes);
        }
        Ty::Int32 | Ty::Int64 => put_varint(out, tag, v.as_i64().ok_or_else(|| mismatch(f, v))? as u64),
        Ty::Bool => put_varint(out, tag, u64::from(v.as_bool().ok_or_else(|| mismatch(f, v))?)),
        Ty::Double => {
            encode_key(tag, WireType::SixtyFourBit, out);
            out.extend_from_slice(&v.as_f64().ok_or_else(|| mismatch(f, v))?.to_le_bytes());
        }
        Ty::Message => put_message(out, tag, f.message, v)?,
    }
    Ok(())
}

/// Encodes `v` as the message `name` (fields it does not know are left out).
pub fn message(name: &str, v: &Value, out: &mut Vec<u8>) -> Result<(), WireError> {
    if special::encode(name, v, out)? {
        return Ok(());
    }
    let msg = schema()
        .message(name)
        .ok_or_else(|| WireError::Malformed(format!("no schema for message {name}")))?;
    let mut fields: Vec<&Field> = msg.fields.iter().collect();
    fields.sort_by_key(|f| f.tag);
    for f in fields {
        if f.label == Label::Inline {
            put_message(out, f.tag, f.message, v)?;
            continue;
        }
        let Some(value) = v.get(f.json).filter(|x| !x.is_null()) else {
            continue;
        };
        match f.label {
            Label::One | Label::Inline => scalar(out, f, f.tag, value)?,
            Label::List => {
                for item in value.as_array().ok_or_else(|| mismatch(f, value))? {
                    scalar(out, f, f.tag, item)?;
                }
            }
            Label::Map => {
                for (k, item) in value.as_object().ok_or_else(|| mismatch(f, value))? {
                    let mut entry = vec![];
                    put_bytes(&mut entry, 1, k.as_bytes());
                    scalar(&mut entry, f, 2, item)?;
                    put_bytes(out, f.tag, &entry);
                }
            }
        }
    }
    Ok(())
}
