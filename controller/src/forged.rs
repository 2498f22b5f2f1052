//! Annotations the controller never writes on a request but once did (earlier versions kept
//! their saved state there, KubeDB keeps its saved pods there): on a request today they can
//! only be a tenant's. They are ignored, and reported once per change (a condition and a
//! Warning event). Pure.

use std::collections::BTreeMap;

/// Keys under these prefixes are reported.
pub const PREFIXES: [&str; 2] = ["volops.dev/", "volumeexpansion.ops.kubedb.com/"];
/// The condition type of the report.
pub const CONDITION: &str = "AnnotationsIgnored";
/// At most this many keys are named in the report (a request may carry thousands).
const NAMED: usize = 10;

/// The request's annotations under [`PREFIXES`], sorted.
pub fn ignored_keys(annotations: &BTreeMap<String, String>) -> Vec<&str> {
    annotations
        .keys()
        .filter(|k| PREFIXES.iter().any(|p| k.starts_with(p)))
        .map(String::as_str)
        .collect()
}

/// The report for these keys (None for none).
pub fn report(keys: &[&str]) -> Option<String> {
    let (first, rest) = keys.split_at(keys.len().min(NAMED));
    if first.is_empty() {
        return None;
    }
    let mut text = format!(
        "ignored annotations only the controller could have used, never acted on (its state lives in its own namespace): {}",
        first.join(", ")
    );
    if !rest.is_empty() {
        text.push_str(&format!(" and {} more", rest.len()));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_under_the_controller_s_prefixes_are_reported_and_a_long_list_is_cut() {
        let annotations: BTreeMap<String, String> = [
            "volops.dev/workload.statefulset.evil",
            "volumeexpansion.ops.kubedb.com/evil-0",
            "kubectl.kubernetes.io/last-applied-configuration",
            "example.com/volops.dev/x",
        ]
        .iter()
        .map(|k| ((*k).to_owned(), String::new()))
        .collect();
        let keys = ignored_keys(&annotations);
        assert_eq!(
            keys,
            [
                "volops.dev/workload.statefulset.evil",
                "volumeexpansion.ops.kubedb.com/evil-0"
            ]
        );
        let text = report(&keys).unwrap();
        assert!(
            text.ends_with("volops.dev/workload.statefulset.evil, volumeexpansion.ops.kubedb.com/evil-0")
        );
        assert_eq!(report(&[]), None);
        let many: Vec<String> = (0..25).map(|i| format!("volops.dev/k{i:02}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let text = report(&many).unwrap();
        assert!(text.ends_with("volops.dev/k09 and 15 more"), "{text}");
        assert!(!text.contains("k10"));
    }
}
