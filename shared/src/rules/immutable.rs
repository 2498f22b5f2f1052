//! Rule 9: the spec of an ops request cannot change once it is accepted; status updates pass.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Denial, Rule};
use crate::descriptor::DatabaseKind;

/// The dotted paths (below `spec`) where `old` and `new` differ, leaf-first enough to name what
/// changed.
fn changed_paths(prefix: &str, old: &Value, new: &Value, out: &mut BTreeSet<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys()) {
                let (x, y) = (
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                );
                if x != y {
                    changed_paths(&format!("{prefix}.{key}"), x, y, out);
                }
            }
        }
        (a, b) if a != b => {
            out.insert(prefix.to_owned());
        }
        _ => {}
    }
}

/// Denies an UPDATE (of the object or its status) that changes `spec`.
pub fn validate_spec_unchanged(kind: DatabaseKind, old: &Value, new: &Value) -> Result<(), Denial> {
    let null = Value::Null;
    let (a, b) = (old.get("spec").unwrap_or(&null), new.get("spec").unwrap_or(&null));
    if a == b {
        return Ok(());
    }
    let mut paths = BTreeSet::new();
    changed_paths("spec", a, b, &mut paths);
    let at = |p: &str| {
        new.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Err(Denial::new(
        Rule::Immutable,
        format!(
            "the spec of {} {}/{} cannot change once the request is accepted (changed: {}); create a new {} instead",
            kind.ops_kind(),
            at("/metadata/namespace"),
            at("/metadata/name"),
            paths.into_iter().collect::<Vec<_>>().join(", "),
            kind.ops_kind()
        ),
    ))
}
