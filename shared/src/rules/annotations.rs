//! Annotations only the volops controller writes: what it saves to put things back after a
//! failure lives under these keys (its own `volops.dev/`, and KubeDB's
//! `volumeexpansion.ops.kubedb.com/<pod>`). A tenant who could write them could make the
//! controller recreate any workload or pod it names (docs: README.md, "What the webhook denies").

use super::{Denial, Rule};

/// Key prefixes of the annotations on an ops request that belong to the controller.
pub const OWNED_ANNOTATION_PREFIXES: [&str; 2] = ["volops.dev/", "volumeexpansion.ops.kubedb.com/"];

/// How many keys a denial names before it counts the rest.
const LISTED: usize = 5;

/// Whether an annotation key belongs to the controller.
pub fn is_owned_annotation(key: &str) -> bool {
    OWNED_ANNOTATION_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The owned keys of `annotations`, with their values, in key order.
fn owned<'a>(annotations: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<_> = annotations
        .iter()
        .filter(|(k, _)| is_owned_annotation(k))
        .copied()
        .collect();
    out.sort_unstable();
    out
}

fn listed(keys: &[&str]) -> String {
    let mut text = keys.iter().take(LISTED).copied().collect::<Vec<_>>().join(", ");
    if keys.len() > LISTED {
        text.push_str(&format!(" and {} more", keys.len() - LISTED));
    }
    text
}

/// Denies a write (by anyone but the controller; the caller knows who wrote) that adds,
/// changes or removes an owned annotation of `object` (e.g. `RedisOpsRequest demo/grow`).
/// `old` is empty on CREATE.
pub fn validate_owned_annotations(
    object: &str,
    old: &[(&str, &str)],
    new: &[(&str, &str)],
) -> Result<(), Denial> {
    let (old, new) = (owned(old), owned(new));
    if old == new {
        return Ok(());
    }
    fn value<'a>(list: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
        list.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
    let (mut added, mut changed, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    for &(key, v) in &new {
        match value(&old, key) {
            None => added.push(key),
            Some(before) if before != v => changed.push(key),
            Some(_) => {}
        }
    }
    removed.extend(old.iter().map(|(k, _)| *k).filter(|k| value(&new, k).is_none()));
    let parts: Vec<String> = [("added", &added), ("changed", &changed), ("removed", &removed)]
        .into_iter()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(what, keys)| format!("{what}: {}", listed(keys)))
        .collect();
    Err(Denial::new(
        Rule::OwnedAnnotation,
        format!(
            "{object}: annotations under {} are written only by the volops controller, which keeps what it \
             must restore there ({}); leave them out of the request",
            OWNED_ANNOTATION_PREFIXES.join(" and "),
            parts.join("; ")
        ),
    ))
}
