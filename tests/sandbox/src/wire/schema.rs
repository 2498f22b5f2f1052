//! The protobuf schema of the built-in kinds, loaded once from `k8s.schema` (generated from the
//! k8s-pb and k8s-openapi crates by `tests/wire_schema.rs`).

use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    One,
    List,
    Map,
    /// A Go struct embedded with `json:",inline"`: its fields live in the parent JSON object.
    Inline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    String,
    Bytes,
    Int32,
    Int64,
    Bool,
    Double,
    Message,
}

#[derive(Debug)]
pub struct Field {
    pub tag: u32,
    pub json: &'static str,
    pub label: Label,
    pub ty: Ty,
    /// The message type (for `Ty::Message`, also a map's value type).
    pub message: &'static str,
    /// Go marshals the field even when it holds its zero value.
    pub required: bool,
}

#[derive(Debug, Default)]
pub struct Message {
    pub fields: Vec<Field>,
}

impl Message {
    pub fn field(&self, tag: u32) -> Option<&Field> {
        self.fields.iter().find(|f| f.tag == tag)
    }
}

#[derive(Debug, Default)]
pub struct Schema {
    kinds: HashMap<(&'static str, &'static str), &'static str>,
    messages: HashMap<&'static str, Message>,
}

/// The meta.k8s.io/v1 kinds every group version carries (kube registers them in each).
const META_KINDS: &[&str] = &[
    "Status",
    "DeleteOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "GetOptions",
    "ListOptions",
    "WatchEvent",
    "PartialObjectMetadata",
    "PartialObjectMetadataList",
];

pub const META: &str = "apimachinery.pkg.apis.meta.v1";

impl Schema {
    /// The message of `kind` in `api_version`, if it is a built-in kind.
    pub fn message_for(&self, api_version: &str, kind: &str) -> Option<&'static str> {
        if let Some(m) = self.kinds.get(&(api_version, kind)) {
            return Some(m);
        }
        let meta_kind = META_KINDS.contains(&kind) || (kind == "List" && api_version == "v1");
        if meta_kind {
            let name = format!("{META}.{kind}");
            return self.messages.get_key_value(name.as_str()).map(|(k, _)| *k);
        }
        None
    }

    pub fn message(&self, name: &str) -> Option<&Message> {
        self.messages.get(name)
    }
}

/// The schema, parsed on first use.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| parse(include_str!("k8s.schema")))
}

fn parse(text: &'static str) -> Schema {
    let mut s = Schema::default();
    let mut current: Option<&'static str> = None;
    for line in text.lines() {
        let words: Vec<&'static str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["#", ..] | [] => {}
            ["kind", api_version, kind, msg] => {
                s.kinds.insert((api_version, kind), msg);
            }
            ["message", name] => {
                current = Some(name);
                s.messages.insert(name, Message::default());
            }
            [tag, json, label, ty, rest @ ..] => {
                let (Some(name), Ok(tag)) = (current, tag.parse()) else {
                    continue;
                };
                let label = match *label {
                    "list" => Label::List,
                    "map" => Label::Map,
                    "inline" => Label::Inline,
                    _ => Label::One,
                };
                let ty = match *ty {
                    "string" => Ty::String,
                    "bytes" => Ty::Bytes,
                    "int32" => Ty::Int32,
                    "int64" => Ty::Int64,
                    "bool" => Ty::Bool,
                    "double" => Ty::Double,
                    _ => Ty::Message,
                };
                let message = rest.first().copied().filter(|m| *m != "required").unwrap_or("");
                let field = Field {
                    tag,
                    json,
                    label,
                    ty,
                    message,
                    required: rest.last() == Some(&"required"),
                };
                if let Some(m) = s.messages.get_mut(name) {
                    m.fields.push(field);
                }
            }
            _ => {}
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_kinds_and_meta_kinds_resolve() {
        let s = schema();
        assert_eq!(s.message_for("v1", "ConfigMap"), Some("api.core.v1.ConfigMap"));
        assert_eq!(
            s.message_for("events.k8s.io/v1", "Event"),
            Some("api.events.v1.Event")
        );
        assert_eq!(
            s.message_for("apps/v1", "DeleteOptions"),
            Some("apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        assert_eq!(s.message_for("example.com/v1", "Widget"), None);
        let cm = s.message("api.core.v1.ConfigMap").unwrap();
        let bin = cm.field(3).unwrap();
        assert_eq!(
            (bin.json, bin.label, bin.ty),
            ("binaryData", Label::Map, Ty::Bytes)
        );
        let sel = s.message("api.core.v1.ConfigMapKeySelector").unwrap();
        assert_eq!(sel.field(1).unwrap().label, Label::Inline);
    }
}
