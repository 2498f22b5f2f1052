//! Strategic merge patch for built-in kinds: list merge keys as the Go types declare them
//! (`patchStrategy:"merge" patchMergeKey:"..."`), and the `$patch`, `$retainKeys`,
//! `$deleteFromPrimitiveList/` and `$setElementOrder/` directives.

use serde_json::{Map, Value};

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListStrategy {
    /// Atomic: the patch replaces the list.
    Replace,
    /// A list of objects keyed by this field.
    MergeKey(&'static str),
    /// A list of scalars merged as a set (e.g. `metadata.finalizers`).
    MergePrimitive,
}

/// API groups served by kube-apiserver itself; anything else is a custom resource.
const BUILTIN_GROUPS: [&str; 19] = [
    "",
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "networking.k8s.io",
    "storage.k8s.io",
    "coordination.k8s.io",
    "events.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "rbac.authorization.k8s.io",
    "scheduling.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "certificates.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "resource.k8s.io",
];

pub(crate) fn is_builtin_group(group: &str) -> bool {
    BUILTIN_GROUPS.contains(&group)
}

/// The strategy of list field `field` of a built-in `kind` (`parent` is the enclosing field).
pub(crate) fn list_strategy(kind: &str, parent: Option<&str>, field: &str) -> ListStrategy {
    use ListStrategy::{MergeKey, MergePrimitive, Replace};
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims" => MergeKey("name"),
        "ports" if kind == "Service" && parent == Some("spec") => MergeKey("port"),
        "ports" => MergeKey("containerPort"),
        "conditions" => MergeKey("type"),
        "volumeMounts" => MergeKey("mountPath"),
        "volumeDevices" => MergeKey("devicePath"),
        "ownerReferences" => MergeKey("uid"),
        "hostAliases" => MergeKey("ip"),
        "topologySpreadConstraints" => MergeKey("topologyKey"),
        "finalizers" if parent == Some("metadata") => MergePrimitive,
        _ => Replace,
    }
}

/// What a merge needs to know about the object: its kind, and whether list strategies of the
/// built-in types apply (custom resources have atomic lists).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub kind: &'a str,
    pub builtin: bool,
}

impl Ctx<'_> {
    pub(crate) fn strategy(&self, parent: Option<&str>, field: &str) -> ListStrategy {
        if self.builtin {
            list_strategy(self.kind, parent, field)
        } else {
            ListStrategy::Replace
        }
    }
}

/// Applies a strategic merge patch document (or an apply configuration) to `obj` in place.
pub(crate) fn merge(kind: Ctx<'_>, obj: &mut Value, patch: &Value) {
    match (obj.as_object_mut(), patch.as_object()) {
        (Some(o), Some(p)) => merge_map(kind, None, o, p),
        _ => *obj = strip(kind, None, patch),
    }
}

fn directive(v: &Value) -> Option<&str> {
    v.get("$patch").and_then(Value::as_str)
}

/// A patch value with its directives removed (how it looks when nothing is under it).
fn strip(kind: Ctx<'_>, parent: Option<&str>, v: &Value) -> Value {
    match v {
        Value::Object(p) => {
            let mut m = Map::new();
            merge_map(kind, parent, &mut m, p);
            Value::Object(m)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|i| directive(i).is_none())
                .map(|i| strip(kind, parent, i))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_map(kind: Ctx<'_>, parent: Option<&str>, orig: &mut Map<String, Value>, patch: &Map<String, Value>) {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        orig.clear();
        let rest: Map<String, Value> = patch
            .iter()
            .filter(|(k, _)| *k != "$patch")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        merge_map(kind, parent, orig, &rest);
        return;
    }
    for (k, pv) in patch {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(del)) = (orig.get_mut(field), pv.as_array()) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        if pv.is_null() || directive(pv) == Some("delete") {
            orig.remove(k);
            continue;
        }
        let field = Some(k.as_str());
        match (orig.get_mut(k), pv) {
            (Some(Value::Object(o)), Value::Object(p)) => merge_map(kind, field, o, p),
            (Some(Value::Array(o)), Value::Array(p)) => {
                merge_list(kind, kind.strategy(parent, k), field, o, p);
            }
            _ => {
                orig.insert(k.clone(), strip(kind, field, pv));
            }
        }
    }
    if let Some(keep) = patch.get("$retainKeys").and_then(Value::as_array) {
        orig.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k)));
    }
}

fn merge_list(
    kind: Ctx<'_>,
    strategy: ListStrategy,
    field: Option<&str>,
    orig: &mut Vec<Value>,
    patch: &[Value],
) {
    let replace_all = patch.iter().any(|p| directive(p) == Some("replace"));
    match strategy {
        _ if replace_all => {
            *orig = patch
                .iter()
                .filter(|p| directive(p).is_none())
                .map(|p| strip(kind, field, p))
                .collect();
        }
        ListStrategy::Replace => *orig = patch.iter().map(|p| strip(kind, field, p)).collect(),
        ListStrategy::MergePrimitive => {
            for p in patch {
                if !orig.contains(p) {
                    orig.push(p.clone());
                }
            }
        }
        ListStrategy::MergeKey(key) => {
            for p in patch {
                let Some(pm) = p.as_object() else {
                    orig.push(p.clone());
                    continue;
                };
                let kv = pm.get(key);
                let pos = kv.and_then(|kv| orig.iter().position(|o| o.get(key) == Some(kv)));
                if directive(p) == Some("delete") {
                    orig.retain(|o| kv.is_none() || o.get(key) != kv);
                    continue;
                }
                match pos.and_then(|i| orig.get_mut(i)).and_then(Value::as_object_mut) {
                    Some(o) => merge_map(kind, field, o, pm),
                    None => orig.push(strip(kind, field, p)),
                }
            }
        }
    }
}
