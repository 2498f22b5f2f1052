//! The database UPDATE rule: a direct edit must not shrink `spec.storage`.

use serde_json::Value;

use super::{Denial, Rule};
use crate::{descriptor::DatabaseKind, quantity::Quantity};

const STORAGE: &str = "/spec/storage/resources/requests/storage";

/// Denies an UPDATE of a Redis/ZooKeeper that lowers `spec.storage.resources.requests.storage`
/// (Kubernetes would refuse to shrink the PVCs later anyway).
pub fn validate_database_update(kind: DatabaseKind, old: &Value, new: &Value) -> Result<(), Denial> {
    let size = |v: &Value| {
        v.pointer(STORAGE)
            .and_then(Value::as_str)
            .and_then(|s| Quantity::parse(s).ok())
    };
    let (Some(before), Some(after)) = (size(old), size(new)) else {
        return Ok(());
    };
    if after >= before {
        return Ok(());
    }
    let at = |p: &str| {
        new.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Err(Denial::new(
        Rule::DatabaseShrink,
        format!(
            "spec.storage.resources.requests.storage of {} {}/{} cannot shrink from {before} to {after}: volumes can \
             only grow; to grow them, create a {} with spec.type VolumeExpansion",
            kind.kind(),
            at("/metadata/namespace"),
            at("/metadata/name"),
            kind.ops_kind()
        ),
    ))
}
