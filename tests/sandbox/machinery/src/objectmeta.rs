//! `ValidateObjectMeta`'s checks of labels and annotations, with kube's messages
//! (k8s.io/apimachinery/pkg/util/validation): every key a qualified name, every label value a
//! valid label value, annotations at most 256 KiB in total.

use serde_json::Value;

use crate::error::FieldCause;

/// `TotalAnnotationSizeLimitB`.
pub const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;
const NAME_MAX: usize = 63;
const SUBDOMAIN_MAX: usize = 253;

const NAME_FMT: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const SUBDOMAIN_FMT: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_VALUE_FMT: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, non-empty.
fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `IsDNS1123Subdomain`.
pub fn subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > SUBDOMAIN_MAX {
        errs.push(format!("must be no more than {SUBDOMAIN_MAX} characters"));
    }
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        match (b.first(), b.last()) {
            (Some(f), Some(e)) => {
                (f.is_ascii_lowercase() || f.is_ascii_digit())
                    && (e.is_ascii_lowercase() || e.is_ascii_digit())
                    && b.iter()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            }
            _ => false,
        }
    };
    if !s.split('.').all(label_ok) {
        errs.push(SUBDOMAIN_FMT.to_owned());
    }
    errs
}

/// `IsQualifiedName`: an optional DNS subdomain prefix and `/`, then a name of at most 63.
pub fn qualified_name_errors(key: &str) -> Vec<String> {
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                return vec!["prefix part must be non-empty".to_owned()];
            }
            let prefix_errs = subdomain_errors(prefix);
            if !prefix_errs.is_empty() {
                return prefix_errs
                    .into_iter()
                    .map(|e| format!("prefix part {e}"))
                    .collect();
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {NAME_FMT} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    let mut errs = Vec::new();
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > NAME_MAX {
        errs.push(format!("name part must be no more than {NAME_MAX} characters"));
    }
    if !name.is_empty() && !is_name_part(name) {
        errs.push(format!("name part {NAME_FMT}"));
    }
    errs
}

pub(crate) fn label_value_errors(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > NAME_MAX {
        errs.push(format!("must be no more than {NAME_MAX} characters"));
    }
    if !v.is_empty() && !is_name_part(v) {
        errs.push(LABEL_VALUE_FMT.to_owned());
    }
    errs
}

/// The causes kube-apiserver reports for the object's labels and annotations (none: valid).
pub fn validate_labels_and_annotations(obj: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            for e in qualified_name_errors(k) {
                causes.push(FieldCause::invalid(
                    "metadata.labels",
                    &Value::from(k.as_str()),
                    &e,
                ));
            }
            let v = v.as_str().unwrap_or_default();
            for e in label_value_errors(v) {
                causes.push(FieldCause::invalid("metadata.labels", &Value::from(v), &e));
            }
        }
    }
    if let Some(annotations) = obj.pointer("/metadata/annotations").and_then(Value::as_object) {
        let mut total = 0usize;
        for (k, v) in annotations {
            // kube checks the lowercased key.
            for e in qualified_name_errors(&k.to_ascii_lowercase()) {
                causes.push(FieldCause::invalid(
                    "metadata.annotations",
                    &Value::from(k.as_str()),
                    &e,
                ));
            }
            total += k.len() + v.as_str().map_or(0, str::len);
        }
        if total > ANNOTATIONS_MAX_BYTES {
            causes.push(FieldCause::too_long(
                "metadata.annotations",
                ANNOTATIONS_MAX_BYTES,
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn qualified_names_follow_kube() {
        assert!(qualified_name_errors("volops.dev/workload.statefulset.rd-shard0").is_empty());
        assert!(qualified_name_errors("app.kubernetes.io/instance").is_empty());
        assert!(qualified_name_errors("plain_Name.1").is_empty());
        let long = format!("volops.dev/{}", "a".repeat(64));
        assert_eq!(
            qualified_name_errors(&long),
            vec!["name part must be no more than 63 characters".to_owned()]
        );
        assert_eq!(
            qualified_name_errors(&format!("volops.dev/{}", "a".repeat(63))),
            Vec::<String>::new()
        );
        assert_eq!(
            qualified_name_errors("/x"),
            vec!["prefix part must be non-empty".to_owned()]
        );
        assert!(qualified_name_errors("Volops.dev/x")[0].starts_with("prefix part a lowercase RFC 1123"));
        assert!(qualified_name_errors("a/b/c")[0].starts_with("a qualified name must consist"));
        assert!(qualified_name_errors("x/-bad")[0].starts_with("name part must consist"));
        assert_eq!(
            qualified_name_errors("x/"),
            vec!["name part must be non-empty".to_owned()]
        );
    }

    #[test]
    fn labels_and_annotations_are_checked_like_kube_apiserver() {
        let long_key = format!("volops.dev/pod-uid.{}", "p".repeat(60));
        let obj = json!({"metadata": {
            "labels": {"ok": "fine", "bad": "-x", "long": "v".repeat(64)},
            "annotations": {"fine/ok": "x", long_key.clone(): "uid"}
        }});
        let msgs: Vec<String> = validate_labels_and_annotations(&obj)
            .iter()
            .map(FieldCause::error_string)
            .collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("metadata.labels: Invalid value: \"-x\": a valid label"))
        );
        assert!(
            msgs.iter()
                .any(|m| m.ends_with(": must be no more than 63 characters"))
        );
        assert!(msgs.contains(&format!(
            "metadata.annotations: Invalid value: \"{long_key}\": name part must be no more than 63 characters"
        )));
        let big = json!({"metadata": {"annotations": {"a": "x".repeat(ANNOTATIONS_MAX_BYTES)}}});
        assert_eq!(
            validate_labels_and_annotations(&big)
                .iter()
                .map(FieldCause::error_string)
                .collect::<Vec<_>>(),
            vec!["metadata.annotations: Too long: must have at most 262144 bytes".to_owned()]
        );
        assert!(validate_labels_and_annotations(&json!({"metadata": {}})).is_empty());
    }
}
