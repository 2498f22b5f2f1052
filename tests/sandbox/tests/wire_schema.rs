//! The protobuf wire schema the sandbox decodes and encodes built-in kinds with
//! (`src/wire/k8s.schema`) is generated from the `k8s-pb` crate's prost types (field tags and
//! wire types) and `k8s-openapi`'s serde names (the JSON names, and which fields are required).
//! This test regenerates it and fails when the checked-in file differs;
//! `VOLOPS_WRITE_WIRE_SCHEMA=1 cargo test -p volops-sandbox --test wire_schema` rewrites it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use regex::Regex;

/// The k8s-openapi API version the workspace enables (see the root Cargo.toml).
const OPENAPI_VERSION: &str = "v1_33";

/// Module prefixes of k8s-pb that are not Kubernetes API types the sandbox can serve.
const SKIPPED_MODULES: &[&str] = &["metrics", "apimachinery.pkg.apis.testapigroup"];

/// meta.k8s.io messages every group version carries (options, Status, watch events).
/// Bodies of subresources (no `Resource` impl in k8s-pb) that clients send as protobuf:
/// `kubectl create token`, evictions, scale.
const SUBRESOURCE_KINDS: &[(&str, &str, &str)] = &[
    (
        "authentication.k8s.io/v1",
        "TokenRequest",
        "api.authentication.v1.TokenRequest",
    ),
    ("policy/v1", "Eviction", "api.policy.v1.Eviction"),
    ("autoscaling/v1", "Scale", "api.autoscaling.v1.Scale"),
];

const META_ROOTS: &[&str] = &[
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
    "List",
];

#[derive(Debug, Clone)]
struct PbField {
    tag: u32,
    rust: String,
    /// one | list | map
    label: &'static str,
    /// string, int32, int64, bool, bytes, double, message
    ty: String,
    message: Option<String>,
}

fn crate_dir(name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pkg = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in cargo metadata"));
    Path::new(pkg["manifest_path"].as_str().unwrap())
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn module_of(root: &Path, dir: &Path) -> String {
    dir.strip_prefix(root)
        .unwrap()
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(".")
}

/// Lowercase alphanumerics only: `pod_cid_rs`, `pod_cidrs` and `podCIDRs` all agree.
fn norm(s: &str) -> String {
    s.trim_start_matches("r#")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn camel(rust: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in rust.trim_start_matches("r#").chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The message a prost field type names, resolved against the module it is declared in.
fn resolve(module: &str, ty: &str) -> String {
    let re = Regex::new(r"((?:super::)*)((?:[a-z_0-9]+::)*)([A-Z]\w*)").unwrap();
    let last = re
        .captures_iter(ty)
        .filter(|c| !["Option", "Vec", "String", "BTreeMap"].contains(&&c[3]))
        .last()
        .unwrap_or_else(|| panic!("no message type in {ty}"));
    let mut path: Vec<&str> = module.split('.').collect();
    for _ in 0..last[1].matches("super::").count() {
        path.pop();
    }
    let rest = last[2].trim_end_matches("::");
    if !rest.is_empty() && !rest.starts_with("crate") {
        path.extend(rest.split("::"));
    }
    path.push(&last[3]);
    path.join(".")
}

struct Pb {
    messages: BTreeMap<String, Vec<PbField>>,
    /// (apiVersion, kind) -> message
    kinds: BTreeMap<(String, String), String>,
}

fn parse_pb(root: &Path) -> Pb {
    let src = root.join("src");
    let mut files = vec![];
    rs_files(&src, &mut files);
    let struct_re = Regex::new(r"pub struct (\w+) \{([^}]*)\}").unwrap();
    let attr_re = Regex::new(r#"#\[prost\(([^\]]*)\)\]\s*pub ((?:r#)?\w+):\s*([^#]*)"#).unwrap();
    let res_re = Regex::new(
        r#"impl crate::Resource for (\w+) \{\s*const API_VERSION: &'static str = "([^"]*)";\s*const GROUP: &'static str = "[^"]*";\s*const VERSION: &'static str = "[^"]*";\s*const KIND: &'static str = "([^"]*)";"#,
    )
    .unwrap();
    let tag_re = Regex::new(r#"tag = "(\d+)""#).unwrap();
    let mut pb = Pb {
        messages: BTreeMap::new(),
        kinds: BTreeMap::new(),
    };
    for f in files {
        let module = module_of(&src, f.parent().unwrap());
        if module.is_empty() || SKIPPED_MODULES.iter().any(|s| module.starts_with(s)) {
            continue;
        }
        let text: String = std::fs::read_to_string(&f)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for s in struct_re.captures_iter(&text) {
            let mut fields = vec![];
            for a in attr_re.captures_iter(&s[2]) {
                let attr = &a[1];
                let tag: u32 = tag_re.captures(attr).unwrap()[1].parse().unwrap();
                let (label, ty) = if let Some(rest) = attr.strip_prefix("btree_map = \"string, ") {
                    ("map", rest.split('"').next().unwrap().to_string())
                } else {
                    let ty = attr.split([',', ' ']).next().unwrap().to_string();
                    let label = if attr.contains("repeated") { "list" } else { "one" };
                    (label, ty)
                };
                let message = (ty == "message").then(|| resolve(&module, &a[3]));
                fields.push(PbField {
                    tag,
                    rust: a[2].to_string(),
                    label,
                    ty,
                    message,
                });
            }
            pb.messages.insert(format!("{module}.{}", &s[1]), fields);
        }
        for r in res_re.captures_iter(&text) {
            pb.kinds.insert(
                (r[2].to_string(), r[3].to_string()),
                format!("{module}.{}", &r[1]),
            );
        }
    }
    pb
}

/// k8s-openapi's field names: (module, normalized struct name) -> [(rust, json, required)].
type OpenApi = HashMap<(String, String), Vec<(String, String, bool)>>;

fn parse_openapi(root: &Path) -> OpenApi {
    let src = root.join("src").join(OPENAPI_VERSION);
    let mut files = vec![];
    rs_files(&src, &mut files);
    let struct_re = Regex::new(r"(?s)pub struct (\w+) \{(.*?)\n\}").unwrap();
    let field_re = Regex::new(r"(?m)^\s*pub (\w+): (.*),$").unwrap();
    let key_re = Regex::new(r#""([^"]+)" => Field::Key_(\w+),"#).unwrap();
    let mut out = OpenApi::new();
    for f in files {
        let module = module_of(&src, f.parent().unwrap());
        let text = std::fs::read_to_string(&f).unwrap();
        let Some(s) = struct_re.captures(&text) else {
            continue;
        };
        let required: HashMap<String, bool> = field_re
            .captures_iter(&s[2])
            .map(|c| (c[1].to_string(), !c[2].starts_with("Option<")))
            .collect();
        let fields = key_re
            .captures_iter(&text)
            .map(|k| {
                let rust = k[2].to_string();
                let req = required.get(&rust).copied().unwrap_or(false);
                (rust, k[1].to_string(), req)
            })
            .collect();
        out.insert((module, norm(&s[1])), fields);
    }
    out
}

fn generate() -> String {
    let pb = parse_pb(&crate_dir("k8s-pb"));
    let openapi = parse_openapi(&crate_dir("k8s-openapi"));
    let meta = "apimachinery.pkg.apis.meta.v1";
    let mut roots: Vec<String> = META_ROOTS.iter().map(|k| format!("{meta}.{k}")).collect();
    roots.push("apimachinery.pkg.runtime.Unknown".into());
    let mut kinds = BTreeMap::new();
    for ((api_version, kind), msg) in &pb.kinds {
        if api_version.contains("alpha") || api_version.contains("beta") {
            continue;
        }
        kinds.insert((api_version.clone(), kind.clone()), msg.clone());
        roots.push(msg.clone());
        let list = format!("{msg}List");
        if pb.messages.contains_key(&list) {
            kinds.insert((api_version.clone(), format!("{kind}List")), list.clone());
            roots.push(list);
        }
    }
    for (api_version, kind, msg) in SUBRESOURCE_KINDS {
        kinds.insert(((*api_version).to_owned(), (*kind).to_owned()), (*msg).to_owned());
        roots.push((*msg).to_owned());
    }
    let mut seen = BTreeSet::new();
    while let Some(m) = roots.pop() {
        if !seen.insert(m.clone()) {
            continue;
        }
        let fields = pb
            .messages
            .get(&m)
            .unwrap_or_else(|| panic!("unknown message {m}"));
        roots.extend(fields.iter().filter_map(|f| f.message.clone()));
    }
    let mut out = String::from(
        "# Generated by tests/wire_schema.rs from the k8s-pb and k8s-openapi crates; do not edit.\n\
         # kind <apiVersion> <kind> <message>\n\
         # message <name>, then: <tag> <json name> <one|list|map|inline> <type> [<message>] [required]\n",
    );
    for ((av, kind), msg) in &kinds {
        out.push_str(&format!("kind {av} {kind} {msg}\n"));
    }
    for m in &seen {
        let (module, name) = m.rsplit_once('.').unwrap();
        let names = openapi.get(&(module.to_string(), norm(name)));
        out.push_str(&format!("message {m}\n"));
        for f in &pb.messages[m] {
            let found = names.and_then(|n| {
                n.iter()
                    .find(|(rust, _, _)| norm(rust) == norm(&f.rust))
                    .or_else(|| n.iter().find(|(_, json, _)| norm(json) == norm(&f.rust)))
            });
            // A message field the JSON form does not name is a Go struct embedded with
            // `json:",inline"` (e.g. LocalObjectReference in the key selectors): its fields
            // sit in the parent object.
            // Such a field is named after its type (Probe's ProbeHandler is the one rename).
            let type_name = f.message.as_deref().and_then(|t| t.rsplit('.').next());
            let inline = names.is_some()
                && found.is_none()
                && f.label == "one"
                && type_name.is_some_and(|t| norm(t) == norm(&f.rust) || t == "ProbeHandler");
            let (json, required) = match found {
                Some((_, json, req)) => (json.clone(), *req),
                None => (camel(&f.rust), false),
            };
            let label = if inline { "inline" } else { f.label };
            out.push_str(&format!("  {} {json} {label} {}", f.tag, f.ty));
            if let Some(msg) = &f.message {
                out.push_str(&format!(" {msg}"));
            }
            if required {
                out.push_str(" required");
            }
            out.push('\n');
        }
    }
    out
}

#[test]
fn wire_schema_is_generated_from_k8s_pb_and_k8s_openapi() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/wire/k8s.schema");
    let text = generate();
    if std::env::var_os("VOLOPS_WRITE_WIRE_SCHEMA").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == text,
        "src/wire/k8s.schema is stale: rerun with VOLOPS_WRITE_WIRE_SCHEMA=1"
    );
}
