//! Which resources are served: built-ins plus every resource of a stored CRD.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// One served resource (one group/version/plural).
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub status_sub: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// True for custom resources (schema, merge-patch only, CR table columns).
    pub custom: bool,
    /// Whether `metadata.generation` is maintained.
    pub has_generation: bool,
    /// openAPIV3Schema of this version (CRs only).
    pub schema: Option<Value>,
    /// additionalPrinterColumns of this version (CRs only).
    pub printer_columns: Vec<Value>,
    /// The verbs discovery lists (create-only for the review APIs, which store nothing).
    pub verbs: &'static [&'static str],
    /// Subresources besides `status` (e.g. `serviceaccounts/token`), served by other modules.
    pub subresources: &'static [Subresource],
}

/// A subresource with its own kind (discovery lists it; `route` accepts it).
#[derive(Debug, Clone, Copy)]
pub struct Subresource {
    pub name: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// The verbs of a stored resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `serviceaccounts/token`: the TokenRequest API.
const SERVICE_ACCOUNT_SUBRESOURCES: &[Subresource] = &[Subresource {
    name: "token",
    group: "authentication.k8s.io",
    version: "v1",
    kind: "TokenRequest",
    verbs: &["create"],
}];

/// `pods/binding`: what the scheduler posts (see `binding`).
const POD_SUBRESOURCES: &[Subresource] = &[Subresource {
    name: "binding",
    group: "",
    version: "",
    kind: "Binding",
    verbs: &["create"],
}];

/// `nodes/proxy`: the kubelet behind the API server (see `nodeproxy`).
const NODE_SUBRESOURCES: &[Subresource] = &[Subresource {
    name: "proxy",
    group: "",
    version: "",
    kind: "NodeProxyOptions",
    verbs: &["create", "delete", "get", "patch", "update"],
}];

/// The create-only review APIs: (group, plural, kind, namespaced).
const REVIEWS: &[(&str, &str, &str, bool)] = &[
    (
        "authentication.k8s.io",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
    ),
    ("authentication.k8s.io", "tokenreviews", "TokenReview", false),
    (
        "authorization.k8s.io",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
    ),
    (
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
    ),
];

impl ResourceInfo {
    /// `group/version` or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (or just `plural` in the core group), as kube-apiserver names it in errors.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Key of the store bucket (independent of version; both Event APIs share one).
    pub fn store_key(&self) -> (String, String) {
        if crate::events::is_events_v1(self) {
            return crate::events::store_key();
        }
        (self.group.clone(), self.plural.clone())
    }
}

/// Built-in and CRD-backed resources by (group, version).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_gv: BTreeMap<(String, String), Vec<ResourceInfo>>,
    /// Which CRD (by name) registered which (group, version)s, so deleting it unregisters them.
    crd_gvs: BTreeMap<String, Vec<(String, String)>>,
    /// Preferred (first served) version per group, in registration order.
    group_order: Vec<String>,
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    status_sub: bool,
    short: &'static [&'static str],
    generation: bool,
}

const BUILTINS: &[Builtin] = &[
    b("", "v1", "namespaces", "Namespace", false, true, &["ns"], false),
    b("", "v1", "pods", "Pod", true, true, &["po"], true),
    b("", "v1", "nodes", "Node", false, true, &["no"], false),
    b(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        true,
        &["pvc"],
        false,
    ),
    b(
        "",
        "v1",
        "persistentvolumes",
        "PersistentVolume",
        false,
        true,
        &["pv"],
        false,
    ),
    b("", "v1", "services", "Service", true, true, &["svc"], false),
    b("", "v1", "secrets", "Secret", true, false, &[], false),
    b("", "v1", "configmaps", "ConfigMap", true, false, &["cm"], false),
    b("", "v1", "events", "Event", true, false, &["ev"], false),
    b(
        "",
        "v1",
        "resourcequotas",
        "ResourceQuota",
        true,
        true,
        &["quota"],
        false,
    ),
    b(
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        true,
        false,
        &["sa"],
        false,
    ),
    b(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        true,
        true,
        &["sts"],
        true,
    ),
    b(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "StorageClass",
        false,
        false,
        &["sc"],
        false,
    ),
    b(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        true,
        false,
        &[],
        false,
    ),
    b(
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        true,
        false,
        &["ev"],
        false,
    ),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        false,
        false,
        &[],
        true,
    ),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        false,
        false,
        &[],
        true,
    ),
    b(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        true,
        &["crd", "crds"],
        true,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        false,
        &[],
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        false,
        &[],
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        false,
        &[],
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        false,
        &[],
        false,
    ),
];

#[allow(clippy::too_many_arguments)] // a table row
const fn b(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    status_sub: bool,
    short: &'static [&'static str],
    generation: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        plural,
        kind,
        namespaced,
        status_sub,
        short,
        generation,
    }
}

impl Registry {
    /// The built-in resources.
    pub fn builtin() -> Self {
        let mut r = Registry::default();
        for bi in BUILTINS {
            r.add(ResourceInfo {
                group: bi.group.into(),
                version: bi.version.into(),
                plural: bi.plural.into(),
                singular: bi.kind.to_lowercase(),
                kind: bi.kind.into(),
                list_kind: format!("{}List", bi.kind),
                namespaced: bi.namespaced,
                status_sub: bi.status_sub,
                short_names: bi.short.iter().map(|s| s.to_string()).collect(),
                categories: if (bi.group.is_empty() && bi.plural != "nodes") || bi.group == "apps" {
                    vec!["all".into()]
                } else {
                    vec![]
                },
                custom: false,
                has_generation: bi.generation,
                schema: None,
                printer_columns: vec![],
                verbs: ALL_VERBS,
                subresources: match bi.plural {
                    "serviceaccounts" => SERVICE_ACCOUNT_SUBRESOURCES,
                    "pods" => POD_SUBRESOURCES,
                    "nodes" => NODE_SUBRESOURCES,
                    _ => &[],
                },
            });
        }
        for (group, plural, kind, namespaced) in REVIEWS {
            r.add(ResourceInfo {
                group: (*group).into(),
                version: "v1".into(),
                plural: (*plural).into(),
                singular: kind.to_lowercase(),
                kind: (*kind).into(),
                list_kind: String::new(),
                namespaced: *namespaced,
                status_sub: false,
                short_names: vec![],
                categories: vec![],
                custom: false,
                has_generation: false,
                schema: None,
                printer_columns: vec![],
                verbs: &["create"],
                subresources: &[],
            });
        }
        r
    }

    fn add(&mut self, info: ResourceInfo) {
        if !self.group_order.contains(&info.group) {
            self.group_order.push(info.group.clone());
        }
        let list = self
            .by_gv
            .entry((info.group.clone(), info.version.clone()))
            .or_default();
        list.retain(|r| r.plural != info.plural);
        list.push(info);
    }

    /// Looks a resource up by group, version and plural.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.by_gv
            .get(&(group.to_string(), version.to_string()))?
            .iter()
            .find(|r| r.plural == plural)
    }

    /// Any served version of group/plural (the preferred one first).
    pub fn any_version(&self, group: &str, plural: &str) -> Option<&ResourceInfo> {
        self.versions_of(group)
            .into_iter()
            .find_map(|v| self.get(group, &v, plural))
    }

    /// Served versions of a group, preferred first.
    pub fn versions_of(&self, group: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .by_gv
            .keys()
            .filter(|(g, _)| g == group)
            .map(|(_, v)| v.clone())
            .collect();
        v.sort_by_key(|a| std::cmp::Reverse(version_priority(a)));
        v
    }

    /// Groups in registration order (core "" first).
    pub fn groups(&self) -> Vec<String> {
        self.group_order
            .iter()
            .filter(|g| self.by_gv.keys().any(|(gg, _)| gg == *g))
            .cloned()
            .collect()
    }

    /// Resources of one group/version.
    pub fn resources(&self, group: &str, version: &str) -> &[ResourceInfo] {
        self.by_gv
            .get(&(group.to_string(), version.to_string()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Registers (or re-registers) the resources a CRD object serves.
    pub fn register_crd(&mut self, crd: &Value) {
        let crd_name = str_at(crd, &["metadata", "name"]).to_string();
        self.unregister_crd(&crd_name);
        let spec = &crd["spec"];
        let group = str_at(spec, &["group"]).to_string();
        let names = &spec["names"];
        let plural = str_at(names, &["plural"]).to_string();
        let kind = str_at(names, &["kind"]).to_string();
        let singular = match str_at(names, &["singular"]) {
            "" => kind.to_lowercase(),
            s => s.to_string(),
        };
        let list_kind = match str_at(names, &["listKind"]) {
            "" => format!("{kind}List"),
            s => s.to_string(),
        };
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
                .unwrap_or_default()
        };
        let namespaced = str_at(spec, &["scope"]) != "Cluster";
        let mut gvs = vec![];
        for ver in spec["versions"].as_array().into_iter().flatten() {
            if ver["served"] != Value::Bool(true) {
                continue;
            }
            let version = str_at(ver, &["name"]).to_string();
            gvs.push((group.clone(), version.clone()));
            self.add(ResourceInfo {
                group: group.clone(),
                version,
                plural: plural.clone(),
                singular: singular.clone(),
                kind: kind.clone(),
                list_kind: list_kind.clone(),
                namespaced,
                status_sub: ver["subresources"].get("status").is_some(),
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                custom: true,
                has_generation: true,
                schema: ver["schema"].get("openAPIV3Schema").cloned(),
                printer_columns: ver["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                verbs: ALL_VERBS,
                subresources: &[],
            });
        }
        self.crd_gvs.insert(crd_name, gvs);
    }

    /// Stops serving the resources of a CRD.
    pub fn unregister_crd(&mut self, crd_name: &str) {
        let Some(gvs) = self.crd_gvs.remove(crd_name) else {
            return;
        };
        let plural = crd_name.split('.').next().unwrap_or_default();
        for gv in gvs {
            if let Some(list) = self.by_gv.get_mut(&gv) {
                list.retain(|r| r.plural != plural);
                if list.is_empty() {
                    self.by_gv.remove(&gv);
                }
            }
        }
    }
}

/// The storage version of a CRD (the one with `storage: true`).
pub fn crd_storage_version(crd: &Value) -> String {
    crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["storage"] == Value::Bool(true))
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Fills a new CRD's status as kube-apiserver's controllers do right away.
pub fn crd_status(crd: &Value, now: &str) -> Value {
    let cond = |t: &str, reason: &str, msg: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": msg});
    json!({
        "acceptedNames": crd["spec"]["names"].clone(),
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": [crd_storage_version(crd)],
    })
}

/// kube's version priority: GA > beta > alpha, higher numbers first.
fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    (level, major, num.parse().unwrap_or(0))
}

/// A string at a JSON path, "" if absent.
pub fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or_default()
}
